"""The client's address behind the trusted reverse proxies (what log-ins are throttled by)."""

from __future__ import annotations

import pytest

from web.core.proxy import client_address

TRUSTED = frozenset({"127.0.0.1", "10.0.0.5"})


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),  # nginx on the host relays the client
        ("127.0.0.1", "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # the client's own header is not believed
        ("127.0.0.1", "203.0.113.9, 10.0.0.5", "203.0.113.9"),  # two trusted proxies in a row
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # attack: an untrusted peer names another address
        ("127.0.0.1", "not-an-address", "127.0.0.1"),  # a malformed hop stops the walk
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_address(peer: str, forwarded: str, client: str) -> None:
    assert client_address(peer, forwarded, TRUSTED) == client


def test_trusting_every_proxy_takes_the_leftmost_address() -> None:
    assert client_address("192.0.2.1", "203.0.113.9, 10.1.1.1", frozenset({"*"})) == "203.0.113.9"
