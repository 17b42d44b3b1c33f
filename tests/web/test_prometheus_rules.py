"""cloudmgr's Prometheus alert rules (deploy/prometheus/alerts.yml): promtool checks them and runs their
unit tests (alerts_test.yml: each alert fires, and stays quiet when it should), every metric they and the
Grafana dashboard name is one /metrics exports, and the health metrics the alerts read say what they
should.  promtool is Debian's prometheus package (`make system-deps`); without it the test fails."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from cloudmgr.db import utcnow
from cloudmgr.organisation.models import Cloud
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.servicerequests.states import RequestState
from cloudmgr.workqueue.models import Lease
from tests.web.helpers import Journey

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "cloudmgr.json"

# What an operator must act on (issue 18), each an alert of the rules file.
REQUIRED_ALERTS = {
    "CloudmgrRequestStuckProvisioning",
    "CloudmgrQuotaDrift",
    "CloudmgrOrphanServers",
    "CloudmgrWavePastItsWindow",
    "CloudmgrSystemsAtRisk",
    "CloudmgrSystemsOverdue",
    "CloudmgrCloudUnreachable",
    "CloudmgrNoSchedulerLeader",
}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is missing: the alert rules' tests need Debian's prometheus package. "
            "Install it with: apt-get update && apt-get install -y prometheus (or `make system-deps`)",
            pytrace=False,
        )
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], cwd=RULES.parent, capture_output=True, text=True, timeout=120, check=False
    )


def _rules() -> list[dict[str, object]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    result = _run("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_unit_tests_every_alert_firing_and_quiet() -> None:
    result = _run("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    # Every alert is tested, both firing (an expected alert) and quiet (exp_alerts: []).
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    alerts = {str(rule["alert"]) for rule in _rules()}
    assert alerts >= REQUIRED_ALERTS
    assert alerts <= fired, sorted(alerts - fired)
    assert alerts <= quiet, sorted(alerts - quiet)


def _exported_names(client: FlaskClient) -> tuple[str, set[str]]:
    client.get("/login")
    exported = client.get("/metrics").get_data(as_text=True)
    families = set(re.findall(r"^# TYPE (\S+) ", exported, re.M))
    known = families | set(re.findall(r"^(cloudmgr_[a-z0-9_]+)", exported, re.M))
    for family in families:  # histograms and counters: the series names Prometheus stores
        known |= {family + suffix for suffix in ("_bucket", "_sum", "_count", "_total", "_created")}
    return exported, known


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(cloudmgr_[a-z0-9_]+)", expr))


def test_rules_and_dashboard_name_only_metrics_cloudmgr_exports(client: FlaskClient) -> None:
    _exported, known = _exported_names(client)
    in_rules = set().union(*(_metric_names(str(rule["expr"])) for rule in _rules()))
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    in_dashboard = set().union(*(_metric_names(t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])))
    assert not sorted(in_rules - known), f"the alert rules use metrics /metrics does not export: {in_rules - known}"
    assert not sorted(in_dashboard - known), (
        f"the dashboard uses metrics /metrics does not export: {in_dashboard - known}"
    )
    # The dashboard shows the migration: moves, runbooks, waves and the programme.
    for wanted in (
        "cloudmgr_moves_total",
        "cloudmgr_move_step_seconds_bucket",
        "cloudmgr_runbook_step_seconds_bucket",
        "cloudmgr_runbook_rollbacks_total",
        "cloudmgr_migration_waves",
        "cloudmgr_legacy_systems",
        "cloudmgr_overdue_systems",
        "cloudmgr_server_rooms",
    ):
        assert wanted in in_dashboard, wanted


def _sample(exported: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{name}{re.escape(labels)} (\S+)$", exported, re.M)
    assert match, f"no sample {name}{labels} in /metrics"
    return float(match.group(1))


def test_health_metrics_say_what_the_alerts_read(app: Flask, client: FlaskClient) -> None:
    rt = app.extensions["cloudmgr"]
    exported, _known = _exported_names(client)
    assert _sample(exported, "cloudmgr_scheduler_leader") == 0  # nobody leads
    assert _sample(exported, "cloudmgr_migration_waves_past_window") == 0
    assert "cloudmgr_request_oldest_provisioning_seconds{" not in exported  # nothing provisions
    with rt.db.unit_of_work() as uow:
        keys = list(uow.session.scalars(select(Cloud.key).where(Cloud.enabled.is_(True))))
        uow.session.execute(update(Cloud).where(Cloud.key == keys[0]).values(synced_at=utcnow()))
        uow.session.add(Lease(name="scheduler", holder="test-leader", expires_at=utcnow() + timedelta(seconds=60)))
    assert keys
    exported, _known = _exported_names(client)
    assert _sample(exported, "cloudmgr_scheduler_leader") == 1
    assert _sample(exported, "cloudmgr_cloud_last_sync_timestamp_seconds", f'{{cloud="{keys[0]}"}}') > 1.7e9
    assert _sample(exported, "cloudmgr_cloud_last_sync_timestamp_seconds", f'{{cloud="{keys[1]}"}}') == 0  # never


def test_a_request_provisioning_for_an_hour_is_measured(journey: Journey) -> None:
    from web import create_app

    request_id = journey.submit(count=1, prefix="slow")
    journey.approve(request_id, "lina", "operator")
    with journey.rt.db.unit_of_work() as uow:  # the worker started it an hour ago and is still at it
        uow.session.execute(
            update(ServiceRequest)
            .where(ServiceRequest.id == request_id)
            .values(state=RequestState.PROVISIONING, provisioning_started_at=utcnow() - timedelta(hours=1))
        )
    exported, _known = _exported_names(create_app(runtime=journey.rt).test_client())
    age = _sample(exported, "cloudmgr_request_oldest_provisioning_seconds", '{cloud="education"}')
    assert 3590 < age < 3700
