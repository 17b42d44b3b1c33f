"""The /metrics settings and rule (cloudmgr.metrics_access); the web attacks are in
tests/web/test_metrics_access.py."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from cloudmgr import metrics_access
from cloudmgr.config import load_settings
from cloudmgr.errors import ConfigurationError

PRODUCTION = {
    "CLOUDMGR_ENV": "production",
    "CLOUDMGR_SECRET_KEY": "k" * 64,
    "CLOUDMGR_DATABASE_URL": "postgresql+psycopg://cloudmgr@db/cloudmgr",
}
TOKEN = "a-long-enough-scrape-token"


def test_development_allows_loopback_and_production_allows_nobody_by_default() -> None:
    development = load_settings({})
    assert development.metrics_allow == (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
    assert development.metrics_token == "" and metrics_access.misconfiguration(development) is None
    production = load_settings(PRODUCTION)
    assert production.metrics_allow == () and production.metrics_token == ""
    why = metrics_access.misconfiguration(production)
    assert why is not None and "CLOUDMGR_METRICS_TOKEN_FILE" in why and "CLOUDMGR_METRICS_ALLOW" in why
    # An explicitly empty list means nobody, in development too.
    assert load_settings({"CLOUDMGR_METRICS_ALLOW": ""}).metrics_allow == ()


def test_allow_list_is_addresses_and_networks() -> None:
    settings = load_settings(PRODUCTION | {"CLOUDMGR_METRICS_ALLOW": " 10.20.0.0/24, 192.0.2.9 ,2001:db8::/64"})
    assert [str(n) for n in settings.metrics_allow] == ["10.20.0.0/24", "192.0.2.9/32", "2001:db8::/64"]
    assert metrics_access.misconfiguration(settings) is None
    for bad in ("prometheus.gov.cn", "10.0.0.0/33", "10.0.0.1;rm"):
        with pytest.raises(ConfigurationError, match="CLOUDMGR_METRICS_ALLOW"):
            load_settings({"CLOUDMGR_METRICS_ALLOW": bad})


def test_token_comes_from_the_setting_or_a_file_and_must_be_long(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics-token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    settings = load_settings(PRODUCTION | {"CLOUDMGR_METRICS_TOKEN_FILE": str(token_file)})
    assert settings.metrics_token == TOKEN and TOKEN not in repr(settings)
    assert load_settings({"CLOUDMGR_METRICS_TOKEN": TOKEN}).metrics_token == TOKEN
    with pytest.raises(ConfigurationError, match="not both"):
        load_settings({"CLOUDMGR_METRICS_TOKEN": TOKEN, "CLOUDMGR_METRICS_TOKEN_FILE": str(token_file)})
    with pytest.raises(ConfigurationError, match="cannot be read"):
        load_settings({"CLOUDMGR_METRICS_TOKEN_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="is empty"):
        load_settings({"CLOUDMGR_METRICS_TOKEN_FILE": str(tmp_path / "empty")})
    for weak in ("short", "has a space in the middle"):
        with pytest.raises(ConfigurationError, match="at least 16 printable characters"):
            load_settings({"CLOUDMGR_METRICS_TOKEN": weak})


def test_the_rule_token_or_direct_allowed_address() -> None:
    settings = load_settings(PRODUCTION | {"CLOUDMGR_METRICS_TOKEN": TOKEN, "CLOUDMGR_METRICS_ALLOW": "10.20.0.5"})

    def check(remote_addr: str | None, authorization: str | None = None, headers: dict[str, str] | None = None) -> None:
        metrics_access.check_scrape(
            settings, remote_addr=remote_addr, authorization=authorization, headers=headers or {}
        )

    check("203.0.113.7", f"Bearer {TOKEN}")
    check("203.0.113.7", f"bearer   {TOKEN}  ")  # the scheme is case-insensitive (RFC 7235)
    check("10.20.0.5")
    check("::ffff:10.20.0.5")
    for remote_addr in ("203.0.113.7", None, "", "unix:/run/gunicorn.sock", "fe80::1%eth0"):
        with pytest.raises(metrics_access.ScrapeUnauthorized):
            check(remote_addr)
    with pytest.raises(metrics_access.ScrapeUnauthorized):
        check("10.20.0.5", headers={"X-Forwarded-For": "10.20.0.5"})  # relayed: the address says nothing
    no_token = settings.with_overrides(metrics_token="")
    with pytest.raises(metrics_access.ScrapeRefused) as refused:
        metrics_access.check_scrape(no_token, remote_addr="203.0.113.7", authorization=f"Bearer {TOKEN}", headers={})
    assert type(refused.value) is metrics_access.ScrapeRefused and refused.value.http_status == 403
