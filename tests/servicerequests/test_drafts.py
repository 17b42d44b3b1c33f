"""A VM request draft is changed by its author and saved again or submitted, by the same rules as a
new request (issue 18): the department wall, the author alone, only a draft, the classified rule,
the firewall on its zone and the quota at submission; a refused change leaves the draft as it was."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from cloudmgr.firewall.services import parse_rule_lines
from cloudmgr.inventory.errors import ClassifiedPlacementRefused
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.errors import InvalidTransition, NotYourTurn, RequestInvalid, RequestNotFound
from cloudmgr.servicerequests.models import RequestEvent, ServiceRequest
from tests.journey_fixtures import Journey
from tests.servicerequests.classified_helpers import import_system, refusals


def _draft(journey: Journey, **changes: object) -> int:
    form = dataclasses.replace(journey.form(2, prefix="drft"), **changes)
    with journey.rt.db.unit_of_work() as uow:
        return sr.create_request(uow.session, journey.staff, form, submit=False, settings=journey.rt.settings).id


def _update(journey: Journey, actor: Actor, request_id: int, *, submit: bool = False, **changes: object) -> None:
    form = dataclasses.replace(journey.form(2, prefix="drft"), **changes)
    with journey.rt.db.unit_of_work() as uow:
        sr.update_draft(uow.session, actor, request_id, form, submit=submit, settings=journey.rt.settings)


def _request(journey: Journey, request_id: int) -> ServiceRequest:
    with journey.rt.db.unit_of_work() as uow:
        found = uow.session.get(ServiceRequest, request_id)
        assert found is not None
        uow.session.expunge(found)
        return found


def test_the_author_changes_a_draft_and_submits_it(journey: Journey) -> None:
    request_id = _draft(journey)
    rules = tuple(parse_rule_lines("ingress tcp 8443 10.0.0.0/8"))
    _update(
        journey,
        journey.staff,
        request_id,
        count=3,
        name_prefix="renamed",
        justification="changed",
        firewall_rules=rules,
    )
    changed = _request(journey, request_id)
    assert (changed.count, changed.name_prefix, changed.justification, changed.state) == (
        3,
        "renamed",
        "changed",
        "draft",
    )
    assert changed.monthly_cost > 0
    with journey.rt.db.unit_of_work() as uow:
        again = sr.draft_form(uow.session, journey.staff, uow.session.get(ServiceRequest, request_id))  # type: ignore[arg-type]
        actions = uow.session.scalars(select(RequestEvent.action).where(RequestEvent.request_id == request_id)).all()
    assert again.count == 3 and again.name_prefix == "renamed"
    assert [r.as_line() for r in again.firewall_rules] == ["ingress tcp 8443 10.0.0.0/8"]
    assert list(actions) == ["create", "edit"]

    _update(journey, journey.staff, request_id, count=1, submit=True)
    submitted = _request(journey, request_id)
    assert submitted.state == "submitted" and submitted.count == 1
    with pytest.raises(InvalidTransition):  # a submitted request is not a draft any more
        _update(journey, journey.staff, request_id, count=2)


def test_only_the_author_in_the_department_changes_a_draft(journey: Journey) -> None:
    request_id = _draft(journey)
    with journey.rt.db.unit_of_work() as uow:
        colleague = Actor.of(
            org.create_user(
                uow.session,
                username="draft-colleague",
                password="Colleague-pass-2026",
                role=Role.DEPT_STAFF,
                department_key="prov-education",
                actor=Actor.system("t"),
            )
        )
    with pytest.raises(NotYourTurn):
        _update(journey, colleague, request_id, count=1)
    with pytest.raises(NotYourTurn):  # the head approves, and does not write for the author
        _update(journey, journey.head, request_id, count=1)
    with pytest.raises(RequestNotFound):  # another department's draft does not exist for them
        _update(journey, journey.other_staff, request_id, count=1)
    assert _request(journey, request_id).count == 2
    with journey.rt.db.unit_of_work() as uow:
        draft = uow.session.get(ServiceRequest, request_id)
        assert draft is not None
        assert sr.may_edit(journey.staff, draft)
        assert not sr.may_edit(journey.head, draft) and not sr.may_edit(colleague, draft)


def test_a_change_is_checked_like_a_new_request(journey: Journey) -> None:
    request_id = _draft(journey)
    system_id = import_system(journey.rt, "edu-secret-db", classified=True)
    with pytest.raises(ClassifiedPlacementRefused):
        _update(journey, journey.staff, request_id, legacy_system_id=system_id, name_prefix="sneak")
    assert [e.detail.get("entry_point") for e in refusals(journey.rt)] == ["request"]  # audited
    with pytest.raises(RequestInvalid):
        _update(journey, journey.staff, request_id, count=0)
    unchanged = _request(journey, request_id)
    assert (unchanged.name_prefix, unchanged.legacy_system_id, unchanged.count) == ("drft", None, 2)


def test_the_quota_holds_when_a_changed_draft_is_submitted(journey: Journey) -> None:
    request_id = _draft(journey)
    with pytest.raises(QuotaExceeded):
        _update(journey, journey.staff, request_id, count=9, submit=True)  # 8 instances in the quota
    after = _request(journey, request_id)
    assert (after.state, after.count) == ("draft", 2)  # nothing half-written
