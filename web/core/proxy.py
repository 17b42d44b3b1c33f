"""The client's address behind the reverse proxies this deployment trusts.

Log-ins are throttled per client address (``cloudmgr.identity.services``).  Behind nginx every
request comes from the proxy's address, so without this one address would stand for everyone
and a few failed log-ins would lock the whole province out.  The proxies named in
``CLOUDMGR_FORWARDED_ALLOW_IPS`` (the same list gunicorn trusts for ``X-Forwarded-Proto``)
are believed about ``X-Forwarded-For``; nobody else is, so a client cannot pick its own
address to dodge the throttle.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def client_address(peer: str, forwarded_for: str, trusted: frozenset[str]) -> str:
    """The first address, from the right of ``X-Forwarded-For``, that is not a trusted proxy.

    Each proxy appends the address it was reached from: walking back from the peer while the
    hop is trusted finds the client.  A malformed entry stops the walk at the last trusted hop.
    """
    trust_all = "*" in trusted
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    current = peer
    while hops and (trust_all or current in trusted):
        hop = hops.pop()
        if not _is_address(hop):
            break
        current = hop
    return current


class TrustedProxies:
    """WSGI middleware: ``REMOTE_ADDR`` becomes the client's address (see the module docstring)."""

    def __init__(self, app: WSGIApp, trusted: Iterable[str]) -> None:
        self.app = app
        self.trusted = frozenset(trusted)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR") or ""
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded and self.trusted and ("*" in self.trusted or peer in self.trusted):
            environ["cloudmgr.proxy_addr"] = peer
            environ["REMOTE_ADDR"] = client_address(peer, forwarded, self.trusted)
        return self.app(environ, start_response)
