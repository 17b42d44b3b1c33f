"""Separation of duties on VM requests (issue 14): no one approves or rejects their own request
at any step, through the service, the page or the API; the one configured exception (a named
role in a named department) works and is audited as ``request.self_approved``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.config import load_settings
from cloudmgr.errors import ConfigurationError
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.duties import OwnDecisionRefused
from cloudmgr.runtime import Runtime, installed_settings, set_runtime
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.models import ServiceRequest
from tests.web.conftest import journey_rt  # noqa: F401  (a fixture)
from tests.web.helpers import Journey, csrf_token, logged_in
from web import create_app


@pytest.fixture
def journey(journey_rt: Runtime) -> Journey:  # noqa: F811
    return Journey(journey_rt)


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:  # noqa: F811
    return create_app(runtime=journey_rt)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def self_approving_education(journey_rt: Runtime) -> Iterator[Runtime]:  # noqa: F811
    """The runtime with the exception configured: the education department's head may approve their own."""
    settings = journey_rt.settings.with_overrides(self_approval={"prov-education": "dept_head"})
    rt = replace(journey_rt, settings=settings)
    set_runtime(rt)
    try:
        yield rt
    finally:
        set_runtime(journey_rt)


def _state(journey: Journey, request_id: int) -> tuple[str, int]:
    with journey.rt.db.unit_of_work() as uow:
        req = uow.session.get(ServiceRequest, request_id)
        assert req is not None
        return req.state, req.current_step


def _audit(journey: Journey, action: str, request_id: int) -> list[AuditEvent]:
    with journey.rt.db.unit_of_work() as uow:
        rows = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.target_id == str(request_id))
        ).all()
        uow.session.expunge_all()
        return list(rows)


def _token(journey: Journey, username: str) -> str:
    with journey.rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        return org.issue_token(uow.session, user, name="test", expires_at=None, actor=Actor.system("test")).token


def test_attack_head_approves_own_request_through_the_service(journey: Journey) -> None:
    request_id = journey.submit("lina", count=1)  # the head writes a request herself
    head = journey.actor("lina")
    with journey.rt.db.unit_of_work() as uow:
        req = sr.get_request(uow.session, head, request_id)
        assert not sr.may_decide(uow.session, head, req)
        assert request_id not in [r.id for r in sr.awaiting(uow.session, head)]
    for decide in (
        lambda s: sr.approve_request(s, head, request_id, reason="mine"),
        lambda s: sr.reject_request(s, head, request_id, reason="mine"),
    ):
        with journey.rt.db.unit_of_work() as uow, pytest.raises(OwnDecisionRefused, match="separation of duties"):
            decide(uow.session)
    assert _state(journey, request_id) == ("submitted", 0)
    # Someone else's request still waits for her as before.
    other = journey.submit("zhangwei", count=1)
    with journey.rt.db.unit_of_work() as uow:
        assert sr.may_decide(uow.session, head, sr.get_request(uow.session, head, other))
    journey.approve(other, "lina")
    assert _state(journey, other) == ("submitted", 1)


def test_attack_head_approves_own_request_through_the_page(app: Flask, journey: Journey) -> None:
    request_id = journey.submit("lina", count=1)
    head = logged_in(app, "lina")
    page = head.get(f"/portal/requests/{request_id}").get_data(as_text=True)
    assert 'data-testid="approve"' not in page  # no decision buttons on her own request
    token = csrf_token(page)
    response = head.post(
        f"/portal/requests/{request_id}/decide", data={"csrf_token": token, "approve": "1", "reason": "mine"}
    )
    assert response.status_code == 403
    assert "separation of duties" in response.get_data(as_text=True)
    assert _state(journey, request_id) == ("submitted", 0)


def test_attack_head_approves_own_request_through_the_api(client: FlaskClient, journey: Journey) -> None:
    request_id = journey.submit("lina", count=1)
    headers = {"Authorization": f"Bearer {_token(journey, 'lina')}", "Content-Type": "application/json"}
    for verb in ("approve", "reject"):
        response = client.post(
            f"/api/v1/requests/{request_id}/{verb}", headers=headers, data=json.dumps({"reason": "mine"})
        )
        assert response.status_code == 403, response.get_json()
        assert response.get_json()["error"] == "own_decision_refused"
    assert _state(journey, request_id) == ("submitted", 0)


def test_the_configured_exception_lets_the_head_approve_her_own_and_is_audited(
    self_approving_education: Runtime, journey: Journey
) -> None:
    assert installed_settings() is self_approving_education.settings
    request_id = journey.submit("lina", count=1)
    head = journey.actor("lina")
    with journey.rt.db.unit_of_work() as uow:
        assert sr.may_decide(uow.session, head, sr.get_request(uow.session, head, request_id))
    journey.approve(request_id, "lina")
    assert _state(journey, request_id) == ("submitted", 1)
    [event] = _audit(journey, "request.self_approved", request_id)
    assert event.actor == "lina" and event.detail["step"] == "dept_head" and event.detail["role"] == "dept_head"
    # The exception names the head only: the staff member's own request still needs the head.
    staff_request = journey.submit("zhangwei", count=1)
    journey.approve(staff_request, "lina")
    assert _audit(journey, "request.self_approved", staff_request) == []


def test_the_exception_of_another_department_or_role_does_not_apply(journey_rt: Runtime, journey: Journey) -> None:  # noqa: F811
    request_id = journey.submit("lina", count=1)
    head = journey.actor("lina")
    for exception in ({"ts-hrss": "dept_head"}, {"prov-education": "operator"}):
        set_runtime(replace(journey_rt, settings=journey_rt.settings.with_overrides(self_approval=exception)))
        try:
            with journey.rt.db.unit_of_work() as uow, pytest.raises(OwnDecisionRefused):
                sr.approve_request(uow.session, head, request_id)
        finally:
            set_runtime(journey_rt)


def test_the_setting_is_read_strictly() -> None:
    env = {"CLOUDMGR_SECRET_KEY": "x" * 32}
    assert load_settings(env).self_approval == {}
    settings = load_settings({**env, "CLOUDMGR_SELF_APPROVAL_DEPARTMENTS": "xian-a:dept_head, xian-b:finance"})
    assert settings.self_approval == {"xian-a": "dept_head", "xian-b": "finance"}
    for bad in ("xian-a", "xian-a:admin", "xian-a:dept_staff", "Xian A:dept_head", "xian-a:dept_head,xian-a:operator"):
        with pytest.raises(ConfigurationError, match="SELF_APPROVAL"):
            load_settings({**env, "CLOUDMGR_SELF_APPROVAL_DEPARTMENTS": bad})
