"""The planner's uploaded CSV cannot smuggle classified systems into a plan (issue 14).

A row named after a classified inventory system (any case, padded) but marked non-classified
is refused; a row with no classification that is not in the inventory is refused as unknown
unless the operator says blanks are non-classified; every refusal is audited with its entry
point (API, page, CLI).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.capacity.planner.cli import plan_group
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from tests.inventory.helpers import make_system
from tests.web.helpers import csrf_token, demo_login, logged_in
from web import create_app

OPERATOR = demo_login("operator").username
CSV = (
    "name,vcpus,ram_gb,disk_gb,zone,classification\n"
    "  EDU-Secret-01 ,2,4,40,extranet,non-classified\n"  # a classified inventory system, lied about
    "edu-open-01,2,4,40,extranet,\n"  # in the inventory, non-classified: the inventory answers
    "mystery-01,2,4,40,extranet,\n"  # not in the inventory, no classification: unknown
    "web-01,2,4,40,internet,non-classified\n"
)


@pytest.fixture
def rt(seeded: Runtime) -> Runtime:
    with seeded.db.unit_of_work() as uow:
        make_system(uow.session, "edu-secret-01", classification="classified", network="intranet", state="intranet")
        make_system(uow.session, "edu-open-01")
    return seeded


def _refusals(rt: Runtime) -> list[tuple[str, str, str, str]]:
    with rt.db.unit_of_work() as uow:
        events = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "planner.row_refused").order_by(AuditEvent.id)
        ).all()
        return [(e.target_id, e.detail["entry_point"], e.detail["source"], e.actor) for e in events]


def _api_plan(app: Flask, rt: Runtime, **extra: Any) -> Any:
    with rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, OPERATOR)
        token = org.issue_token(uow.session, user, name="test", expires_at=None, actor=Actor.system("test")).token
    body = {"servers_csv": CSV, "host_vcpus": 16, "host_ram_gb": 64, "host_disk_gb": 1000, **extra}
    response = app.test_client().post("/api/v1/planner", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_attack_a_classified_inventory_host_marked_non_classified_through_the_api(rt: Runtime) -> None:
    app = create_app(runtime=rt)
    plan = _api_plan(app, rt)
    assert set(plan["placements"]) == {"edu-open-01", "web-01"}
    refused = {r["name"]: r["reason"] for r in plan["refused"]}
    assert set(refused) == {"EDU-Secret-01", "mystery-01"}
    assert "classified in the inventory (edu-secret-01)" in refused["EDU-Secret-01"]
    assert "classification unknown" in refused["mystery-01"]
    assert _refusals(rt) == [
        ("EDU-Secret-01", "planner.api", "inventory", OPERATOR),
        ("mystery-01", "planner.api", "blank", OPERATOR),
    ]


def test_blank_rows_are_planned_only_when_the_operator_says_so(rt: Runtime) -> None:
    plan = _api_plan(create_app(runtime=rt), rt, blank_is_non_classified=True)
    assert set(plan["placements"]) == {"edu-open-01", "mystery-01", "web-01"}
    assert [r["name"] for r in plan["refused"]] == ["EDU-Secret-01"]  # the inventory still wins


def test_attack_through_the_page(rt: Runtime) -> None:
    ops = logged_in(create_app(runtime=rt), OPERATOR)
    token = csrf_token(ops.get("/ops/planner").get_data(as_text=True))
    data = {
        "csrf_token": token,
        "servers": (io.BytesIO(CSV.encode()), "servers.csv"),
        "host_vcpus": "16",
        "host_ram_gb": "64",
        "host_disk_gb": "1000",
        "cpu_ratio": "1",
        "ram_ratio": "1",
        "max_wave": "50",
    }
    response = ops.post("/ops/planner", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-refused="EDU-Secret-01"' in html and 'data-refused="mystery-01"' in html
    assert [(name, entry) for name, entry, _source, _actor in _refusals(rt)] == [
        ("EDU-Secret-01", "planner.page"),
        ("mystery-01", "planner.page"),
    ]


def test_attack_through_the_cli(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "servers.csv"
    path.write_text(CSV, encoding="utf-8")
    host = ["--host-vcpus", "16", "--host-ram-gb", "64", "--host-disk-gb", "1000", "--json"]
    result = CliRunner().invoke(plan_group, ["consolidate", "--servers", str(path), *host])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert sorted(r["name"] for r in plan["refused"]) == ["EDU-Secret-01", "mystery-01"]
    assert {entry for _name, entry, _source, _actor in _refusals(rt)} == {"planner.cli"}
    assert all(actor.startswith("cli:") for *_rest, actor in _refusals(rt))
