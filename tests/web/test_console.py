"""The console page and API of a server (issue 16): a fresh link that opens in a new tab, the
console log escaped, another department's server not found, the lines asked for checked."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from cloudmgr.cloud.errors import CloudUnavailable
from cloudmgr.cloud.simulated.consoles import CONSOLE_BASE_URL, SimulatedConsoles
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ManagedServer
from tests.web.helpers import Journey, csrf_token, logged_in
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _bearer(app: Flask, journey: Journey, username: str) -> dict[str, str]:
    with journey.rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(uow.session, user, name="t", expires_at=None, actor=Actor.system("test")).token
    return {"Authorization": f"Bearer {token}"}


def test_the_server_page_links_the_console_page_which_opens_it_in_a_new_tab(
    app: Flask, journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_id, name, _ = journey.servers(journey.active_request(1))[0]
    staff = logged_in(app, "zhangwei")
    page = staff.get(f"/portal/servers/{server_id}").get_data(as_text=True)
    assert f'href="/portal/servers/{server_id}/console"' in page
    monkeypatch.setattr(
        SimulatedConsoles, "console_log", lambda self, sid, lines=None: f"<script>alert(1)</script>\n{name} login:"
    )
    response = staff.get(f"/portal/servers/{server_id}/console")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    link = page[page.index('data-testid="console-link"') - 200 : page.index('data-testid="console-link"')]
    assert f'href="{CONSOLE_BASE_URL}?token=' in link
    assert 'target="_blank" rel="noopener noreferrer"' in link
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert f'href="/portal/servers/{server_id}/console" data-testid="console-refresh"' in page
    # Another department's server is not found, and shows nothing of it.
    other = logged_in(app, "wangfang").get(f"/portal/servers/{server_id}/console")
    assert other.status_code == 404 and name not in other.get_data(as_text=True)


def test_a_stopped_server_shows_its_log_but_no_console(app: Flask, journey: Journey) -> None:
    server_id, name, _ = journey.servers(journey.active_request(1))[0]
    staff = logged_in(app, "zhangwei")
    token_page = staff.get(f"/portal/servers/{server_id}").get_data(as_text=True)
    staff.post(f"/portal/servers/{server_id}/power", data={"csrf_token": csrf_token(token_page), "action": "stop"})
    journey.drain()
    assert journey.servers(_request_of(journey, server_id))[0][2] == "stopped"
    page = staff.get(f"/portal/servers/{server_id}/console").get_data(as_text=True)
    assert 'data-testid="console-link"' not in page and f"{name} login:" in page


def _request_of(journey: Journey, server_id: int) -> int:
    with journey.rt.db.unit_of_work() as uow:
        server = uow.session.get(ManagedServer, server_id)
        assert server is not None
        return server.request_id


def test_console_api(app: Flask, journey: Journey) -> None:
    server_id, name, _ = journey.servers(journey.active_request(1))[0]
    client = app.test_client()
    staff, other = _bearer(app, journey, "zhangwei"), _bearer(app, journey, "wangfang")
    response = client.get(f"/api/v1/servers/{server_id}/console", headers=staff)
    assert response.status_code == 200
    assert response.get_json()["type"] == "novnc" and response.get_json()["url"].startswith(CONSOLE_BASE_URL)
    response = client.get(f"/api/v1/servers/{server_id}/console-log?lines=2", headers=staff)
    assert response.status_code == 200 and response.get_json()["log"].splitlines()[-1] == f"{name} login:"
    assert len(response.get_json()["log"].splitlines()) == 2
    assert client.get(f"/api/v1/servers/{server_id}/console-log", headers=staff).status_code == 200
    for bad in ("0", "1001", "x"):
        response = client.get(f"/api/v1/servers/{server_id}/console-log?lines={bad}", headers=staff)
        assert response.status_code == 400, bad
    for path in ("console", "console-log"):
        response = client.get(f"/api/v1/servers/{server_id}/{path}", headers=other)
        assert response.status_code == 404 and name not in json.dumps(response.get_json())
    assert (
        client.get(f"/api/v1/servers/{server_id}/console", headers=_bearer(app, journey, "finance")).status_code == 403
    )


def test_the_clouds_failure_shows_on_the_page_and_in_the_api(
    app: Flask, journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_id, name, _ = journey.servers(journey.active_request(1))[0]

    def refuse(self: SimulatedConsoles, server_id: str) -> None:
        raise CloudUnavailable("nova-novncproxy is down")

    monkeypatch.setattr(SimulatedConsoles, "console_url", refuse)
    response = logged_in(app, "zhangwei").get(f"/portal/servers/{server_id}/console")
    page = response.get_data(as_text=True)
    assert response.status_code == 502 and "nova-novncproxy is down" in page
    assert 'data-testid="console-link"' not in page and f"{name} login:" in page  # the log still shows
    response = app.test_client().get(f"/api/v1/servers/{server_id}/console", headers=_bearer(app, journey, "zhangwei"))
    assert response.status_code == 502 and response.get_json()["error"] == "console_unavailable"
    assert response.get_json()["message"].startswith("the cloud did not give a console: nova-novncproxy is down")
