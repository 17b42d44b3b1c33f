"""Runbook pages and API: the system page's panel, a run's event log, live events, starting a step."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cloudmgr.db import utcnow
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runbooks.models import RunbookEvent, RunbookRun
from cloudmgr.runtime import Runtime
from tests.runbooks.conftest import add_system
from tests.web.helpers import csrf_token, logged_in


def _token(rt: Runtime, username: str) -> dict[str, str]:
    with rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(uow.session, user, name="test", expires_at=None, actor=Actor.system("test")).token
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def finished_run(seeded: Runtime) -> tuple[int, int]:
    """A system with a failed cutover (rolled back) and its events."""
    with seeded.db.unit_of_work() as uow:
        system = add_system(uow.session, "edu-web-09", ansible_host="192.0.2.9", state="migrating")
        run = RunbookRun(
            system_id=system.id,
            step="cutover",
            state="rolled_back",
            rc=2,
            changed=1,
            actor="operator",
            reason="cutover playbook ended failed (rc=2): edu-web-09-cloud: Service started on the target: port busy",
            event_count=3,
            started_at=utcnow(),
            finished_at=utcnow(),
        )
        uow.session.add(run)
        uow.session.flush()
        for counter, (event, task, status, message) in enumerate(
            [
                ("playbook_on_play_start", None, None, None),
                ("runner_on_ok", "Source service stopped (no more writes)", "changed", None),
                ("runner_on_failed", "Service started on the target", "failed", "port <busy>"),
            ]
        ):
            uow.session.add(
                RunbookEvent(
                    run_id=run.id,
                    counter=counter,
                    event=event,
                    host="edu-web-09",
                    play="Cut over",
                    task=task,
                    status=status,
                    message=message,
                )
            )
        return system.id, run.id


def test_the_system_page_shows_the_runs_and_live_events(app: Flask, finished_run: tuple[int, int]) -> None:
    system_id, run_id = finished_run
    ops = logged_in(app, "operator")
    html = ops.get(f"/ops/systems/{system_id}").get_data(as_text=True)
    assert 'data-testid="runbook-panel"' in html and f'href="/ops/runbooks/{run_id}"' in html
    assert "port &lt;busy&gt;" in html  # escaped
    assert 'src="/static/js/runbooks.js"' in html and "<script>" not in html
    assert f'data-runbook-events="/ops/runbooks/{run_id}/events.json"' in html

    page = ops.get(f"/ops/runbooks/{run_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Service started on the target" in text and 'data-active="false"' in text
    assert ops.get(f"/ops/runbooks/{run_id}/stdout").status_code == 404  # no artefacts kept for this one
    assert ops.get("/ops/runbooks/999999").status_code == 404

    events = ops.get(f"/ops/runbooks/{run_id}/events.json?after=0").get_json()
    assert events["run"]["state"] == "rolled_back" and [e["status"] for e in events["items"]] == [
        None,
        "changed",
        "failed",
    ]
    after = events["items"][1]["id"]
    assert [e["task"] for e in ops.get(f"/ops/runbooks/{run_id}/events.json?after={after}").get_json()["items"]] == [
        "Service started on the target"
    ]
    bad = ops.get(f"/ops/runbooks/{run_id}/events.json?after=x")
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid"


def test_an_operator_starts_a_step_from_the_system_page(app: Flask, seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        system_id = add_system(uow.session, "edu-web-10", ansible_host="192.0.2.10").id
    ops = logged_in(app, "operator")
    page = ops.get(f"/ops/systems/{system_id}").get_data(as_text=True)
    response = ops.post(f"/ops/systems/{system_id}/runbook/precheck", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302
    html = ops.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-state="queued"' in html and 'data-testid="runbook-start-replicate"' in html
    again = ops.post(
        f"/ops/systems/{system_id}/runbook/replicate", data={"csrf_token": csrf_token(html)}, follow_redirects=True
    )
    assert "runbook_busy" not in again.get_data(as_text=True)  # a sentence, not a code
    assert "already has runbook run" in again.get_data(as_text=True)
    assert ops.post(f"/ops/systems/{system_id}/runbook/precheck").status_code == 400  # no CSRF token


def _post(client: FlaskClient, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    response = client.post(path, headers=headers)
    assert response.content_type.startswith("application/json"), response.get_data(as_text=True)
    return response.status_code, response.get_json()


def test_the_api_starts_steps_and_streams_events(
    client: FlaskClient, seeded: Runtime, finished_run: tuple[int, int]
) -> None:
    system_id, run_id = finished_run
    operator = _token(seeded, "operator")
    status, body = _post(client, f"/api/v1/systems/{system_id}/runbook/verify", operator)
    assert status == 202 and body["step"] == "verify" and body["state"] == "queued"
    status, body = _post(client, f"/api/v1/systems/{system_id}/runbook/verify", operator)
    assert status == 409 and body["error"] == "runbook_busy"
    status, body = _post(client, f"/api/v1/systems/{system_id}/runbook/reboot", operator)
    assert status == 400 and body["error"] == "unknown_step" and "precheck" in body["message"]
    status, body = _post(client, "/api/v1/systems/999999/runbook/verify", operator)
    assert status == 404

    runs = client.get(f"/api/v1/systems/{system_id}/runbook", headers=operator).get_json()["items"]
    assert [r["step"] for r in runs] == ["verify", "cutover"]
    events = client.get(f"/api/v1/runbook-runs/{run_id}/events?after=0", headers=operator).get_json()
    assert len(events["items"]) == 3 and events["run"]["reason"].startswith("cutover playbook ended failed")
    assert client.get(f"/api/v1/runbook-runs/{run_id}/events?after=-1", headers=operator).status_code == 400
    assert client.get(f"/api/v1/runbook-runs/{run_id}", headers=operator).get_json()["rc"] == 2

    staff = _token(seeded, "zhangwei")
    assert client.post(f"/api/v1/systems/{system_id}/runbook/verify", headers=staff).status_code == 403


def test_metrics_have_the_runbook_series(client: FlaskClient) -> None:
    text = client.get("/metrics").get_data(as_text=True)
    assert "# TYPE cloudmgr_runbook_rollbacks_total counter" in text
    assert "# TYPE cloudmgr_runbook_step_seconds histogram" in text


def test_the_system_page_offers_only_the_steps_the_service_would_queue(app: Flask, seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        system_id = add_system(uow.session, "edu-web-11", ansible_host="192.0.2.11").id
    ops = logged_in(app, "operator")
    html = ops.get(f"/ops/systems/{system_id}").get_data(as_text=True)

    def button(step: str) -> str:
        start = html.index(f'data-testid="runbook-start-{step}"')
        return html[start : html.index(">", start)]

    assert "disabled" not in button("precheck")
    assert "disabled" in button("verify") and "disabled" in button("decommission")  # a legacy system
