"""Purchase pages and API through the Flask client: the department and finance journeys,
bad input on every form and endpoint, department isolation, reports, exports and showback."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.purchases.models import PurchaseRequest
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ServiceRequest
from tests.web.helpers import Journey, logged_in, post_form
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "不动产登记系统扩容",
        "category": "server",
        "application_system": "不动产登记系统",
        "justification": "业务量增长",
        "lines-0-description": "机架式服务器 2路 8核 16G内存",
        "lines-0-vcpus": "8",
        "lines-0-ram_gb": "16",
        "lines-0-disk_gb": "40",
        "lines-0-quantity": "2",
        "lines-0-unit_price": "45000",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _new(client: FlaskClient, *, submit: bool = True, **overrides: Any) -> int:
    data = _form(**overrides)
    data["submit" if submit else "save"] = "1"
    response = post_form(client, "/portal/purchases/new", data)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def test_department_and_reviewer_journey_with_vm_draft(app: Flask, journey: Journey) -> None:
    staff = logged_in(app, "zhangwei")
    assert "/portal/purchases" in staff.get("/portal/").get_data(as_text=True)  # nav item
    pid = _new(staff)
    journey.drain()  # the findings with the clouds' live capacity: a work item, after the commit
    page = staff.get(f"/portal/purchases/{pid}").get_data(as_text=True)
    assert 'data-finding="cloud_provides"' in page

    finance = logged_in(app, "finance")
    queue = finance.get("/finance/purchases").get_data(as_text=True)
    assert f'data-purchase="{pid}"' in queue and "/finance/purchase-reports" in queue and "/finance/showback" in queue
    detail = finance.get(f"/finance/purchases/{pid}").get_data(as_text=True)
    assert "room for" in detail or "有余量" in detail or 'data-finding="cloud_provides"' in detail
    response = post_form(
        finance,
        f"/finance/purchases/{pid}/decide",
        {"decision": "block", "basis": "cloud_provides", "reason": "云平台已提供"},
        page=f"/finance/purchases/{pid}",
    )
    assert response.status_code == 302
    page = staff.get(f"/portal/purchases/{pid}").get_data(as_text=True)
    assert 'data-testid="vm-draft"' in page and 'data-testid="decision"' in page
    response = post_form(staff, f"/portal/purchases/{pid}/vm-draft", {}, page=f"/portal/purchases/{pid}")
    assert response.status_code == 302 and "/portal/requests/" in response.headers["Location"]
    with journey.rt.db.unit_of_work() as uow:
        purchase = uow.session.get(PurchaseRequest, pid)
        assert purchase is not None and purchase.service_request_id
        request = uow.session.get(ServiceRequest, purchase.service_request_id)
        assert request is not None and request.state == "draft"

    # The other department sees nothing of it, anywhere.
    other = logged_in(app, "wangfang")
    assert other.get(f"/portal/purchases/{pid}").status_code == 404
    assert f'data-purchase="{pid}"' not in other.get("/portal/purchases").get_data(as_text=True)
    assert other.get("/finance/purchases").status_code in {302, 403}


def test_bad_input_on_every_form(app: Flask, journey: Journey) -> None:
    staff = logged_in(app, "zhangwei")
    staff.get("/language/en")
    cases = [
        ({"title": ""}, "Enter a title"),
        ({"category": "yacht"}, "Not a valid choice"),
        ({"lines-0-quantity": "0"}, "Between 1 and"),
        ({"lines-0-vcpus": "-3"}, "Between 0 and"),
        ({"lines-0-description": ""}, "Describe the item"),
        ({"lines-0-unit_price": "x"}, "Enter a price in yuan"),
        ({"lines-0-ram_gb": "lots"}, "Enter a whole number"),
        ({"application_system": ""}, "Name the application system"),
        ({"legacy_hostname": "bad host!"}, "A host name"),
    ]
    for overrides, message in cases:
        data = _form(**overrides)
        data["save"] = "1"
        response = post_form(staff, "/portal/purchases/new", data)
        assert response.status_code == 400, overrides
        assert message in response.get_data(as_text=True), (overrides, message)
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.query(PurchaseRequest).count() == 0

    pid = _new(staff, submit=False)
    bad_edit = post_form(staff, f"/portal/purchases/{pid}/edit", {**_form(**{"lines-0-quantity": "0"}), "save": "1"})
    assert bad_edit.status_code == 400
    with journey.rt.db.unit_of_work() as uow:
        purchase = uow.session.get(PurchaseRequest, pid)
        assert purchase is not None and str(purchase.amount_yuan) == "90000.00"  # nothing half-written
    detail = f"/portal/purchases/{pid}"
    for data, message in (
        ({"file_name": "a.pdf", "size_bytes": "10", "sha256": "nothex"}, "64 hexadecimal"),
        ({"file_name": "a.pdf", "size_bytes": "0", "sha256": "a" * 64}, "Between 1 byte"),
        ({"file_name": "", "size_bytes": "10", "sha256": "a" * 64}, "Enter the file name"),
    ):
        response = post_form(staff, f"{detail}/attachments", data, page=detail)
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    response = post_form(staff, f"{detail}/withdraw", {"reason": "x" * 3000}, page=detail)
    assert response.status_code == 400
    response = post_form(staff, f"{detail}/vm-draft", {}, page=detail)
    assert response.status_code == 409
    assert staff.post(f"{detail}/submit", data={}).status_code == 400  # no CSRF token
    assert post_form(staff, f"{detail}/submit", {}, page=detail).status_code == 302

    finance = logged_in(app, "finance")
    finance.get("/language/en")
    page = f"/finance/purchases/{pid}"
    for data, message in (
        ({"decision": "block", "reason": ""}, "A reason is required"),
        ({"decision": "return", "reason": " "}, "A reason is required"),
        ({"decision": "sell", "reason": "x"}, "Not a valid choice"),
        ({"reason": "x"}, "Choose a decision"),
    ):
        response = post_form(finance, f"{page}/decide", data, page=page)
        assert response.status_code == 400 and message in response.get_data(as_text=True), data
    assert finance.get("/finance/purchases/999999").status_code == 404
    with journey.rt.db.unit_of_work() as uow:
        purchase = uow.session.get(PurchaseRequest, pid)
        assert purchase is not None and purchase.state == "submitted" and purchase.decided_by is None
    # The basis select is ignored unless blocking.
    response = post_form(finance, f"{page}/decide", {"decision": "approve", "basis": "duplicate"}, page=page)
    assert response.status_code == 302


def test_reports_exports_and_showback(app: Flask, journey: Journey) -> None:
    staff = logged_in(app, "zhangwei")
    finance = logged_in(app, "finance")
    blocked = _new(staff)
    network: dict[str, Any] = {"category": "network", "lines-0-description": "核心交换机", "lines-0-vcpus": "0"}
    approved = _new(staff, **network)
    for pid, data in ((blocked, {"decision": "block", "reason": "云上已有"}), (approved, {"decision": "approve"})):
        response = post_form(finance, f"/finance/purchases/{pid}/decide", data, page=f"/finance/purchases/{pid}")
        assert response.status_code == 302
    page = finance.get("/finance/purchase-reports").get_data(as_text=True)
    assert "chart-bar-blocked" in page and "¥90,000.00" in page and "style=" not in page
    csv_text = finance.get("/finance/purchase-reports.csv").get_data(as_text=True)
    assert "prov-education" in csv_text and "90000.00" in csv_text
    response = finance.get("/finance/purchase-reports.xlsx")
    assert response.status_code == 200 and (response.mimetype or "").endswith("spreadsheetml.sheet")
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(response.data))
    rows = list(workbook["purchases"].iter_rows(values_only=True))
    assert {(r[1], r[3], r[5], r[7]) for r in rows[1:]} == {
        ("prov-education", "server", 0.0, 90000.0),
        ("prov-education", "network", 90000.0, 0.0),
    }
    assert finance.get("/finance/purchase-reports?year=abc").status_code == 200  # ignored, all years
    assert finance.get("/finance/showback").status_code == 200
    assert finance.get("/finance/showback.csv").get_data(as_text=True).lstrip("\ufeff").startswith("department,")
    assert staff.get("/finance/purchase-reports").status_code in {302, 403}


def _api(client: FlaskClient, rt: Runtime, username: str) -> Any:
    with rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(uow.session, user, name="test", expires_at=None, actor=Actor.system("test")).token

    def call(method: str, path: str, body: Any = None, raw: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = client.open("/api/v1" + path, method=method, headers=headers, data=data)
        payload = response.get_json()
        if response.status_code >= 400:
            assert set(payload) == {"error", "message"} and payload["message"], payload
        return response.status_code, payload

    return call


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "服务器采购",
        "category": "server",
        "amount_yuan": "90000.00",
        "application_system": "不动产登记系统",
        "justification": "业务增长",
        "items": [
            {
                "description": "机架式服务器",
                "vcpus": 8,
                "ram_gb": 16,
                "disk_gb": 40,
                "quantity": 2,
                "unit_price": "45000",
            }
        ],
    }
    body.update(overrides)
    return body


def test_api_purchases(app: Flask, journey: Journey) -> None:
    client = app.test_client()
    staff = _api(client, journey.rt, "zhangwei")
    other = _api(client, journey.rt, "wangfang")
    finance = _api(client, journey.rt, "finance")
    status, created = staff("POST", "/purchases", _body(submit=True))
    assert status == 201 and created["state"] == "submitted"
    pid = created["id"]
    journey.drain()  # the findings with the clouds' live capacity: a work item, after the commit
    status, created = staff("GET", f"/purchases/{pid}")
    assert any(f["kind"] == "cloud_provides" for f in created["findings"])
    for bad, code in (
        (_body(amount_yuan="1"), "purchase_invalid"),
        (_body(category="yacht"), "purchase_invalid"),
        (_body(items=[]), "purchase_invalid"),
        (_body(items="x"), "invalid"),
        (_body(items=[{"description": "x", "quantity": "2", "unit_price": "1"}]), "invalid"),
        (_body(amount_yuan=1.5), "invalid"),
        (_body(colour="red"), "invalid"),
        ({"title": "x"}, "invalid"),
    ):
        status, payload = staff("POST", "/purchases", bad)
        assert status == 400 and payload["error"] == code, (bad, payload)
    assert staff("POST", "/purchases", raw="{not json")[0] == 400
    assert finance("POST", "/purchases", _body())[0] == 403
    assert other("GET", f"/purchases/{pid}")[0] == 404
    # A near-duplicate of another department: the finding says so without naming that purchase.
    status, twin = other("POST", "/purchases", _body(submit=True))
    assert status == 201
    duplicate = next(f for f in twin["findings"] if f["kind"] == "duplicate")
    assert duplicate["evidence"] == {"matches": [], "other_departments": 1}
    status, seen_by_finance = finance("GET", f"/purchases/{twin['id']}")
    finance_duplicate = next(f for f in seen_by_finance["findings"] if f["kind"] == "duplicate")
    assert finance_duplicate["evidence"]["matches"][0]["purchase_id"] == pid
    status, listed = other("GET", "/purchases")
    assert status == 200 and pid not in {p["id"] for p in listed["items"]}
    assert staff("GET", "/purchases?state=bogus")[0] == 400
    assert staff("POST", f"/purchases/{pid}/decide", {"decision": "approve"})[0] == 403
    status, queue = finance("GET", "/purchase-queue?sort=amount")
    assert status == 200 and {p["id"] for p in queue["items"]} == {pid, twin["id"]}
    assert finance("POST", f"/purchases/{pid}/decide", {"decision": "block"})[0] == 400
    assert finance("POST", f"/purchases/{pid}/decide", {"decision": "nope", "reason": "x"})[0] == 400
    status, decided = finance(
        "POST", f"/purchases/{pid}/decide", {"decision": "block", "reason": "云上已有", "basis": "cloud_provides"}
    )
    assert status == 200 and decided["state"] == "blocked" and decided["offer"]["count"] >= 1
    assert finance("POST", f"/purchases/{pid}/decide", {"decision": "approve"})[0] == 409
    status, draft = staff("POST", f"/purchases/{pid}/vm-draft")
    assert status == 201 and draft["state"] == "draft"
    assert other("POST", f"/purchases/{pid}/vm-draft")[0] == 404
    status, report = finance("GET", "/purchase-reports")
    assert status == 200 and report["blocked_yuan"] == "90000.00"
    status, own = other("GET", "/purchase-reports")
    assert status == 200 and own["items"] == []  # its own purchase is still pending
    assert finance("GET", "/purchase-reports?year=1999")[0] == 400
    status, sb = finance("GET", "/showback")
    assert status == 200 and "items" in sb
    spec = client.get("/api/v1/openapi.json").get_json()
    for path in (
        "/purchases",
        "/purchases/{purchase_id}",
        "/purchases/{purchase_id}/submit",
        "/purchases/{purchase_id}/decide",
        "/purchase-reports",
        "/showback",
    ):
        assert "/api/v1" + path in spec["paths"], path
