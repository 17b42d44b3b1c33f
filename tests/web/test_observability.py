from __future__ import annotations

import io
import json
import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cloudmgr.config import load_settings
from cloudmgr.db import utcnow
from cloudmgr.errors import ConfigurationError
from cloudmgr.logformat import make_handler, request_id_var
from cloudmgr.organisation.models import Cloud
from cloudmgr.scheduler.jobs import instrumented
from cloudmgr.workqueue.models import Lease


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_metrics_have_the_request_histogram_by_endpoint(client: FlaskClient) -> None:
    client.get("/login")
    client.get("/no/such/page/12345")
    client.get("/api/v1/me")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert "cloudmgr_http_request_seconds" in text
    assert 'endpoint="auth.login"' in text
    assert 'endpoint="api.me"' in text and 'status="401"' in text
    assert 'endpoint="unmatched"' in text
    assert "/no/such/page/12345" not in text  # never the raw path


# --- /readyz ---------------------------------------------------------------------------------


def _hold_leader_lease(app: Flask, *, seconds: int) -> None:
    rt = app.extensions["cloudmgr"]
    with rt.db.unit_of_work() as uow:
        lease = uow.session.get(Lease, "scheduler")
        if lease is None:
            uow.session.add(
                Lease(name="scheduler", holder="test-leader", expires_at=utcnow() + timedelta(seconds=seconds))
            )
        else:
            lease.holder, lease.expires_at = "test-leader", utcnow() + timedelta(seconds=seconds)
    app.extensions.get("cloudmgr_readyz", {}).clear()  # the answer is cached a few seconds


def test_readyz_needs_a_scheduler_leader_with_a_fresh_lease(app: Flask, client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["scheduler"] == {"ok": False, "error": "no scheduler has ever held the leader lease"}
    clouds = body["checks"]["clouds"]
    assert "education" in clouds and all(check == {"ok": True} for check in clouds.values())

    _hold_leader_lease(app, seconds=30)
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "ready"
    assert response.get_json()["checks"]["scheduler"]["leader"] == "test-leader"

    _hold_leader_lease(app, seconds=-5)  # the leader died: its lease ran out
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "expired" in response.get_json()["checks"]["scheduler"]["error"]


def test_readyz_answer_is_cached_for_a_few_seconds(app: Flask, client: FlaskClient) -> None:
    first = client.get("/readyz").get_json()
    second = client.get("/readyz").get_json()
    assert first["checked_at"] == second["checked_at"]


def test_readyz_reports_a_cloud_that_does_not_answer(app: Flask, client: FlaskClient) -> None:
    rt = app.extensions["cloudmgr"]
    _hold_leader_lease(app, seconds=30)
    with rt.db.unit_of_work() as uow:
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == "science"))
        assert cloud is not None
        cloud.os_cloud = "no-such-cloud"
    # The simulated provider answers for every cloud: make the science cloud's provider a
    # real OpenStack one whose clouds.yaml entry does not exist.
    from cloudmgr.providers import ProviderRegistry

    openstack = ProviderRegistry(rt.settings.with_overrides(cloud_provider="openstack", os_client_config_file=""))
    real_for_cloud = rt.providers.for_cloud

    def for_cloud(key: str, os_cloud: str, region: str | None):  # type: ignore[no-untyped-def]
        if key == "science":
            return openstack.for_cloud(key, os_cloud, region)
        return real_for_cloud(key, os_cloud, region)

    rt.providers.for_cloud = for_cloud
    try:
        response = client.get("/readyz")
    finally:
        del rt.providers.for_cloud
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["clouds"]["science"]["ok"] is False and checks["clouds"]["science"]["error"]
    assert checks["clouds"]["education"] == {"ok": True}
    assert checks["scheduler"]["ok"] is True


# --- request ids and structured logs ------------------------------------------------------------


def test_every_answer_carries_a_request_id(client: FlaskClient) -> None:
    generated = client.get("/login").headers["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/login").headers["X-Request-ID"] != generated
    assert client.get("/healthz", headers={"X-Request-ID": "lb-1234.abc"}).headers["X-Request-ID"] == "lb-1234.abc"
    # A header that is not a sane token (log injection, huge) is replaced.
    for bad in ("evil\r\nX-Injected: 1", "x" * 500, "<script>"):
        answer = client.get("/healthz", headers={"X-Request-ID": bad.replace("\r\n", " ")})
        assert answer.headers["X-Request-ID"] != bad and len(answer.headers["X-Request-ID"]) == 32


def test_json_logs_carry_the_request_id_on_every_line(app: Flask, client: FlaskClient) -> None:
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    @app.get("/_test/logs")
    def _logs() -> str:
        logging.getLogger("cloudmgr.test").warning("inside the view", extra={"detail_key": 7})
        return "ok"

    try:
        response = client.get("/_test/logs", headers={"X-Request-ID": "req-42"})
        client.get("/healthz", headers={"X-Request-ID": "req-43"})
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert response.status_code == 200
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line["request_id"] == "req-42"]
    assert {line["logger"] for line in mine} >= {"cloudmgr.test", "cloudmgr.web.access"}
    view_line = next(line for line in mine if line["logger"] == "cloudmgr.test")
    assert view_line["message"] == "inside the view" and view_line["level"] == "WARNING"
    assert view_line["detail_key"] == 7
    access = next(line for line in mine if line["logger"] == "cloudmgr.web.access")
    assert access["status"] == 200 and access["path"] == "/_test/logs"
    assert any(line["request_id"] == "req-43" for line in lines)
    # Outside a request there is no id.
    logging.getLogger("cloudmgr.test").warning("outside")
    assert request_id_var.get() is None


def test_text_log_format_has_the_request_id() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("cloudmgr.test.text")
    handler = make_handler("text", stream)
    logger.addHandler(handler)
    token = request_id_var.set("rid-9")
    try:
        logger.error("hello")
    finally:
        request_id_var.reset(token)
        logger.removeHandler(handler)
    assert "[rid-9]: hello" in stream.getvalue()


def test_log_format_setting_is_checked() -> None:
    assert load_settings({"CLOUDMGR_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(ConfigurationError, match="LOG_FORMAT"):
        load_settings({"CLOUDMGR_LOG_FORMAT": "xml"})


# --- the Grafana dashboard ----------------------------------------------------------------------

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "cloudmgr.json"


def _metric_names(expr: str) -> set[str]:
    return {name for name in re.findall(r"\b(cloudmgr_[a-z0-9_]+)", expr)}


def test_dashboard_uses_only_metrics_the_app_exports(app: Flask, client: FlaskClient) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(expressions) >= 20
    used = set().union(*(_metric_names(e) for e in expressions))
    # A seeded app that served requests and ran a job.
    client.get("/login")
    instrumented("test.job")(lambda: None)()
    exported = client.get("/metrics").get_data(as_text=True)
    families = set(re.findall(r"^# TYPE (\S+) ", exported, re.M))
    samples = set(re.findall(r"^(cloudmgr_[a-z0-9_]+)", exported, re.M))
    known = samples | families
    for family in families:  # histograms and counters: the series names Prometheus stores
        known |= {family + suffix for suffix in ("_bucket", "_sum", "_count", "_total", "_created")}
    missing = sorted(used - known)
    assert not missing, f"the dashboard uses metrics /metrics does not export: {missing}"
    for wanted in ("cloudmgr_http_request_seconds_bucket", "cloudmgr_job_runs_total", "cloudmgr_requests"):
        assert wanted in used
    assert 'job="test.job"' in exported and 'outcome="success"' in exported
