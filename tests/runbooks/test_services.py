"""The runbook runner's rules, without Ansible (quick: these run on every database backend)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import utcnow
from cloudmgr.inventory.errors import ClassifiedPlacementRefused
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runbooks.errors import RunbookBusy, StepNotAllowed, UnknownStep
from cloudmgr.runbooks.models import RunbookRun, RunState
from cloudmgr.runbooks.services import (
    build_inventory,
    completed_steps,
    configure_target,
    interrupt_stale_runs,
    request_step,
    run_step,
)
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.workqueue.models import WorkItem
from cloudmgr.workqueue.services import Worker
from tests.runbooks.conftest import add_system, sync_education


def _system(rt: Runtime, hostname: str = "edu-web-07", **kwargs: object) -> int:
    with rt.db.unit_of_work() as uow:
        return add_system(uow.session, hostname, ansible_host="192.0.2.7", **kwargs).id  # type: ignore[arg-type]


def test_a_step_is_queued_for_the_workers_one_at_a_time(seeded: Runtime) -> None:
    system_id = _system(seeded)
    with seeded.db.unit_of_work() as uow:
        run = request_step(uow.session, system_id, "precheck", actor=Actor(username="operator", role=Role.OPERATOR))
        assert run.state == RunState.QUEUED
        run_id = run.id
    with seeded.db.unit_of_work() as uow:
        item = uow.session.scalars(select(WorkItem).where(WorkItem.kind == "runbook.run_step")).one()
        assert item.payload == {"run_id": run_id}
        with pytest.raises(RunbookBusy, match="under way"):
            request_step(uow.session, system_id, "replicate", actor=Actor(username="operator", role=Role.OPERATOR))
        with pytest.raises(UnknownStep, match="precheck, provision"):
            request_step(uow.session, system_id, "reboot", actor=Actor(username="operator", role=Role.OPERATOR))
        audit = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "runbook.request")).one()
        assert audit.actor == "operator" and audit.detail["step"] == "precheck"


def test_decommission_waits_for_a_verified_cutover(seeded: Runtime) -> None:
    system_id = _system(seeded)
    with seeded.db.unit_of_work() as uow, pytest.raises(StepNotAllowed, match="decommission cannot run"):
        request_step(uow.session, system_id, "decommission", actor=Actor(username="operator", role=Role.OPERATOR))
    with seeded.db.unit_of_work() as uow:
        system = uow.session.get(LegacySystem, system_id)
        assert system is not None
        # on the cloud, but no verify since the last rollback: still refused
        from cloudmgr.inventory.services import transition_system

        transition_system(uow.session, system, "migrating", actor=Actor("test", Role.OPERATOR), reason="test")
        transition_system(uow.session, system, "on_cloud", actor=Actor("test", Role.OPERATOR), reason="test")
        uow.session.add(RunbookRun(system_id=system_id, step="verify", state="succeeded", actor="t", event_count=0))
        uow.session.add(RunbookRun(system_id=system_id, step="rollback", state="failed", actor="t", event_count=0))
    with seeded.db.unit_of_work() as uow, pytest.raises(StepNotAllowed, match="only after a successful verify"):
        request_step(uow.session, system_id, "decommission", actor=Actor(username="operator", role=Role.OPERATOR))


def test_a_classified_system_is_never_provisioned_and_the_refusal_is_audited(seeded: Runtime) -> None:
    sync_education(seeded)
    system_id = _system(seeded, "edu-secret-01", classification="classified")
    with pytest.raises(ClassifiedPlacementRefused):
        run_step(
            seeded.db,
            seeded.settings,
            seeded.providers,
            system_id,
            "provision",
            actor=Actor(username="operator", role=Role.OPERATOR),
        )
    with seeded.db.unit_of_work() as uow:
        system = uow.session.get(LegacySystem, system_id)
        assert system is not None and system.state == "planned" and system.cloud_server_id is None
        assert uow.session.scalars(select(RunbookRun)).all() == []  # nothing ran
        refusal = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "legacy_system.placement_refused")
        ).one()
        assert refusal.detail["entry_point"] == "runbook.provision" and refusal.actor == "operator"


def test_a_queued_step_that_cannot_run_ends_failed_with_its_reason(seeded: Runtime) -> None:
    system_id = _system(seeded, target_cloud=None)  # no target cloud: provision cannot boot anything
    with seeded.db.unit_of_work() as uow:
        run_id = request_step(
            uow.session, system_id, "provision", actor=Actor(username="operator", role=Role.OPERATOR)
        ).id
    assert Worker(seeded.db, work_handlers()).drain() == 1
    with seeded.db.unit_of_work() as uow:
        run = uow.session.get(RunbookRun, run_id)
        assert run is not None and run.state == RunState.FAILED
        assert run.reason and run.reason.startswith("runbook_not_configured") and "no target cloud" in run.reason
        item = uow.session.scalars(select(WorkItem).where(WorkItem.kind == "runbook.run_step")).one()
        assert item.state == "failed"
        system = uow.session.get(LegacySystem, system_id)
        assert system is not None and system.state == "planned"  # the refused step changed nothing


def test_a_run_left_running_by_a_dead_worker_is_marked_and_its_step_reruns(seeded: Runtime) -> None:
    system_id = _system(seeded)
    with seeded.db.unit_of_work() as uow:
        for step in ("precheck", "provision"):
            uow.session.add(RunbookRun(system_id=system_id, step=step, state="succeeded", actor="t", event_count=0))
        uow.session.add(
            RunbookRun(
                system_id=system_id, step="replicate", state="running", actor="t", event_count=0, started_at=utcnow()
            )
        )
    assert len(interrupt_stale_runs(seeded.db, system_id, reason="interrupted")) == 1
    with seeded.db.unit_of_work() as uow:
        assert {s.value for s in completed_steps(uow.session, system_id)} == {"precheck", "provision"}
        stale = uow.session.scalars(select(RunbookRun).where(RunbookRun.step == "replicate")).one()
        assert stale.state == RunState.FAILED and stale.reason == "interrupted"
        # after a rollback every step runs again
        uow.session.add(RunbookRun(system_id=system_id, step="rollback", state="succeeded", actor="t", event_count=0))
    with seeded.db.unit_of_work() as uow:
        assert completed_steps(uow.session, system_id) == set()


def test_the_inventory_has_localhost_the_source_and_the_target(seeded: Runtime) -> None:
    from cloudmgr.runbooks.errors import RunbookNotConfigured
    from cloudmgr.runbooks.models import Step

    system_id = _system(seeded)
    with seeded.db.unit_of_work() as uow:
        system = uow.session.get(LegacySystem, system_id)
        assert system is not None
        inventory = build_inventory(uow.session, system, Step.PRECHECK, seeded.settings)
        assert inventory["all"]["children"]["source"]["hosts"]["edu-web-07"]["ansible_host"] == "192.0.2.7"
        assert inventory["all"]["children"]["target"]["hosts"] == {}
        with pytest.raises(RunbookNotConfigured, match="target VM's address"):
            build_inventory(uow.session, system, Step.REPLICATE, seeded.settings)
        configure_target(
            uow.session,
            system,
            actor=Actor(username="operator", role=Role.OPERATOR),
            target_host="192.0.2.70",
            service_address="192.0.2.100",
            source_vars={"app_data_dir": "/srv/licences"},
        )
        inventory = build_inventory(uow.session, system, Step.CUTOVER, seeded.settings)
        all_vars = inventory["all"]["vars"]
        assert all_vars["service_address"] == "192.0.2.100" and all_vars["target_disk_gb"] == 20
        source = inventory["all"]["children"]["source"]["hosts"]["edu-web-07"]
        assert source["app_data_dir"] == "/srv/licences" and source["ansible_user"] == "root"
        assert inventory["all"]["children"]["target"]["hosts"]["edu-web-07-cloud"]["ansible_host"] == "192.0.2.70"
        assert "localhost" in inventory["all"]["hosts"]


def test_the_work_handlers_include_the_runbooks() -> None:
    handlers = work_handlers()
    assert {"runbook.migrate_system", "runbook.run_step"} <= set(handlers)


def test_a_windows_guest_without_virtio_drivers_stops_at_precheck(seeded: Runtime) -> None:
    """Real ansible-runner (localhost only): the pre-flight check refuses, the source is untouched."""
    from cloudmgr.runbooks.services import migrate_system

    with seeded.db.unit_of_work() as uow:
        system = add_system(uow.session, "edu-win-01", ansible_host="192.0.2.8", state="migrating")  # its wave started
        system.os_family, system.os_name = "windows", "Windows Server 2008 R2"
        system_id = system.id
    outcome = migrate_system(
        seeded.db, seeded.settings, seeded.providers, system_id, actor=Actor.system("runbook"), wave_id=None
    )
    assert outcome is not None and outcome.step.value == "precheck" and outcome.state == RunState.FAILED
    assert outcome.reason and "virtio" in outcome.reason
    with seeded.db.unit_of_work() as uow:
        stored = uow.session.get(LegacySystem, system_id)
        assert stored is not None and stored.state == "rolled_back"  # stopped; the source never changed
        run = uow.session.get(RunbookRun, outcome.run_id)
        assert run is not None and run.rc not in (0, None) and run.event_count > 0
        assert [r.step for r in uow.session.scalars(select(RunbookRun))] == ["precheck"]


def test_only_an_operator_queues_a_step_and_the_page_asks_the_same_rule(seeded: Runtime) -> None:
    """Who may start a runbook step is decided by the service: request_step refuses anyone but an operator
    (before anything is written), and may_request_step, which the system page asks for its buttons,
    answers exactly what request_step would do."""
    from cloudmgr.runbooks.errors import RunbookOperatorRequired
    from cloudmgr.runbooks.models import Step
    from cloudmgr.runbooks.services import may_request_step, may_run_steps

    system_id = _system(seeded)
    operator = Actor(username="operator", role=Role.OPERATOR)
    outsiders = [
        Actor(username="zhangwei", role=Role.DEPT_STAFF, department_id=1),
        Actor(username="finance", role=Role.FINANCE),
        Actor(username="admin", role=Role.ADMIN),
    ]
    with seeded.db.unit_of_work() as uow:
        system = uow.session.get(LegacySystem, system_id)
        assert system is not None
        assert may_run_steps(operator) and not any(may_run_steps(a) for a in outsiders)
        # a legacy system: precheck yes, verify and decommission not yet (the state machine's rule)
        startable = {s for s in Step if may_request_step(uow.session, operator, system, s)}
        assert Step.PRECHECK in startable and Step.VERIFY not in startable and Step.DECOMMISSION not in startable
        for outsider in outsiders:
            assert not any(may_request_step(uow.session, outsider, system, s) for s in Step)
            with pytest.raises(RunbookOperatorRequired):
                request_step(uow.session, system_id, "precheck", actor=outsider)
        assert uow.session.scalars(select(RunbookRun).where(RunbookRun.system_id == system_id)).all() == []
        request_step(uow.session, system_id, "precheck", actor=operator)
        # one step at a time: the page offers nothing while it runs
        assert not any(may_request_step(uow.session, operator, system, s) for s in Step)
