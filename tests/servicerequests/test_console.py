"""A server's console and console log (issue 16): the department wall, the states that have a
console, the audit record of every opening, and the cloud's failures as a domain error."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.errors import DomainError
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.errors import InvalidTransition, NotYourTurn, RequestInvalid, ServerNotFound
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.states import ServerState
from tests.conftest import ONE_DATABASE
from tests.journey_fixtures import Journey, LabJourney


def _active_server(j: Journey | LabJourney) -> int:
    with j.rt.db.unit_of_work() as uow:
        request_id = sr.create_request(uow.session, j.staff, j.form(1), submit=True, settings=j.rt.settings).id
    for approver in (j.head, j.operator):
        with j.rt.db.unit_of_work() as uow:
            sr.approve_request(uow.session, approver, request_id, reason="ok")
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        server = uow.session.scalars(select(ManagedServer).where(ManagedServer.request_id == request_id)).one()
        assert server.state == ServerState.ACTIVE and server.server_id
        return server.id


def _set_state(j: Journey, server_id: int, state: ServerState, *, cloud_id: str | None = "keep") -> None:
    with j.rt.db.unit_of_work() as uow:
        server = uow.session.get(ManagedServer, server_id)
        assert server is not None
        server.state = state
        if cloud_id != "keep":
            server.server_id = cloud_id


def _console_audits(j: Journey) -> list[AuditEvent]:
    with j.rt.db.unit_of_work() as uow:
        return list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "server.console")))


def test_the_department_opens_its_running_servers_console_and_reads_its_log(journey: Journey) -> None:
    j = journey
    server_id = _active_server(j)
    with j.rt.db.unit_of_work() as uow:
        target = sr.console_target(uow.session, j.staff, server_id)
        server = sr.get_server(uow.session, j.staff, server_id)
        assert sr.may_open_console(j.staff, server) and sr.may_read_console_log(j.staff, server)
        assert (target.server_id, target.name, target.cloud_key) == (server_id, server.name, "education")
        assert target.cloud_server_id == server.server_id
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.name = "other"  # type: ignore[misc]
    assert _console_audits(j) == []
    console = sr.open_console(j.rt.db, j.rt.providers, target, actor=j.staff)
    assert console.type == "novnc" and console.url.startswith("http")
    [event] = _console_audits(j)
    assert (event.actor, event.target_type, event.target_id) == ("zhangwei", "managed_server", str(server_id))
    log = sr.read_console_log(j.rt.providers, target)
    assert target.name in log and target.cloud_server_id in log
    assert sr.read_console_log(j.rt.providers, target, lines=1) == log.splitlines()[-1]
    for bad in (0, sr.MAX_LOG_LINES + 1):
        with pytest.raises(RequestInvalid):
            sr.read_console_log(j.rt.providers, target, lines=bad)
    # An operator opens any department's console; the opening is on record under their name.
    with j.rt.db.unit_of_work() as uow:
        operators = sr.console_target(uow.session, j.operator, server_id)
    sr.open_console(j.rt.db, j.rt.providers, operators, actor=j.operator)
    assert [e.actor for e in _console_audits(j)] == ["zhangwei", "operator"]


def test_another_department_finds_no_server_and_finance_opens_no_console(journey: Journey) -> None:
    j = journey
    server_id = _active_server(j)
    with pytest.raises(ServerNotFound), j.rt.db.unit_of_work() as uow:
        sr.console_target(uow.session, j.other_staff, server_id)
    with pytest.raises(ServerNotFound), j.rt.db.unit_of_work() as uow:
        sr.console_target(uow.session, j.other_staff, server_id, log_only=True)
    with j.rt.db.unit_of_work() as uow:
        server = sr.get_server(uow.session, j.finance, server_id)  # finance sees the server ...
        assert not sr.may_open_console(j.finance, server)
    with pytest.raises(NotYourTurn), j.rt.db.unit_of_work() as uow:  # ... and opens no console
        sr.console_target(uow.session, j.finance, server_id)


def test_only_a_running_server_has_a_console_and_a_booted_one_a_log(journey: Journey) -> None:
    j = journey
    server_id = _active_server(j)
    for state in (ServerState.STOPPED, ServerState.ERROR):
        _set_state(j, server_id, state)
        refused = f"is {state.value}: it has a console only when active"
        with pytest.raises(InvalidTransition, match=refused), j.rt.db.unit_of_work() as uow:
            sr.console_target(uow.session, j.staff, server_id)
        with j.rt.db.unit_of_work() as uow:
            assert sr.console_target(uow.session, j.staff, server_id, log_only=True).server_id == server_id
            server = sr.get_server(uow.session, j.staff, server_id)
            assert not sr.may_open_console(j.staff, server) and sr.may_read_console_log(j.staff, server)
    for state in (ServerState.PENDING, ServerState.BUILDING, ServerState.DELETED):
        _set_state(j, server_id, state)
        for log_only in (False, True):
            with pytest.raises(InvalidTransition), j.rt.db.unit_of_work() as uow:
                sr.console_target(uow.session, j.staff, server_id, log_only=log_only)
    # Failed before the cloud gave it an id: nothing to read.
    _set_state(j, server_id, ServerState.ERROR, cloud_id=None)
    with pytest.raises(InvalidTransition), j.rt.db.unit_of_work() as uow:
        sr.console_target(uow.session, j.staff, server_id, log_only=True)
    with j.rt.db.unit_of_work() as uow:
        assert not sr.may_read_console_log(j.staff, sr.get_server(uow.session, j.staff, server_id))


def test_the_clouds_failure_is_a_domain_error_and_the_attempt_stays_on_record(journey: Journey) -> None:
    j = journey
    server_id = _active_server(j)
    with j.rt.db.unit_of_work() as uow:
        target = sr.console_target(uow.session, j.staff, server_id)
    gone = dataclasses.replace(target, cloud_server_id="no-such-server")
    with pytest.raises(sr.ConsoleUnavailable, match=r"^the cloud did not give a console: ") as raised:
        sr.open_console(j.rt.db, j.rt.providers, gone, actor=j.staff)
    assert isinstance(raised.value, DomainError) and raised.value.http_status == 502
    assert len(_console_audits(j)) == 1  # committed before the cloud was asked
    with pytest.raises(sr.ConsoleUnavailable, match=r"^the cloud did not give the console log: "):
        sr.read_console_log(j.rt.providers, gone)


@pytest.mark.lab
@ONE_DATABASE
def test_the_lab_nova_gives_a_console_and_a_log(lab_journey: LabJourney) -> None:
    j = lab_journey
    server_id = _active_server(j)
    with j.rt.db.unit_of_work() as uow:
        target = sr.console_target(uow.session, j.staff, server_id)
    first = sr.open_console(j.rt.db, j.rt.providers, target, actor=j.staff)
    second = sr.open_console(j.rt.db, j.rt.providers, target, actor=j.staff)
    assert first.type == "novnc" and first.url.startswith("http") and first.url != second.url  # a token per call
    assert len(_console_audits(j)) == 2
    assert isinstance(sr.read_console_log(j.rt.providers, target, lines=5), str)
    with pytest.raises(ServerNotFound), j.rt.db.unit_of_work() as uow:
        sr.console_target(uow.session, j.other_staff, server_id)
