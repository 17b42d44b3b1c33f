"""Attacks on purchase requests (issue 14): naming another department's host, hiding the cloud's
offer behind a classified host, a colleague changing someone else's draft, deciding one's own
purchase, formulas in the exports."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from cloudmgr import exports
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.duties import OwnDecisionRefused
from cloudmgr.organisation.models import Department, Role
from cloudmgr.purchases import services
from cloudmgr.purchases.errors import PurchaseForbidden
from cloudmgr.purchases.models import FindingKind, PurchaseRequest
from cloudmgr.purchases.services import context_for
from tests.journey_fixtures import Journey
from tests.purchases.helpers import server_form
from tests.purchases.test_services import _kinds, _legacy_hosts, _submit
from tests.web.helpers import csrf_token, logged_in, post_form
from tests.web.test_purchases import _form as web_purchase_form
from web import create_app

COLLEAGUE = "zhouqiang"
COLLEAGUE_PASSWORD = "Colleague-2026!"


@pytest.fixture
def app(pj: Journey) -> Flask:
    return create_app(runtime=pj.rt)


def _token(pj: Journey, username: str) -> str:
    with pj.rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        return org.issue_token(uow.session, user, name="test", expires_at=None, actor=Actor.system("test")).token


def _api(app: Flask, pj: Journey, username: str) -> Any:
    client, token = app.test_client(), _token(pj, username)

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        response = client.open(
            "/api/v1" + path, method=method, headers=headers, data=json.dumps(body) if body is not None else None
        )
        return response.status_code, response.get_json()

    return call


def _colleague(pj: Journey) -> Actor:
    """A second IT staff member of the education department (zhangwei's colleague)."""
    with pj.rt.db.unit_of_work() as uow:
        user = org.create_user(
            uow.session,
            username=COLLEAGUE,
            password=COLLEAGUE_PASSWORD,
            role=Role.DEPT_STAFF,
            department_key="prov-education",
            actor=Actor.system("test"),
        )
        return Actor.of(user)


def _colleague_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": COLLEAGUE, "password": COLLEAGUE_PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return client


def _hidden_host_shows_nowhere(document: str) -> None:
    for secret in ("edu-secret-01", "涉密考务系统", "edu-room-1", "intranet"):
        # The purchase's own legacy_hostname field echoes what the department typed; nothing else may.
        assert document.count(secret) <= (1 if secret == "edu-secret-01" else 0), secret


def test_attack_another_department_names_a_classified_host_on_a_purchase(app: Flask, pj: Journey) -> None:
    _legacy_hosts(pj)  # the education department's hosts, one of them classified
    baseline = _kinds(pj, _submit(pj, pj.other_staff, server_form()))
    # Through the service: the host of another department does not exist for this purchase.
    named = _submit(pj, pj.other_staff, server_form(legacy_hostname="edu-secret-01"))
    kinds = _kinds(pj, named)
    assert FindingKind.CLASSIFIED not in kinds and FindingKind.MIGRATING not in kinds
    assert set(kinds) - {FindingKind.DUPLICATE} == set(baseline) - {FindingKind.DUPLICATE}
    assert FindingKind.CLOUD_PROVIDES in kinds  # the classified host did not remove the cloud's offer
    _hidden_host_shows_nowhere(json.dumps(kinds, ensure_ascii=False))
    # Through the API.
    call = _api(app, pj, "wangfang")
    body = {
        "title": "服务器采购",
        "category": "server",
        "amount_yuan": "90000.00",
        "application_system": "社保系统",
        "justification": "业务增长",
        "legacy_hostname": "edu-secret-01",
        "submit": True,
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
    status, created = call("POST", "/purchases", body)
    assert status == 201, created
    assert {f["kind"] for f in created["findings"]}.isdisjoint({"classified", "migrating"})
    _hidden_host_shows_nowhere(json.dumps(created, ensure_ascii=False))
    # Through the page.
    page = logged_in(app, "wangfang").get(f"/portal/purchases/{created['id']}").get_data(as_text=True)
    assert page.count("涉密考务系统") == 0 and "edu-room-1" not in page


def test_attack_a_named_classified_host_does_not_hide_the_clouds_offer(pj: Journey) -> None:
    _legacy_hosts(pj)
    # Naming its own classified host without declaring the purchase classified: still weighed.
    kinds = _kinds(
        pj, _submit(pj, pj.staff, server_form(application_system="涉密考务系统", legacy_hostname="edu-secret-01"))
    )
    assert kinds[FindingKind.CLASSIFIED]["exception"] is False
    assert FindingKind.CLOUD_PROVIDES in kinds
    # Declaring classified while naming a host the inventory records as not classified: still weighed.
    kinds = _kinds(pj, _submit(pj, pj.staff, server_form(classified=True, legacy_hostname="edu-app-01")))
    assert kinds[FindingKind.CLASSIFIED]["exception"] is False
    assert FindingKind.CLOUD_PROVIDES in kinds
    # The recorded exception: declared, and the inventory agrees.
    kinds = _kinds(pj, _submit(pj, pj.staff, server_form(classified=True, legacy_hostname="edu-secret-01")))
    assert kinds[FindingKind.CLASSIFIED]["exception"] is True
    assert FindingKind.CLOUD_PROVIDES not in kinds and FindingKind.NO_CLOUD_OFFER not in kinds


def test_attack_a_colleague_edits_or_submits_anothers_draft(app: Flask, pj: Journey) -> None:
    colleague = _colleague(pj)
    with pj.rt.db.unit_of_work() as uow:
        draft = services.create_purchase(uow.session, pj.staff, server_form()).id
    context = context_for(pj.rt.settings)
    attempts = [
        lambda s: services.update_purchase(s, colleague, draft, server_form(application_system="别的系统")),
        lambda s: services.submit_purchase(s, colleague, draft, context=context),
        lambda s: services.add_attachment(s, colleague, draft, file_name="x.pdf", size_bytes=1, sha256="a" * 64),
        lambda s: services.withdraw_purchase(s, colleague, draft, reason="mine now"),
    ]
    for attempt in attempts:
        with pj.rt.db.unit_of_work() as uow, pytest.raises(PurchaseForbidden, match="only the author"):
            attempt(uow.session)
    # The page: no edit or submit buttons, and a forged POST is refused.
    client = _colleague_client(app)
    page = client.get(f"/portal/purchases/{draft}").get_data(as_text=True)
    assert 'data-testid="submit-purchase"' not in page and 'data-testid="edit-purchase"' not in page
    response = client.post(f"/portal/purchases/{draft}/submit", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 403
    assert client.get(f"/portal/purchases/{draft}/edit").status_code == 403
    edit = {**web_purchase_form(application_system="别的系统"), "save": "1"}
    response = post_form(client, f"/portal/purchases/{draft}/edit", edit, page="/portal/purchases/new")
    assert response.status_code == 403
    # The API.
    status, body = _api(app, pj, COLLEAGUE)("POST", f"/purchases/{draft}/submit")
    assert status == 403 and body["error"] == "purchase_forbidden"
    with pj.rt.db.unit_of_work() as uow:
        purchase = uow.session.get(PurchaseRequest, draft)
        assert purchase is not None and purchase.state == "draft" and purchase.application_system == "不动产登记系统"
    # The department head may, as with VM requests' drafts.
    with pj.rt.db.unit_of_work() as uow:
        assert services.submit_purchase(uow.session, pj.head, draft, context=context).state == "submitted"


def test_attack_the_author_decides_their_own_purchase(pj: Journey) -> None:
    pid = _submit(pj, pj.staff, server_form())
    # The author, now a finance reviewer (a role change), may not decide what they wrote.
    as_finance = Actor(pj.staff.username, Role.FINANCE, None, pj.staff.user_id)
    with pj.rt.db.unit_of_work() as uow:
        purchase = services.get_purchase(uow.session, as_finance, pid)
        assert not services.may_decide(uow.session, as_finance, purchase)
        assert services.may_decide(uow.session, pj.finance, purchase)
    with pj.rt.db.unit_of_work() as uow, pytest.raises(OwnDecisionRefused, match="separation of duties"):
        services.decide_purchase(uow.session, as_finance, pid, decision="approve")
    with pj.rt.db.unit_of_work() as uow:
        assert services.decide_purchase(uow.session, pj.finance, pid, decision="approve").state == "approved"


def test_attack_formulas_in_the_exports_are_neutralised(app: Flask, pj: Journey) -> None:
    formula = '=HYPERLINK("http://x")'
    with pj.rt.db.unit_of_work() as uow:
        uow.session.execute(update(Department).where(Department.key == "prov-education").values(name_zh=formula))
    pid = _submit(pj, pj.staff, server_form())
    with pj.rt.db.unit_of_work() as uow:
        services.decide_purchase(uow.session, pj.finance, pid, decision="approve")
        title = uow.session.scalar(select(PurchaseRequest.title).where(PurchaseRequest.id == pid))
    finance = logged_in(app, "finance")
    text = finance.get("/finance/purchase-reports.csv").get_data(as_text=True)
    assert '\'=HYPERLINK(""http://x"")' in text and ",=HYPERLINK" not in text
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(finance.get("/finance/purchase-reports.xlsx").data))
    cells = [c for row in workbook["purchases"].iter_rows() for c in row if isinstance(c.value, str)]
    assert "'" + formula in [c.value for c in cells]
    assert all(c.data_type == "s" for c in cells)  # no formula cell
    assert all(isinstance(c.value, int | float) for c in list(workbook["purchases"].iter_rows())[1][4:])  # numbers stay
    # A purchase's title, as any text cell, goes through the same helper.
    assert title is not None
    assert (
        exports.csv_text(["title", "amount"], [[formula, -5]]) == 'title,amount\r\n"\'=HYPERLINK(""http://x"")",-5\r\n'
    )
    for prefix in ("=", "+", "-", "@", "\t", "\r"):
        assert exports.neutralise(prefix + "1+1") == "'" + prefix + "1+1"
    assert exports.neutralise(-3) == -3 and exports.neutralise("教育厅") == "教育厅"


def test_the_head_submits_but_does_not_rewrite_a_colleagues_draft(app: Flask, pj: Journey) -> None:
    """What a purchase asks for is changed by its author alone, as a VM request's draft (issue 18);
    the head may still submit it (and answers for it)."""
    with pj.rt.db.unit_of_work() as uow:
        draft = services.create_purchase(uow.session, pj.staff, server_form()).id
    with pj.rt.db.unit_of_work() as uow, pytest.raises(PurchaseForbidden, match="only the author"):
        services.update_purchase(uow.session, pj.head, draft, server_form(application_system="别的系统"))
    head = logged_in(app, "lina")
    assert head.get(f"/portal/purchases/{draft}/edit").status_code == 403
    assert 'data-testid="edit-purchase"' not in head.get(f"/portal/purchases/{draft}").get_data(as_text=True)
    author = logged_in(app, "zhangwei")
    assert 'data-testid="edit-purchase"' in author.get(f"/portal/purchases/{draft}").get_data(as_text=True)
    with pj.rt.db.unit_of_work() as uow:
        submitted = services.submit_purchase(uow.session, pj.head, draft, context=context_for(pj.rt.settings))
        assert submitted.state == "submitted"
