"""/ops/moves and /api/v1/moves on the simulated clouds (small organisation of tests/moves)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from cloudmgr.moves.models import Move
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from tests.journey_fixtures import Journey
from tests.moves.conftest import build_moves_org, provider_of, provision
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


def _post(client: FlaskClient, path: str, data: dict[str, Any]) -> Any:
    token = csrf_token(client.get("/ops/moves").get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def test_moves_page_forms_detail_and_confirm(ops: FlaskClient, moves_org: Journey) -> None:
    page = ops.get("/ops/moves")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="migrate-form"' in html and 'data-testid="drain-form"' in html
    assert 'data-testid="cross-form"' in html and 'href="/ops/moves"' in html
    prefilled = ops.get("/ops/moves?drain_host=sim-host-1&cloud=education").get_data(as_text=True)
    assert 'value="sim-host-1"' in prefilled

    (server,) = provision(moves_org)
    # Bad input: no reason, then a host that does not exist; nothing is stored.
    answer = _post(
        ops, "/ops/moves/migrate", {"m-kind": "cold", "m-cloud": "education", "m-server_id": server.server_id}
    )
    assert answer.status_code == 400 and "请说明原因" in answer.get_data(as_text=True)
    answer = _post(
        ops,
        "/ops/moves/drain",
        {"d-cloud": "education", "d-host": "sim-host-9", "d-reason": "x", "d-disable_host": "y"},
    )
    # The refusal names the host in the page's language (a Message, lists.po: 此云上没有计算节点 …).
    assert answer.status_code == 400 and "sim-host-9" in answer.get_data(as_text=True)
    with moves_org.rt.db.unit_of_work() as uow:
        assert uow.session.scalar(select(Move)) is None

    answer = _post(
        ops,
        "/ops/moves/migrate",
        {"m-kind": "cold", "m-cloud": "education", "m-server_id": server.server_id, "m-reason": "web test"},
    )
    assert answer.status_code == 302
    match = re.search(r"/ops/moves/(\d+)$", answer.headers["Location"])
    assert match is not None
    move_id = int(match.group(1))
    moves_org.drain()
    detail = ops.get(f"/ops/moves/{move_id}").get_data(as_text=True)
    assert 'data-testid="decide"' in detail and 'data-step="migrate"' in detail
    token = csrf_token(detail)
    answer = ops.post(f"/ops/moves/{move_id}/confirm", data={"csrf_token": token, "reason": "fine"})
    assert answer.status_code == 302
    moves_org.drain()
    with moves_org.rt.db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id)
        assert move is not None and move.state == "done"
    assert provider_of(moves_org, "education").get_server(server.server_id or "").status == "ACTIVE"
    # Confirming again is refused with the reason; an unknown action or move is a 404.
    again = ops.post(f"/ops/moves/{move_id}/confirm", data={"csrf_token": token})
    assert again.status_code == 409 and 'data-testid="move-error"' in again.get_data(as_text=True)
    assert ops.post(f"/ops/moves/{move_id}/explode", data={"csrf_token": token}).status_code == 404
    assert ops.get("/ops/moves/999999").status_code == 404
    listing = ops.get("/ops/moves?state=done").get_data(as_text=True)
    assert f'data-move="{move_id}"' in listing


def test_moves_api(moves_org: Journey) -> None:
    rt = moves_org.rt
    client = create_app(runtime=rt).test_client()
    with rt.db.unit_of_work() as uow:
        tokens = {
            name: org.issue_token(
                uow.session,
                org.get_user_by_name(uow.session, name),
                name="t",
                expires_at=None,
                actor=Actor.system("test"),
            ).token
            for name in ("operator", "zhangwei")
        }

    def call(method: str, path: str, body: Any = None, user: str = "operator") -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {tokens[user]}", "Content-Type": "application/json"}
        data = json.dumps(body) if body is not None else None
        response = client.open("/api/v1" + path, method=method, headers=headers, data=data)
        return response.status_code, response.get_json()

    (server,) = provision(moves_org)
    assert call("GET", "/moves", user="zhangwei")[0] == 403
    status, body = call("POST", "/moves", {"kind": "teleport", "cloud": "education", "reason": "x", "extra": 1})
    assert (
        status == 400
        and body["error"] == "invalid"
        and "kind must be" in body["message"]
        and "extra" in body["message"]
    )
    status, body = call("POST", "/moves", {"kind": "live", "cloud": "education", "reason": "x", "server_id": "nope"})
    assert status == 400 and body["error"] == "move_invalid"
    status, body = call(
        "POST", "/moves", {"kind": "cold", "cloud": "education", "reason": "api", "server_id": server.server_id}
    )
    assert (
        status == 202 and body["state"] == "requested" and [s["name"] for s in body["steps"]] == ["migrate", "confirm"]
    )
    move_id = body["id"]
    moves_org.drain()
    status, body = call("GET", f"/moves/{move_id}")
    assert status == 200 and body["state"] == "awaiting_confirm" and body["events"][0]["actor"] == "operator"
    status, body = call("POST", f"/moves/{move_id}/revert", {"reason": "no"})
    assert status == 202 and body["state"] == "reverting"
    moves_org.drain()
    status, body = call("POST", f"/moves/{move_id}/confirm", {})
    assert status == 409 and body["error"] == "invalid_move_transition"
    status, body = call("GET", "/moves?kind=cold")
    assert status == 200 and [m["state"] for m in body["items"]] == ["reverted"]
    assert call("GET", "/moves/424242")[0] == 404
    status, body = call(
        "POST",
        "/moves",
        {"kind": "drain", "cloud": "education", "reason": "api", "host": "sim-host-1", "only_managed": True},
    )
    assert status == 202 and body["kind"] == "drain"
    moves_org.drain()
    assert call("GET", f"/moves/{body['id']}")[1]["state"] == "done"


def test_a_failed_cross_cloud_move_is_undone_from_its_page(ops: FlaskClient, moves_org: Journey) -> None:
    """The page lists the steps that carry the parts and, for a failed move whose source is
    not being deleted, offers the undo; undone, the server runs on its source again."""
    from cloudmgr.moves import jobs, services, stepping
    from cloudmgr.moves.states import MoveState
    from cloudmgr.organisation.models import Role

    (server,) = provision(moves_org)
    move_id = services.start_cross_cloud_move(
        moves_org.rt.db, moves_org.rt.providers, cloud_key="education", server_id=server.server_id or "",
        target_cloud_key="province-base", actor=Actor("operator", Role.OPERATOR), reason="web test",
    )  # fmt: skip

    class Killed(BaseException):
        pass

    def die_after_the_boot(_move_id: int, step: str, phase: str) -> None:
        if (step, phase) == ("boot", "done"):
            raise Killed

    stepping.CRASH_HOOK = die_after_the_boot
    try:
        with pytest.raises(Killed):
            jobs.run_move(moves_org.rt.db, moves_org.rt.providers, move_id)
    finally:
        stepping.CRASH_HOOK = None
    # The worker died and the work queue gave the move up.
    jobs.transition(moves_org.rt.db, move_id, MoveState.FAILED, action="fail", reason="gave up: unreachable")
    detail = ops.get(f"/ops/moves/{move_id}").get_data(as_text=True)
    assert 'data-testid="undo"' in detail and 'data-testid="resume"' in detail
    assert 'data-step="volume_images"' in detail and 'data-step="public_address"' in detail
    answer = ops.post(f"/ops/moves/{move_id}/revert", data={"csrf_token": csrf_token(detail), "reason": "not now"})
    assert answer.status_code == 302
    moves_org.drain()
    detail = ops.get(f"/ops/moves/{move_id}").get_data(as_text=True)
    assert 'data-state="reverted"' in detail and 'data-step="undo_target"' in detail
    assert 'data-testid="undo"' not in detail and 'data-testid="resume"' not in detail
    assert provider_of(moves_org, "education").get_server(server.server_id or "").status == "ACTIVE"
    assert [s for s in provider_of(moves_org, "province-base").iter_servers() if s.name == server.name] == []


def test_a_failed_step_reads_in_the_pages_language_and_in_english_in_the_api(
    ops: FlaskClient, moves_org: Journey
) -> None:
    """A step's failure is a message: the Chinese page says it in Chinese (the step by its
    label), the API in English as before; a reason stored as plain text shows as it is."""
    from cloudmgr.moves import services
    from cloudmgr.moves.models import MoveStep
    from cloudmgr.organisation.models import Role

    (server,) = provision(moves_org)
    rt = moves_org.rt
    move_id = services.start_migration(
        rt.db, rt.providers, kind="live", cloud_key="education", server_id=server.server_id or "",
        actor=Actor("operator", Role.OPERATOR), reason="web test",
    )  # fmt: skip
    provider_of(moves_org, "education").stop_server(server.server_id or "")  # stopped behind cloudmgr's back
    moves_org.drain()

    english = f"server {server.name} is SHUTOFF: only a running server can be live-migrated"
    detail = ops.get(f"/ops/moves/{move_id}").get_data(as_text=True)
    assert english not in detail
    assert f"服务器 {server.name} 的状态是 SHUTOFF：只有运行中的服务器才能热迁移" in detail
    reason = re.search(r'data-testid="move-state-reason">([^<]*)<', detail)
    assert reason is not None and reason.group(1).startswith("迁移："), reason
    assert "(failed" not in detail and "→ failed" not in detail  # the history names the states

    with rt.db.unit_of_work() as uow:
        token = org.issue_token(
            uow.session, org.get_user_by_name(uow.session, "operator"), name="t", expires_at=None,
            actor=Actor.system("test"),
        ).token  # fmt: skip
    api = create_app(runtime=rt).test_client()
    body = api.get(f"/api/v1/moves/{move_id}", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["state"] == "failed" and body["state_reason"] == f"migrate: {english}"
    assert body["steps"][0]["error"] == english and "messages" not in body["resources"]
    assert body["events"][-1]["reason"] == f"migrate: {english}"

    # A row written before its reason was a message shows its text as it is.
    with rt.db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id)
        assert move is not None
        move.state_reason = "an older reason, in English"
        step = uow.session.scalars(select(MoveStep).where(MoveStep.move_id == move_id)).one()
        step.error = "an older step error"
    detail = ops.get(f"/ops/moves/{move_id}").get_data(as_text=True)
    assert "an older reason, in English" in detail and "an older step error" in detail


def test_the_moves_list_names_the_running_step(ops: FlaskClient, moves_org: Journey) -> None:
    """A running move's step reads by its label in the list, not by its key."""
    from cloudmgr.moves import services
    from cloudmgr.moves.states import MoveState
    from cloudmgr.organisation.models import Role

    (server,) = provision(moves_org)
    rt = moves_org.rt
    move_id = services.start_cross_cloud_move(
        rt.db, rt.providers, cloud_key="education", server_id=server.server_id or "",
        target_cloud_key="province-base", actor=Actor("operator", Role.OPERATOR), reason="web test",
    )  # fmt: skip
    with rt.db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id)
        assert move is not None
        move.state, move.current_step = MoveState.RUNNING, "snapshot"
    html = ops.get("/ops/moves").get_data(as_text=True)
    step = re.search(r'data-testid="current-step">([^<]*)<', html)
    assert step is not None and step.group(1) == "为源服务器创建快照", step
