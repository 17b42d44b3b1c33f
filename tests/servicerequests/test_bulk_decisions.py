"""Several requests decided at once (servicerequests.decide_many): each through the same call as one
decision, in its own savepoint; a refused row leaves nothing behind and the others stay decided."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.errors import NotYourTurn, RequestInvalid, RequestNotFound
from cloudmgr.servicerequests.models import ServiceRequest
from tests.journey_fixtures import Journey


def _submit(j: Journey, prefix: str, *, staff: object = None, cloud: str = "education") -> int:
    with j.rt.db.unit_of_work() as uow:
        return sr.create_request(
            uow.session,
            staff or j.staff,  # type: ignore[arg-type]
            j.form(1, prefix=prefix, cloud=cloud),
            submit=True,
            settings=j.rt.settings,  # type: ignore[arg-type]
        ).id


def _state(j: Journey, request_id: int) -> str:
    with j.rt.db.unit_of_work() as uow:
        found = uow.session.get(ServiceRequest, request_id)
        assert found is not None
        return found.state


def test_each_row_is_decided_alone_and_a_refusal_leaves_nothing(journey: Journey) -> None:
    first, second = _submit(journey, "one"), _submit(journey, "two")
    with journey.rt.db.unit_of_work() as uow:
        sr.approve_request(uow.session, journey.head, first, reason="ok")
    with journey.rt.db.unit_of_work() as uow:
        approvals_before = uow.session.scalar(select(func.count()).where(AuditEvent.action == "request.approve"))
        outcome = sr.decide_many(uow.session, journey.operator, [first, second, first, 99999], "approve")
    assert outcome.decided == [first]  # duplicates once
    refused = {row.request_id: type(row.error) for row in outcome.refused}
    assert refused == {second: NotYourTurn, 99999: RequestNotFound}
    assert _state(journey, first) == "approved" and _state(journey, second) == "submitted"
    with journey.rt.db.unit_of_work() as uow:
        approvals = uow.session.scalar(select(func.count()).where(AuditEvent.action == "request.approve"))
    assert approvals == (approvals_before or 0) + 1  # the refused rows wrote nothing


def test_another_departments_requests_are_not_found_and_bad_asks_refused(journey: Journey) -> None:
    theirs = _submit(journey, "theirs", staff=journey.other_staff, cloud="ts-gov")
    with journey.rt.db.unit_of_work() as uow:
        outcome = sr.decide_many(uow.session, journey.head, [theirs], "approve")
    assert outcome.decided == [] and isinstance(outcome.refused[0].error, RequestNotFound)
    for ids, decision, reason in (([], "approve", ""), ([theirs], "maybe", ""), ([theirs], "reject", " ")):
        with pytest.raises(RequestInvalid), journey.rt.db.unit_of_work() as uow:
            sr.decide_many(uow.session, journey.head, ids, decision, reason=reason)
    with pytest.raises(RequestInvalid), journey.rt.db.unit_of_work() as uow:
        sr.decide_many(uow.session, journey.head, range(1, sr.MAX_BULK + 2), "approve")
