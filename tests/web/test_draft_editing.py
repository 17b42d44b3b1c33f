"""Drafts can be changed from the pages: a VM request draft is opened from its page by its author,
shown filled in, changed, saved again and submitted; nobody else may open it (issue 18).
(A purchase draft's edit page is tested in test_purchases.py.)"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask

from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ServiceRequest
from tests.web.helpers import PASSWORDS, Journey, logged_in, post_form
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _form(journey: Journey, **overrides: Any) -> dict[str, Any]:
    data = {
        "zone": "extranet",
        "flavor": journey.item_id("education", "flavor", "m1.small"),
        "image": journey.item_id("education", "image", "cirros-lab"),
        "count": "2",
        "name_prefix": "lic",
        "application_system": "行政许可系统",
        "justification": "行政许可系统上云",
        "expires_on": (date.today() + timedelta(days=180)).isoformat(),
        "firewall_rules": "ingress tcp 8443 10.0.0.0/8",
    }
    data.update(overrides)
    return data


def _request(journey: Journey, request_id: int) -> ServiceRequest:
    with journey.rt.db.unit_of_work() as uow:
        found = uow.session.get(ServiceRequest, request_id)
        assert found is not None
        uow.session.expunge(found)
        return found


def test_the_author_opens_changes_and_submits_a_draft(app: Flask, journey: Journey) -> None:
    staff = logged_in(app, "zhangwei")
    created = post_form(staff, "/portal/requests/new?cloud=education", {**_form(journey), "save_draft": "1"})
    assert created.status_code == 302
    request_id = int(created.headers["Location"].rsplit("/", 1)[1])
    page = staff.get(f"/portal/requests/{request_id}").get_data(as_text=True)
    assert f'href="/portal/requests/{request_id}/edit" data-testid="edit-draft"' in page

    edit = f"/portal/requests/{request_id}/edit"
    html = staff.get(edit).get_data(as_text=True)
    assert f"#{request_id}" in html.split("</h1>")[0]
    assert 'value="lic"' in html and "行政许可系统上云" in html  # filled in from the draft
    assert "ingress tcp 8443 10.0.0.0/8" in html  # its own firewall rule, as typed
    assert f'action="/portal/requests/{request_id}/edit?cloud=education"' in html

    bad = post_form(staff, f"{edit}?cloud=education", {**_form(journey, count="0"), "save_draft": "1"}, page=edit)
    assert bad.status_code == 400 and _request(journey, request_id).count == 2

    saved = post_form(
        staff,
        f"{edit}?cloud=education",
        {**_form(journey, count="3", name_prefix="lic2"), "save_draft": "1"},
        page=edit,
    )
    assert saved.status_code == 302 and saved.headers["Location"].endswith(f"/portal/requests/{request_id}")
    changed = _request(journey, request_id)
    assert (changed.count, changed.name_prefix, changed.state) == (3, "lic2", "draft")

    submitted = post_form(staff, f"{edit}?cloud=education", {**_form(journey, count="1"), "submit": "1"}, page=edit)
    assert submitted.status_code == 302
    after = _request(journey, request_id)
    assert (after.count, after.state) == (1, "submitted")
    # submitted: no longer a draft to change
    assert staff.get(edit).status_code == 409
    assert 'data-testid="edit-draft"' not in staff.get(f"/portal/requests/{request_id}").get_data(as_text=True)


def test_nobody_but_the_author_opens_a_draft(app: Flask, journey: Journey) -> None:
    request_id = journey.submit("zhangwei", count=1, submit=False)
    with journey.rt.db.unit_of_work() as uow:
        org.create_user(
            uow.session,
            username="draft-colleague",
            password="Colleague-pass-2026",
            role=Role.DEPT_STAFF,
            department_key="prov-education",
            actor=Actor.system("t"),
        )
    PASSWORDS["draft-colleague"] = "Colleague-pass-2026"
    try:
        edit = f"/portal/requests/{request_id}/edit"
        assert logged_in(app, "draft-colleague").get(edit).status_code == 403  # a colleague
        head = logged_in(app, "lina")
        assert head.get(edit).status_code == 403  # the head approves, and does not write it
        assert 'data-testid="edit-draft"' not in head.get(f"/portal/requests/{request_id}").get_data(as_text=True)
        assert logged_in(app, "wangfang").get(edit).status_code == 404  # another department
        assert logged_in(app, "operator").get(edit).status_code == 403  # not the portal's
        # a refused change through the form leaves it as it was
        other = logged_in(app, "draft-colleague")
        refused = post_form(
            other, f"{edit}?cloud=education", {**_form(journey), "save_draft": "1"}, page="/portal/requests/new"
        )
        assert refused.status_code == 403 and _request(journey, request_id).name_prefix == "lic"
    finally:
        del PASSWORDS["draft-colleague"]


def test_the_api_changes_a_draft_by_the_same_rules(app: Flask, journey: Journey) -> None:
    from datetime import timedelta as days

    from cloudmgr.db import utcnow

    def token(username: str) -> dict[str, str]:
        with journey.rt.db.unit_of_work() as uow:
            user = org.get_user_by_name(uow.session, username)
            issued = org.issue_token(
                uow.session, user, name="t", expires_at=utcnow() + days(days=1), actor=Actor.system("t")
            )
        return {"Authorization": f"Bearer {issued.token}"}

    request_id = journey.submit("zhangwei", count=1, submit=False)
    body = {
        "cloud": "education",
        "zone": "extranet",
        "flavor": journey.item_id("education", "flavor", "m1.small"),
        "image": journey.item_id("education", "image", "cirros-lab"),
        "count": 2,
        "name_prefix": "apiedit",
        "justification": "changed through the API",
        "expires_on": (date.today() + timedelta(days=90)).isoformat(),
    }
    api = app.test_client()
    path = f"/api/v1/requests/{request_id}"
    assert api.put(path, json=body, headers=token("lina")).get_json()["error"] == "not_your_turn"
    assert api.put(path, json=body, headers=token("wangfang")).status_code == 404
    assert api.put(path, json={**body, "count": 0}, headers=token("zhangwei")).status_code == 400
    changed = api.put(path, json=body, headers=token("zhangwei"))
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["count"], changed.get_json()["state"]) == (2, "draft")
    submitted = api.put(path, json={**body, "submit": True}, headers=token("zhangwei")).get_json()
    assert submitted["state"] == "submitted"
    assert api.put(path, json=body, headers=token("zhangwei")).status_code == 409


def test_the_api_changes_a_purchase_draft_by_its_author_only(app: Flask, journey: Journey) -> None:
    from cloudmgr.db import utcnow

    def token(username: str) -> dict[str, str]:
        with journey.rt.db.unit_of_work() as uow:
            user = org.get_user_by_name(uow.session, username)
            issued = org.issue_token(
                uow.session, user, name="t", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
            )
        return {"Authorization": f"Bearer {issued.token}"}

    def body(quantity: int, amount: str) -> dict[str, Any]:
        return {
            "title": "服务器采购",
            "category": "server",
            "amount_yuan": amount,
            "application_system": "不动产登记系统",
            "justification": "业务增长",
            "items": [{"description": "机架式服务器", "vcpus": 8, "quantity": quantity, "unit_price": "45000"}],
        }

    api = app.test_client()
    created = api.post("/api/v1/purchases", json=body(2, "90000"), headers=token("zhangwei")).get_json()
    path = f"/api/v1/purchases/{created['id']}"
    assert api.put(path, json=body(1, "45000"), headers=token("lina")).status_code == 403
    assert api.put(path, json=body(1, "45000"), headers=token("wangfang")).status_code == 404
    mismatch = api.put(path, json=body(1, "90000"), headers=token("zhangwei"))
    assert mismatch.status_code == 400 and mismatch.get_json()["error"] == "purchase_invalid"
    changed = api.put(path, json=body(1, "45000"), headers=token("zhangwei"))
    assert changed.status_code == 200 and changed.get_json()["amount_yuan"] == "45000.00"
    submitted = api.put(path, json={**body(3, "135000"), "submit": True}, headers=token("zhangwei")).get_json()
    assert (submitted["state"], submitted["amount_yuan"]) == ("submitted", "135000.00")
    assert api.put(path, json=body(1, "45000"), headers=token("zhangwei")).status_code == 409
