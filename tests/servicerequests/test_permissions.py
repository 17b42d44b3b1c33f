"""What a page shows as a button is what the service allows: ``may_submit``, ``may_cancel``,
``may_retry`` and ``may_decide`` are the service's own rules (issue 15), and the service
refuses exactly when they say no."""

from __future__ import annotations

import pytest

from cloudmgr.errors import DomainError
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import UnknownDepartment
from cloudmgr.organisation.models import Department, Role
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.states import ServerState
from tests.journey_fixtures import Journey


def _draft(j: Journey) -> int:
    with j.rt.db.unit_of_work() as uow:
        return sr.create_request(uow.session, j.staff, j.form(1), submit=False, settings=j.rt.settings).id


def test_may_submit_and_may_cancel_agree_with_the_service(journey: Journey) -> None:
    j = journey
    request_id = _draft(j)
    with j.rt.db.unit_of_work() as uow:
        draft = sr.get_request(uow.session, j.staff, request_id)
        assert sr.may_submit(j.staff, draft) and sr.may_submit(j.head, draft)
        assert not sr.may_submit(j.operator, draft)
        assert sr.may_cancel(j.staff, draft) and sr.may_cancel(j.head, draft) and sr.may_cancel(j.operator, draft)
        assert not sr.may_cancel(j.finance, draft)
    # The operator is refused the submission the page would not offer them ...
    with pytest.raises(DomainError), j.rt.db.unit_of_work() as uow:
        sr.submit_request(uow.session, j.operator, request_id, settings=j.rt.settings)
    # ... and finance the cancellation.
    with pytest.raises(DomainError), j.rt.db.unit_of_work() as uow:
        sr.cancel_request(uow.session, j.finance, request_id, reason="not mine")
    with j.rt.db.unit_of_work() as uow:
        sr.submit_request(uow.session, j.staff, request_id, settings=j.rt.settings)
    with j.rt.db.unit_of_work() as uow:
        submitted = sr.get_request(uow.session, j.staff, request_id)
        assert not sr.may_submit(j.staff, submitted)  # only a draft is submitted
        assert sr.may_decide(uow.session, j.head, submitted)
        assert not sr.may_decide(uow.session, j.staff, submitted)
        assert sr.may_cancel(j.staff, submitted)


def test_may_retry_is_the_operators(journey: Journey) -> None:
    j = journey
    assert sr.may_retry(j.operator)
    for actor in (j.staff, j.head, j.finance):
        assert not sr.may_retry(actor)
        with pytest.raises(DomainError), j.rt.db.unit_of_work() as uow:
            sr.retry_server(uow.session, actor, 1)


def test_may_approve_any_is_whoever_an_approval_chain_names(journey: Journey) -> None:
    j = journey
    # The portal shows the approvals queue and its count, and takes a decision, only when this says so.
    assert sr.may_approve_any(j.head) and sr.may_approve_any(j.operator) and sr.may_approve_any(j.finance)
    assert not sr.may_approve_any(j.staff)
    assert not sr.may_approve_any(Actor("root", Role.ADMIN))
    request_id = _draft(j)
    with j.rt.db.unit_of_work() as uow:
        sr.submit_request(uow.session, j.staff, request_id, settings=j.rt.settings)
    # Staff, whom it says no to, are refused by the service too (with nothing waiting for them).
    with j.rt.db.unit_of_work() as uow:
        assert sr.awaiting(uow.session, j.other_staff) == []
    with pytest.raises(DomainError), j.rt.db.unit_of_work() as uow:
        sr.approve_request(uow.session, j.other_staff, request_id)


def test_department_filter_is_for_those_who_see_every_department(journey: Journey) -> None:
    j = journey
    with j.rt.db.unit_of_work() as uow:
        assert j.staff.department_id is not None
        department = uow.session.get(Department, j.staff.department_id)
        assert department is not None
        key = department.key
        assert sr.department_filter(uow.session, j.operator, key) == department.id
        assert sr.department_filter(uow.session, j.operator, None) is None
        with pytest.raises(UnknownDepartment):
            sr.department_filter(uow.session, j.operator, "no-such-department")
        # A department user sees only their own: the name is neither looked up nor obeyed.
        assert sr.department_filter(uow.session, j.staff, "no-such-department") is None
        assert sr.department_filter(uow.session, j.staff, key) is None
    # What they see, the scope their listings (and the web's cache of them) are narrowed to.
    assert j.staff.department_scope == j.staff.department_id and j.head.department_scope == j.head.department_id
    assert j.operator.department_scope is None and j.finance.department_scope is None


def test_may_act_on_server_and_may_resize_agree_with_the_service(journey: Journey) -> None:
    j = journey
    request_id = _draft(j)
    with j.rt.db.unit_of_work() as uow:
        sr.submit_request(uow.session, j.staff, request_id, settings=j.rt.settings)
    with j.rt.db.unit_of_work() as uow:
        server = sr.list_servers(uow.session, j.staff, request_id=request_id)[0]
        server_id, flavor_id = server.id, server.flavor_item_id
        # Pending: nothing to stop, start, delete or resize yet, for anyone.
        for actor in (j.staff, j.head, j.operator):
            assert not any(sr.may_act_on_server(actor, server, a) for a in sr.SERVER_ACTIONS)
        assert not sr.may_resize(j.staff, server)
    with pytest.raises(DomainError), j.rt.db.unit_of_work() as uow:
        sr.server_action(uow.session, j.staff, server_id, "stop")
    with j.rt.db.unit_of_work() as uow:
        booted = uow.session.get(ManagedServer, server_id)
        assert booted is not None
        booted.state = ServerState.ACTIVE  # as if it had booted
    with j.rt.db.unit_of_work() as uow:
        server = sr.get_server(uow.session, j.staff, server_id)
        assert sr.may_act_on_server(j.staff, server, "stop") and sr.may_act_on_server(j.operator, server, "delete")
        assert not sr.may_act_on_server(j.staff, server, "start")  # it runs already
        assert not sr.may_act_on_server(j.finance, server, "stop")
        assert not sr.may_act_on_server(j.staff, server, "reboot")
        assert sr.may_resize(j.staff, server) and not sr.may_resize(j.operator, server)
    with pytest.raises(DomainError), j.rt.db.unit_of_work() as uow:
        sr.server_action(uow.session, j.staff, server_id, "start")
    with pytest.raises(DomainError), j.rt.db.unit_of_work() as uow:
        sr.request_resize(uow.session, j.operator, server_id, flavor_id, justification="x", settings=j.rt.settings)
    with j.rt.db.unit_of_work() as uow:
        assert sr.server_action(uow.session, j.staff, server_id, "stop").state == ServerState.ACTIVE
