"""A department user's landing page shows their department's servers (name, state, address,
flavor) and the requests they wrote (state, last change), with links and counts; department
users are never shown the hypervisor a server runs on, in the pages or the API; operators are
(issue 18)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import update

from cloudmgr.db import utcnow
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ManagedServer
from tests.web.helpers import Journey, logged_in
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _token(rt: Runtime, username: str) -> str:
    with rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        return org.issue_token(
            uow.session, user, name="t", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        ).token


def test_staff_see_their_servers_and_requests_with_counts(app: Flask, journey: Journey) -> None:
    active = journey.active_request(count=2)
    draft = journey.submit("zhangwei", count=1, submit=False, prefix="draftx")
    heads = journey.submit("lina", count=1, prefix="headsown")  # the head's, not zhangwei's
    servers = journey.servers(active)
    assert all(state == "active" for _, _, state in servers)
    staff = logged_in(app, "zhangwei")
    html = staff.get("/portal/?lang=en").get_data(as_text=True)

    panel = html.split('data-testid="home-servers"')[1].split("</section>")[0]
    for server_id, name, _ in servers:
        assert f'href="/portal/servers/{server_id}">{name}</a>' in panel
    assert "m1.small" in panel or "vCPU" in panel
    assert re.search(r"<code>[^<]*\d+\.\d+\.\d+\.\d+", panel), "the server's address is shown"

    requests = html.split('data-testid="home-requests"')[1].split("</section>")[0]
    assert f'href="/portal/requests/{active}">#{active}</a>' in requests
    assert f'href="/portal/requests/{draft}">#{draft}</a>' in requests
    assert f"#{heads}<" not in requests  # only the requests the user wrote
    assert requests.index(f"#{draft}<") < requests.index(f"#{active}<")  # last changed first

    # as many as the servers page lists (a request waiting for approval has its servers pending)
    listed = staff.get("/portal/servers").get_data(as_text=True).count('class="server-row ')
    count_servers = html.split('data-testid="count-servers"')[1]
    assert re.match(rf'><span class="stat-value">{listed}<', count_servers) and listed >= 2
    assert "2 running" in count_servers.split("</a>")[0]
    count_open = html.split('data-testid="count-open-requests"')[1]
    assert re.match(r'><span class="stat-value">1<', count_open)  # the draft; the active one is done


def test_another_departments_servers_never_show(app: Flask, journey: Journey) -> None:
    active = journey.active_request(count=1)
    [(server_id, name, _)] = journey.servers(active)
    other = logged_in(app, "wangfang").get("/portal/").get_data(as_text=True)
    assert name not in other and f"/portal/servers/{server_id}" not in other
    assert 'data-testid="count-servers"><span class="stat-value">0<' in other


def test_departments_are_not_shown_the_hypervisor_operators_are(app: Flask, journey: Journey) -> None:
    active = journey.active_request(count=1)
    [(server_id, _, _)] = journey.servers(active)
    with journey.rt.db.unit_of_work() as uow:  # the simulated cloud may leave it empty: be sure
        uow.session.execute(update(ManagedServer).where(ManagedServer.id == server_id).values(host="compute-07"))

    for username in ("zhangwei", "lina"):
        client = logged_in(app, username)
        for path in ("/portal/", "/portal/servers", f"/portal/servers/{server_id}", f"/portal/requests/{active}"):
            assert "compute-07" not in client.get(path).get_data(as_text=True), (username, path)
        api = app.test_client()
        headers = {"Authorization": f"Bearer {_token(journey.rt, username)}"}
        server = api.get(f"/api/v1/servers/{server_id}", headers=headers).get_json()
        assert server["name"] and server["host"] is None
        request = api.get(f"/api/v1/requests/{active}", headers=headers).get_json()
        assert [s["host"] for s in request["servers"]] == [None]
        listed = api.get("/api/v1/servers", headers=headers).get_json()["items"]
        assert listed and all(s["host"] is None for s in listed)

    ops = logged_in(app, "operator")
    assert "compute-07" in ops.get(f"/ops/requests/{active}").get_data(as_text=True)
    headers = {"Authorization": f"Bearer {_token(journey.rt, 'operator')}"}
    assert app.test_client().get(f"/api/v1/servers/{server_id}", headers=headers).get_json()["host"] == "compute-07"


def test_the_landing_page_speaks_chinese(app: Flask, journey: Journey) -> None:
    html = logged_in(app, "zhangwei").get("/portal/").get_data(as_text=True)
    for text in ("本部门云主机", "我办理中的申请", "最近变更", "您还没有申请。"):
        assert text in html, text
