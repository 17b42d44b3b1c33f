"""The moves forms offer what exists, by name (issue 18): the server fields list the departments'
running or stopped servers (their cloud id, labelled with name, department and cloud), the host
fields the compute hosts cloudmgr knows, the department field the departments by name; the
browser filters these lists as one types.  A value typed by hand still reaches the service."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from cloudmgr.moves.choices import move_choices
from cloudmgr.runtime import Runtime
from tests.journey_fixtures import Journey
from tests.moves.conftest import build_moves_org, provision
from tests.web.helpers import csrf_token
from web import create_app


@pytest.fixture
def moves_org(runtime: Runtime, tmp_path: Path) -> Journey:
    return build_moves_org(runtime, tmp_path)


@pytest.fixture
def ops(moves_org: Journey) -> FlaskClient:
    client = create_app(runtime=moves_org.rt).test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"username": "operator", "password": "moves-password-1", "csrf_token": token})
    assert answer.status_code == 302
    return client


def _datalist(html: str, testid: str) -> list[tuple[str, str]]:
    block = html.split(f'data-testid="{testid}">')[1].split("</datalist>")[0]
    return re.findall(r'<option value="([^"]*)"(?: label="([^"]*)")?>', block)


def test_the_forms_list_servers_hosts_and_departments_by_name(ops: FlaskClient, moves_org: Journey) -> None:
    (server,) = provision(moves_org)
    assert server.server_id
    with moves_org.rt.db.unit_of_work() as uow:
        choices = move_choices(uow.session, "zh")
    assert [(c.server_id, c.name, c.department_key) for c in choices.servers] == [
        (server.server_id, server.name, "prov-education")
    ]
    assert server.host in {h.name for h in choices.hosts}

    html = ops.get("/ops/moves").get_data(as_text=True)
    servers = _datalist(html, "move-servers")
    assert [value for value, _ in servers] == [server.server_id]
    label = servers[0][1]
    assert server.name in label and "省教育厅" in label and "prov-education" not in label
    assert server.host in [value for value, _ in _datalist(html, "move-hosts")]
    departments = dict(_datalist(html, "move-departments"))
    assert departments["prov-education"] == "省教育厅"
    for name, datalist in (
        ("m-server_id", "move-servers"),
        ("m-target_host", "move-hosts"),
        ("d-host", "move-hosts"),
        ("x-server_id", "move-servers"),
        ("x-department", "move-departments"),
    ):
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
        assert tag and f'list="{datalist}"' in tag.group(0), name


def test_a_server_typed_by_hand_still_gets_the_services_answer(ops: FlaskClient) -> None:
    token = csrf_token(ops.get("/ops/moves").get_data(as_text=True))
    answer = ops.post(
        "/ops/moves/migrate",
        data={
            "m-kind": "cold",
            "m-cloud": "education",
            "m-server_id": "no-such-server",
            "m-reason": "x",
            "csrf_token": token,
        },
    )
    assert answer.status_code in {404, 409, 400}
    assert 'data-testid="move-servers"' in answer.get_data(as_text=True)
