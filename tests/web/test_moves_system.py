"""A whole system's move from /ops/moves and /api/v1/moves (issue 17), on the simulated clouds."""

from __future__ import annotations

import json
import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from cloudmgr.moves.models import Move
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from tests.journey_fixtures import Journey
from tests.moves.test_system_moves import SYSTEM_NAME, legacy_system
from tests.web.test_moves import _post, moves_org, ops
from web import create_app

__all__ = ["moves_org", "ops"]  # the fixtures, imported to be used here


def test_the_page_starts_a_system_move_and_shows_its_servers_in_order(ops: FlaskClient, moves_org: Journey) -> None:
    setup = legacy_system(moves_org)
    page = ops.get("/ops/moves").get_data(as_text=True)
    assert 'data-testid="system-form"' in page
    fields = {"s-cloud": "education", "s-department": "prov-education", "s-target_cloud": "province-base"}
    # Bad input: no reason; a system the department does not have. Nothing is stored.
    answer = _post(ops, "/ops/moves/system", {**fields, "s-application_system": SYSTEM_NAME})
    assert answer.status_code == 400 and "请说明原因" in answer.get_data(as_text=True)
    answer = _post(ops, "/ops/moves/system", {**fields, "s-application_system": "没有", "s-reason": "x"})
    assert answer.status_code == 400 and "没有" in answer.get_data(as_text=True)
    with moves_org.rt.db.unit_of_work() as uow:
        assert uow.session.scalar(select(Move)) is None
    answer = _post(ops, "/ops/moves/system", {**fields, "s-application_system": SYSTEM_NAME, "s-reason": "web"})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    match = re.search(r"/ops/moves/(\d+)$", answer.headers["Location"])
    assert match is not None
    moves_org.drain()
    detail = ops.get(f"/ops/moves/{match.group(1)}").get_data(as_text=True)
    assert 'data-testid="children-table"' in detail and 'data-state="done"' in detail
    assert f'data-testid="move-system">{SYSTEM_NAME}<' in detail and "<code>None</code>" not in detail
    # The servers in dependency order: the database, the API, the web front.
    table = detail[detail.index('data-testid="children-table"') :]
    positions = [table.index(f"<td>{setup.servers[h].name}</td>") for h in ("tax-db", "tax-api", "tax-web")]
    assert positions == sorted(positions)
    for step in ("stop_servers", "move_servers", "switch_over"):
        assert f'data-step="{step}"' in detail


def test_the_api_starts_a_system_move(moves_org: Journey) -> None:
    rt = moves_org.rt
    legacy_system(moves_org)
    client = create_app(runtime=rt).test_client()
    with rt.db.unit_of_work() as uow:
        token = org.issue_token(
            uow.session, org.get_user_by_name(uow.session, "operator"), name="t", expires_at=None,
            actor=Actor.system("test"),
        ).token  # fmt: skip

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        answer = client.open("/api/v1" + path, method=method, headers=headers, data=json.dumps(body))
        return answer.status_code, answer.get_json()

    body = {"kind": "system", "cloud": "education", "department": "prov-education", "target_cloud": "province-base"}
    status, answer = call("POST", "/moves", {**body, "reason": "api"})
    assert status == 400 and "application_system" in answer["message"]
    status, answer = call("POST", "/moves", {**body, "reason": "api", "application_system": SYSTEM_NAME, "zone": "x"})
    assert status == 400 and "zone" in answer["message"]
    status, answer = call("POST", "/moves", {**body, "reason": "api", "application_system": SYSTEM_NAME})
    assert status == 202, answer
    assert answer["kind"] == "system" and len(answer["children"]) == 3
    assert [c["kind"] for c in answer["children"]] == ["cross_cloud"] * 3
    moves_org.drain()
    status, answer = call("GET", f"/moves/{answer['id']}")
    assert (
        status == 200
        and answer["state"] == "done"
        and answer["resources"]["layers"] == [["tax-db"], ["tax-api"], ["tax-web"]]
    )
    assert {c["state"] for c in answer["children"]} == {"done"}
    status, listed = call("GET", "/moves?kind=system")
    assert status == 200 and [m["id"] for m in listed["items"]] == [answer["id"]]
