"""``/metrics`` is served to Prometheus only: its bearer token or an allowed address.

The metrics carry every department's quota (``cloudmgr_quota_limit{department=…}``), so
each attack checks the refusal's status AND that the body holds no metric at all.  The
web app runs on the journey state (quotas applied), so a served scrape does show them.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from cloudmgr.config import Settings, parse_networks
from cloudmgr.db import utcnow
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.web.helpers import logged_in
from web import create_app

TOKEN = "prometheus-scrape-token-5f2a9c"
PROMETHEUS = "10.20.0.5"  # the Prometheus server: allow-listed below
OUTSIDER = "203.0.113.7"  # anyone else (TEST-NET-3)
QUOTA_SERIES = re.compile(r'^cloudmgr_quota_limit\{[^}]*department="prov-education"', re.MULTILINE)

pytestmark = ONE_DATABASE  # the subject is the web answer, not the database


def _app(journey_rt: Runtime, **overrides: object) -> Flask:
    settings: Settings = journey_rt.settings.with_overrides(**overrides)
    return create_app(runtime=Runtime(settings=settings, db=journey_rt.db, providers=journey_rt.providers))


@pytest.fixture
def guarded_app(journey_rt: Runtime) -> Flask:
    """Production-like: a token, and one allowed address (the Prometheus server)."""
    return _app(journey_rt, metrics_token=TOKEN, metrics_allow=parse_networks("METRICS_ALLOW", f"{PROMETHEUS}/32"))


def _scrape(app: Flask, remote_addr: str, headers: dict[str, str] | None = None) -> TestResponse:
    return app.test_client().get("/metrics", headers=headers or {}, environ_base={"REMOTE_ADDR": remote_addr})


def _assert_no_metrics(response: TestResponse) -> None:
    body = response.get_data(as_text=True)
    assert "cloudmgr_" not in body and "prov-education" not in body, body[:500]


def test_the_right_token_gets_the_metrics_with_every_quota(guarded_app: Flask) -> None:
    response = _scrape(guarded_app, OUTSIDER, {"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert QUOTA_SERIES.search(response.get_data(as_text=True))


def test_an_allowed_address_gets_the_metrics_without_a_token(guarded_app: Flask) -> None:
    response = _scrape(guarded_app, PROMETHEUS)
    assert response.status_code == 200
    assert QUOTA_SERIES.search(response.get_data(as_text=True))


def test_attack_anonymous_scrape_from_another_address_is_refused(guarded_app: Flask) -> None:
    response = _scrape(guarded_app, OUTSIDER)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    _assert_no_metrics(response)


def test_attack_wrong_or_malformed_token_is_refused(guarded_app: Flask) -> None:
    for authorization in (
        "Bearer not-the-token-at-all-000",
        f"Bearer {TOKEN[:-1]}",  # one character short
        f"Bearer {TOKEN}x",  # one character more
        f"Basic {TOKEN}",  # the right secret under another scheme
        f"Bearer {TOKEN.upper()}",
        "Bearer 令牌令牌令牌令牌令牌令牌令牌令牌",  # non-ASCII must not crash the constant-time compare
        "Bearer",
    ):
        response = _scrape(guarded_app, OUTSIDER, {"Authorization": authorization})
        assert response.status_code == 401, authorization
        _assert_no_metrics(response)


def test_attack_logged_in_department_user_is_still_refused(guarded_app: Flask) -> None:
    """A session cookie says who a person is; it does not make them Prometheus."""
    client = logged_in(guarded_app, "zhangwei")  # department staff of prov-education
    assert client.get("/portal/").status_code == 200  # the session works
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": OUTSIDER})
    assert response.status_code == 401
    _assert_no_metrics(response)


def test_attack_a_users_api_token_is_not_the_metrics_token(guarded_app: Flask) -> None:
    rt: Runtime = guarded_app.extensions["cloudmgr"]
    with rt.db.unit_of_work() as uow:
        admin = org.get_user_by_name(uow.session, "admin")
        token = org.issue_token(
            uow.session, admin, name="t", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        )
    client = guarded_app.test_client()
    headers = {"Authorization": f"Bearer {token.token}"}
    assert client.get("/api/v1/me", headers=headers, environ_base={"REMOTE_ADDR": OUTSIDER}).status_code == 200
    response = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": OUTSIDER})
    assert response.status_code == 401
    _assert_no_metrics(response)


def test_attack_through_a_reverse_proxy_on_an_allowed_address_is_refused(
    guarded_app: Flask, journey_rt: Runtime
) -> None:
    """nginx on the same host makes every visitor's peer address the proxy's: a relayed request
    never gets in by address, only by token."""
    local = _app(journey_rt)  # the development default: loopback allowed, no token
    assert _scrape(local, "127.0.0.1").status_code == 200
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded", "X-Forwarded-Proto"):
        response = _scrape(local, "127.0.0.1", {header: OUTSIDER if header != "X-Forwarded-Proto" else "https"})
        assert response.status_code == 403, header
        _assert_no_metrics(response)
    # Forging the header to look like the allowed Prometheus server does not help either.
    response = _scrape(guarded_app, PROMETHEUS, {"X-Forwarded-For": PROMETHEUS})
    assert response.status_code == 401
    _assert_no_metrics(response)
    relayed_with_token = {"X-Forwarded-For": OUTSIDER, "Authorization": f"Bearer {TOKEN}"}
    assert _scrape(guarded_app, "127.0.0.1", relayed_with_token).status_code == 200


def test_attack_production_without_a_token_or_addresses_refuses_everyone(
    journey_rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cloudmgr.metrics_access"):
        app = _app(journey_rt, env="production", metrics_token="", metrics_allow=())
    warnings = [r.getMessage() for r in caplog.records if r.name == "cloudmgr.metrics_access"]
    assert len(warnings) == 1 and "CLOUDMGR_METRICS_TOKEN_FILE" in warnings[0]
    for address in ("127.0.0.1", "::1", OUTSIDER):
        response = _scrape(app, address)
        assert response.status_code == 403, address
        _assert_no_metrics(response)
    # Said once, when the app starts: not again on every refused scrape.
    assert len([r for r in caplog.records if r.name == "cloudmgr.metrics_access"]) == 1


def test_ipv4_mapped_and_ipv6_loopback_count_as_loopback_in_development(journey_rt: Runtime) -> None:
    app = _app(journey_rt)
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert _scrape(app, address).status_code == 200, address
    response = _scrape(app, "::ffff:203.0.113.7")
    assert response.status_code == 403
    _assert_no_metrics(response)
