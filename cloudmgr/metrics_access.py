"""Who may read ``/metrics``: Prometheus, and nobody else.

The metrics carry every department's quota, usage and requests, so a login is not enough
(a department's staff are not Prometheus).  A scrape is served when it carries the bearer
token of ``CLOUDMGR_METRICS_TOKEN`` / ``CLOUDMGR_METRICS_TOKEN_FILE`` (compared in constant
time), or when it comes straight from an address of ``CLOUDMGR_METRICS_ALLOW``.

The address is the TCP peer's.  A request relayed by a reverse proxy (it carries
``Forwarded``, ``X-Forwarded-For``, ``X-Forwarded-Proto`` or ``X-Real-IP``) has the proxy's
address, which is every visitor's: the address list is not honoured for it, only the token.
That is also why production allows no address by default: nginx on the same host makes
every visitor look like 127.0.0.1.  Development and tests allow this machine (loopback).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Protocol

from cloudmgr.config import Settings
from cloudmgr.errors import DomainError

log = logging.getLogger(__name__)

# Headers only a proxy adds: their presence means the peer address is not the client's.
RELAY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Real-IP")
BEARER = "bearer"


class HeaderLookup(Protocol):
    """The request's headers (a dict, or werkzeug's case-insensitive ``Headers``)."""

    def get(self, key: str, /) -> str | None: ...


class ScrapeRefused(DomainError):
    """/metrics is not served to this caller."""

    code = "metrics_forbidden"
    http_status = 403


class ScrapeUnauthorized(ScrapeRefused):
    """A token is configured and the caller did not present it (or presented another)."""

    code = "metrics_unauthorized"
    http_status = 401


def is_configured(settings: Settings) -> bool:
    """False when nobody at all can read /metrics (production without a token or an address)."""
    return bool(settings.metrics_token or settings.metrics_allow)


def misconfiguration(settings: Settings) -> str | None:
    """Why /metrics refuses every scrape, said once when the web app starts; None when it can serve."""
    if is_configured(settings):
        return None
    return (
        "/metrics refuses every scrape: set CLOUDMGR_METRICS_TOKEN_FILE (the bearer token Prometheus "
        "sends) or CLOUDMGR_METRICS_ALLOW (the Prometheus servers' addresses)"
    )


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != BEARER:
        return None
    return credentials.strip() or None


def token_matches(settings: Settings, authorization: str | None) -> bool:
    """The ``Authorization: Bearer …`` header carries the metrics token (constant-time compare)."""
    offered = _bearer_token(authorization)
    if not settings.metrics_token or offered is None:
        return False
    return hmac.compare_digest(offered.encode("utf-8"), settings.metrics_token.encode("utf-8"))


def address_allowed(settings: Settings, remote_addr: str | None) -> bool:
    if not remote_addr or not settings.metrics_allow:
        return False
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:  # a unix socket, a scoped address: not an address we can vouch for
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in settings.metrics_allow)


def is_relayed(headers: HeaderLookup) -> bool:
    return any(headers.get(name) for name in RELAY_HEADERS)


def check_scrape(
    settings: Settings, *, remote_addr: str | None, authorization: str | None, headers: HeaderLookup
) -> None:
    """Return when the caller may read /metrics; raise :class:`ScrapeRefused` otherwise.

    :class:`ScrapeUnauthorized` (401) when a token would let the caller in, so Prometheus
    reports a wrong or missing token; a plain refusal (403) when no token is configured.
    """
    if token_matches(settings, authorization):
        return
    if not is_relayed(headers) and address_allowed(settings, remote_addr):
        return
    if settings.metrics_token:
        raise ScrapeUnauthorized("/metrics needs the metrics bearer token: 'Authorization: Bearer <token>'")
    raise ScrapeRefused("/metrics is served only to the addresses of CLOUDMGR_METRICS_ALLOW")
