"""/api/v1/lines/rentals, contracts-ending, savings and programme: the renewal journey through the API,
bad input (4xx JSON, nothing stored), the roles and department isolation."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from cloudmgr.lines import tracking
from cloudmgr.lines.finance_models import LineRentalRequest
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from tests.web.test_lines_finance import world  # noqa: F401  (the fixture)
from web import create_app

Call = Callable[..., tuple[int, Any]]


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _api(app: Flask, rt: Runtime, username: str) -> Call:
    with rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(uow.session, user, name="test", expires_at=None, actor=Actor.system("test")).token
    client = app.test_client()

    def call(method: str, path: str, body: Any = None, raw: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = client.open("/api/v1" + path, method=method, headers=headers, data=data)
        payload = response.get_json()
        if response.status_code >= 400:
            assert set(payload) == {"error", "message"} and payload["message"], payload
        return response.status_code, payload

    return call


def _count(rt: Runtime) -> int:
    with rt.db.unit_of_work() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(LineRentalRequest)) or 0)


def test_renewal_flagged_and_blocked_through_the_api(app: Flask, journey_rt: Runtime, world: dict[str, Any]) -> None:  # noqa: F811
    staff, finance = _api(app, journey_rt, "zhangwei"), _api(app, journey_rt, "finance")
    end = (world["today"] + timedelta(days=700)).isoformat()
    status, body = staff("POST", "/lines/rentals", {"kind": "renewal", "line": "EDU-BD", "monthly_rent": "2900",
                                                    "contract_end": end})  # fmt: skip
    assert status == 201 and body["state"] == "submitted" and body["flagged"] and body["line"] == "EDU-BD"
    rental_id = body["id"]
    status, queue = finance("GET", "/lines/rentals/queue")
    assert status == 200 and [r["id"] for r in queue["items"]] == [rental_id]
    assert queue["items"][0]["findings"][0]["kind"] == "extranet_reaches"
    status, refused = finance("POST", f"/lines/rentals/{rental_id}/decide", {"decision": "block"})
    assert status == 400 and refused["error"] == "line_rental_invalid"
    status, decided = finance("POST", f"/lines/rentals/{rental_id}/decide", {"decision": "block", "reason": "外网已通"})
    assert status == 200 and decided["state"] == "blocked" and decided["block_basis"] == "extranet_reaches"
    assert decided["decided_by"] == "finance" and decided["decision_reason"] == "外网已通"
    status, again = finance("POST", f"/lines/rentals/{rental_id}/decide", {"decision": "approve"})
    assert status == 409 and again["error"] == "line_rental_state"
    status, seen = staff("GET", f"/lines/rentals/{rental_id}")
    assert status == 200 and seen["state"] == "blocked"


def test_bad_input_roles_and_isolation(app: Flask, journey_rt: Runtime, world: dict[str, Any]) -> None:  # noqa: F811
    staff, other = _api(app, journey_rt, "zhangwei"), _api(app, journey_rt, "wangfang")
    finance, operator = _api(app, journey_rt, "finance"), _api(app, journey_rt, "operator")
    before = _count(journey_rt)
    for body in (
        {"kind": "renewal", "line": "EDU-BD", "monthly_rent": "abc", "contract_end": "2030-01-01"},
        {"kind": "lease", "monthly_rent": "1", "contract_end": "2030-01-01"},
        {"kind": "renewal", "line": "EDU-BD", "monthly_rent": "1", "contract_end": "2030-01-01", "extra": 1},
        {"kind": "new", "monthly_rent": "1", "contract_end": "2030-01-01", "bandwidth_mbps": "x"},
        {"kind": "new", "monthly_rent": "1", "contract_end": "2030-01-01", "carrier": "telecom"},
    ):
        status, _ = staff("POST", "/lines/rentals", body)
        assert status == 400, body
    assert staff("POST", "/lines/rentals", raw="[")[0] == 400
    # another department's line: not found
    status, _ = other("POST", "/lines/rentals", {"kind": "renewal", "line": "EDU-BD", "monthly_rent": "1",
                                                 "contract_end": "2031-01-01"})  # fmt: skip
    assert status == 404
    assert _count(journey_rt) == before
    status, draft = staff("POST", "/lines/rentals", {"kind": "renewal", "line": "EDU-BD", "monthly_rent": "100",
                                                     "contract_end": "2031-01-01", "submit": False})  # fmt: skip
    assert status == 201 and draft["state"] == "draft"
    assert other("GET", f"/lines/rentals/{draft['id']}")[0] == 404
    assert other("POST", f"/lines/rentals/{draft['id']}/submit")[0] == 404
    assert other("GET", "/lines/rentals")[1]["items"] == []
    assert finance("POST", f"/lines/rentals/{draft['id']}/decide", {"decision": "approve"})[0] == 409
    assert operator("POST", f"/lines/rentals/{draft['id']}/decide", {"decision": "approve"})[0] == 403
    assert staff("GET", "/lines/rentals/queue")[0] == 403
    assert finance("POST", "/lines/rentals", {"kind": "new"})[0] == 403
    assert staff("POST", f"/lines/rentals/{draft['id']}/submit")[0] == 200
    assert finance("GET", "/lines/rentals?state=submitted")[1]["items"][0]["id"] == draft["id"]
    assert finance("GET", "/lines/rentals?state=nope")[0] == 400


def test_contracts_savings_programme(app: Flask, journey_rt: Runtime, world: dict[str, Any]) -> None:  # noqa: F811
    finance, other = _api(app, journey_rt, "finance"), _api(app, journey_rt, "wangfang")
    status, ending = finance("GET", "/lines/contracts-ending")
    assert status == 200 and {(r["code"], r["action"]) for r in ending["items"]} == {
        ("EDU-BD", "cut_over_extranet"),
        ("TS-QA", "renew"),
    }
    assert [r["code"] for r in other("GET", "/lines/contracts-ending")[1]["items"]] == ["TS-QA"]
    assert finance("GET", "/lines/contracts-ending?days=0")[0] == 400
    status, savings = finance("GET", "/lines/savings")
    assert status == 200 and savings["monthly_rent"] == "2500.00" and savings["lines"] == 1
    assert sum(float(r["monthly_rent"]) for r in savings["by_city"]) == 2500.0
    assert finance("GET", "/lines/savings?year=1999")[0] == 400
    assert other("GET", "/lines/savings")[1]["lines"] == 0
    status, programme = finance("GET", "/lines/programme")
    assert status == 200 and programme["summary"]["lines"] == 3 and programme["summary"]["remaining"] == 2
    assert programme["burndown"]["actual"][-1]["date"] == tracking.today().isoformat()
    assert "pace" in programme["at_risk_rule"]
    status, own = other("GET", "/lines/programme")
    assert [d["key"] for d in own["departments"]] == ["ts-hrss"]
