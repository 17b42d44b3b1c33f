"""Running a runbook step: job-shaped services that own their units of work.

The run row is committed as ``running`` first, the target VM is booted through the cloud adapter and the
playbook runs through :func:`cloudmgr.automation.run_playbook` outside any transaction, and the outcome is
committed after; :func:`migrate_system` runs the steps in order and rolls a failed cutover or verify back."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.automation import artifacts_dir_for, new_run_id, run_playbook
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.cloud import CloudError, ServerSpec
from cloudmgr.config import Settings
from cloudmgr.db import Database, utcnow
from cloudmgr.inventory.classification import ensure_placeable, server_metadata
from cloudmgr.inventory.errors import SystemNotFound
from cloudmgr.inventory.models import LegacySystem, SystemState
from cloudmgr.inventory.services import transition_system
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud, NetworkZone
from cloudmgr.providers import ProviderRegistry
from cloudmgr.runbooks.ansible_inventory import build_inventory
from cloudmgr.runbooks.errors import (
    RunbookNotConfigured,
    StepNotAllowed,
)
from cloudmgr.runbooks.events import _store_event
from cloudmgr.runbooks.metrics import ROLLBACKS, STEP_SECONDS
from cloudmgr.runbooks.models import (
    MIGRATION_STEPS,
    ROLLBACK_ON_FAILURE,
    RunbookEvent,
    RunbookRun,
    RunbookTarget,
    RunState,
    Step,
)
from cloudmgr.runbooks.reading import completed_steps, get_run
from cloudmgr.runbooks.rules import (
    _MOVES_TO_MIGRATING,
    AUDIT_TARGET,
    EventListener,
    Heartbeat,
    _check_allowed,
    _check_not_busy,
    _system,
    parse_step,
    target_name,
)

log = logging.getLogger(__name__)

#: Who records what the runbook machinery itself does (a server booted, a run interrupted).
SYSTEM = Actor.system("runbook")


@dataclass(frozen=True)
class StepOutcome:
    run_id: int
    step: Step
    state: RunState
    rc: int | None
    changed: int | None
    reason: str | None
    rollback: StepOutcome | None = None

    @property
    def succeeded(self) -> bool:
        return self.state == RunState.SUCCEEDED


@dataclass(frozen=True)
class _Boot:
    cloud_id: int
    cloud_key: str
    os_cloud: str
    region: str | None
    project_id: str
    spec: ServerSpec


def _boot_plan(session: Session, system: LegacySystem, wave_id: int | None, actor: Actor) -> _Boot:
    """What to boot for the system, after the classified rule (refused and audited)."""
    ensure_placeable(session, system, actor=actor, entry_point="runbook.provision")
    zone = None
    cloud_id = system.target_cloud_id
    checked_flavor = None
    if wave_id is not None:
        from cloudmgr.programme.models import MigrationWave

        wave = session.get(MigrationWave, wave_id)
        if wave is not None:
            cloud_id, zone = wave.cloud_id, wave.zone
            checked_flavor = _checked_flavor(wave.check_result, system.id)
    if cloud_id is None:
        raise RunbookNotConfigured(f"{system.hostname} has no target cloud: put it in a wave")
    cloud = session.get(Cloud, cloud_id)
    assert cloud is not None
    zone = zone or (system.network if system.network in {"internet", "extranet"} else "extranet")
    link = session.scalar(
        select(DepartmentCloud).where(
            DepartmentCloud.department_id == system.department_id, DepartmentCloud.cloud_id == cloud.id
        )
    )
    if link is None or not link.project_id:
        raise RunbookNotConfigured(f"{system.hostname}'s department has no project on {cloud.key}: sync the clouds")
    network = session.scalar(select(NetworkZone).where(NetworkZone.cloud_id == cloud.id, NetworkZone.zone == zone))
    flavors = session.scalars(
        select(CatalogItem)
        .where(
            CatalogItem.cloud_id == cloud.id,
            CatalogItem.kind == ItemKind.FLAVOR.value,
            CatalogItem.available.is_(True),
            CatalogItem.vcpus >= system.vcpus,
            CatalogItem.ram_mb >= system.ram_mb,
        )
        .order_by(CatalogItem.vcpus, CatalogItem.ram_mb, CatalogItem.disk_gb)
    ).all()
    # The flavor the wave's check sized the system to (right-sized by its measured p95: what the
    # department's quota and the hosts were checked for), else the smallest holding its declared size.
    planned = (
        session.scalar(
            select(CatalogItem).where(
                CatalogItem.cloud_id == cloud.id,
                CatalogItem.kind == ItemKind.FLAVOR.value,
                CatalogItem.available.is_(True),
                CatalogItem.cloud_name == checked_flavor,
            )
        )
        if checked_flavor
        else None
    )
    if planned is None and not flavors:
        raise RunbookNotConfigured(
            f"no flavor of {cloud.key} fits {system.hostname} ({system.vcpus} vCPU, {system.ram_mb} MB)"
        )
    images = session.scalars(
        select(CatalogItem)
        .where(
            CatalogItem.cloud_id == cloud.id, CatalogItem.kind == ItemKind.IMAGE.value, CatalogItem.available.is_(True)
        )
        .order_by(CatalogItem.offered.desc(), CatalogItem.cloud_name)
    ).all()
    if not images:
        raise RunbookNotConfigured(f"{cloud.key} has no image to boot {system.hostname} from")
    os_word = (system.os_name or "").split()[0].lower() if system.os_name else ""
    image = next((i for i in images if os_word and os_word in i.cloud_name.lower()), images[0])
    spec = ServerSpec(
        name=target_name(system),
        flavor_id=(planned or flavors[0]).external_id,
        image_id=image.external_id,
        network_id=network.network_id if network else None,
        idempotency_key=f"runbook-{system.hostname}",
        metadata=server_metadata(system),
    )
    return _Boot(cloud.id, cloud.key, cloud.os_cloud, cloud.region, link.project_id, spec)


def _checked_flavor(check_result: Mapping[str, Any] | None, system_id: int) -> str | None:
    """The flavor name the wave's last check chose for the system (None: not checked, or none fitted)."""
    for sized in (check_result or {}).get("systems") or []:
        if isinstance(sized, Mapping) and sized.get("system_id") == system_id:
            flavor = sized.get("flavor")
            return flavor if isinstance(flavor, str) and flavor else None
    return None


def _fail_before_ansible(db: Database, run_id: int, step: Step, reason: str, started: float) -> StepOutcome:
    with db.unit_of_work() as uow:
        run = get_run(uow.session, run_id)
        run.state, run.reason, run.finished_at = RunState.FAILED, reason[:4000], utcnow()
        audit.record(
            uow.session,
            actor=run.actor,
            action="runbook.failed",
            target_type=AUDIT_TARGET,
            target_id=run.system_id,
            reason=reason[:2000],
            detail={"run_id": run.id, "step": step.value},
        )
    STEP_SECONDS.labels(step=step.value, outcome="failed").observe(time.monotonic() - started)
    return StepOutcome(run_id, step, RunState.FAILED, None, None, reason)


def _start(
    db: Database,
    system_id: int,
    step: Step,
    *,
    actor: Actor,
    wave_id: int | None,
    run_id: int | None,
    rollback_of: int | None,
) -> tuple[int, _Boot | None]:
    """Check the step may run, take (or create) its run row and mark it running; commits."""
    username = actor.username
    with db.unit_of_work() as uow:
        session = uow.session
        system = session.get(LegacySystem, system_id, with_for_update=True)
        if system is None:
            raise SystemNotFound(f"no legacy system {system_id}")
        if run_id is not None:
            run = get_run(session, run_id)
            if run.state != RunState.QUEUED:
                raise StepNotAllowed(f"runbook run {run_id} is {run.state}, not queued")
        else:
            if rollback_of is None:
                _check_not_busy(session, system)
            run = RunbookRun(
                system_id=system.id,
                wave_id=wave_id,
                step=step.value,
                actor=username,
                rollback_of_id=rollback_of,
                event_count=0,
            )
            session.add(run)
        _check_allowed(session, system, step)
        if step in _MOVES_TO_MIGRATING and system.state != SystemState.MIGRATING:
            transition_system(
                session, system, SystemState.MIGRATING, actor=actor, reason=f"runbook step {step.value} started"
            )
        boot = _boot_plan(session, system, wave_id or run.wave_id, actor) if step == Step.PROVISION else None
        run.state, run.started_at = RunState.RUNNING, utcnow()
        session.flush()
        audit.record(
            session,
            actor=username,
            action="runbook.start",
            target_type=AUDIT_TARGET,
            target_id=system.id,
            detail={"run_id": run.id, "step": step.value, "rollback_of": rollback_of},
        )
        return run.id, boot


def _boot(db: Database, providers: ProviderRegistry, settings: Settings, system_id: int, boot: _Boot) -> None:
    """Boot (or find, by its key) the target VM and record it on the system."""
    provider = providers.for_cloud(boot.cloud_key, boot.os_cloud, boot.region)
    server = provider.create_server(boot.project_id, boot.spec)
    server = provider.wait_for_server(server.id, {"ACTIVE"}, timeout=settings.boot_timeout_seconds)
    with db.unit_of_work() as uow:
        system = _system(uow.session, system_id)
        system.cloud_server_id, system.target_cloud_id = server.id, boot.cloud_id
        target = uow.session.get(RunbookTarget, system_id)
        address = next((a for addrs in server.addresses.values() for a in addrs), None)
        if target is None:
            target = RunbookTarget(system_id=system_id, vars={}, source_vars={}, target_vars={}, updated_by="runbook")
            uow.session.add(target)
        if not target.target_host:
            target.target_host = address
        audit.record(
            uow.session,
            actor=SYSTEM.username,
            action="runbook.provisioned",
            target_type=AUDIT_TARGET,
            target_id=system_id,
            detail={"cloud": boot.cloud_key, "server_id": server.id, "address": address, "target": target.target_host},
        )


def run_step(
    db: Database,
    settings: Settings,
    providers: ProviderRegistry,
    system_id: int,
    step: str | Step,
    *,
    actor: Actor,
    wave_id: int | None = None,
    run_id: int | None = None,
    heartbeat: Heartbeat | None = None,
    on_event: EventListener | None = None,
    rollback_of: int | None = None,
    auto_rollback: bool = True,
) -> StepOutcome:
    """Run one step now (blocking for as long as its playbook takes) and return its outcome.

    Domain errors found before anything ran (unknown system, a step not allowed in the
    system's state, a busy system, a classified system at provision) are raised; a
    failure after the run started is the returned outcome (and a failed cutover or verify
    is rolled back first, see ``rollback``).
    """
    parsed = step if isinstance(step, Step) else parse_step(step)
    started = time.monotonic()
    run_id, boot = _start(db, system_id, parsed, actor=actor, wave_id=wave_id, run_id=run_id, rollback_of=rollback_of)
    if boot is not None:
        try:
            _boot(db, providers, settings, system_id, boot)
        except CloudError as exc:
            return _fail_before_ansible(db, run_id, parsed, f"the target VM did not boot: {exc}", started)
    ansible_id = new_run_id()
    artifacts_root = settings.ansible_artifacts_dir
    try:
        with db.unit_of_work() as uow:
            system = _system(uow.session, system_id)
            inventory = build_inventory(uow.session, system, parsed, settings)
            run = get_run(uow.session, run_id)
            run.ansible_run_id = ansible_id
            run.artifacts_path = str(artifacts_dir_for(artifacts_root, ansible_id))
    except RunbookNotConfigured as exc:
        return _fail_before_ansible(db, run_id, parsed, str(exc), started)

    def handle_event(event: Mapping[str, Any]) -> None:
        _store_event(db, run_id, event)
        if heartbeat is not None:
            heartbeat()
        if on_event is not None:
            on_event(event)

    try:
        result = run_playbook(
            parsed.playbook,
            inventory=inventory,
            artifacts_root=artifacts_root,
            on_event=handle_event,
            run_id=ansible_id,
        )
    except Exception as exc:  # ansible-runner itself broke: the run fails, it never hangs "running"
        log.exception("runbook run %s (%s) crashed", run_id, parsed.value)
        outcome = _fail_before_ansible(db, run_id, parsed, f"ansible-runner failed: {exc}", started)
    else:
        outcome = _finish(db, run_id, parsed, result.ok, result.rc, result.changed, result.status, started, actor=actor)
    if not outcome.succeeded and parsed in ROLLBACK_ON_FAILURE and auto_rollback:
        rollback = run_step(
            db,
            settings,
            providers,
            system_id,
            Step.ROLLBACK,
            actor=actor,
            heartbeat=heartbeat,
            on_event=on_event,
            rollback_of=run_id,
        )
        with db.unit_of_work() as uow:
            run = get_run(uow.session, run_id)
            outcome = StepOutcome(run_id, parsed, RunState(run.state), run.rc, run.changed, run.reason, rollback)
    return outcome


def _first_line(text: str | None, limit: int = 300) -> str:
    return next(iter((text or "").splitlines()), "")[:limit]


def _finish(
    db: Database,
    run_id: int,
    step: Step,
    ok: bool,
    rc: int,
    changed: int,
    status: str,
    started: float,
    *,
    actor: Actor,
) -> StepOutcome:
    """Record the playbook's outcome and move the system on (or back), as ``actor`` (whose name the run
    carries: it started the run, or queued it)."""
    reason = None
    with db.unit_of_work() as uow:
        session = uow.session
        run = get_run(session, run_id)
        system = _system(session, run.system_id)
        run.rc, run.changed, run.finished_at = rc, changed, utcnow()
        run.event_count = session.scalar(select(func.count(RunbookEvent.id)).where(RunbookEvent.run_id == run_id)) or 0
        if ok:
            run.state = RunState.SUCCEEDED
        else:
            failed = session.scalars(
                select(RunbookEvent)
                .where(RunbookEvent.run_id == run_id, RunbookEvent.status.in_(["failed", "unreachable"]))
                .order_by(RunbookEvent.id)
            ).all()
            detail = "; ".join(f"{e.host}: {e.task}: {_first_line(e.message)}" for e in failed[:3])
            reason = f"{step.value} playbook ended {status} (rc={rc})" + (f": {detail}" if detail else "")
            run.state, run.reason = RunState.FAILED, reason[:4000]
        audit.record(
            session,
            actor=run.actor,
            action="runbook.succeeded" if ok else "runbook.failed",
            target_type=AUDIT_TARGET,
            target_id=system.id,
            reason=reason,
            detail={"run_id": run.id, "step": step.value, "rc": rc, "changed": changed},
        )
        if ok and step == Step.VERIFY:
            transition_system(session, system, SystemState.ON_CLOUD, actor=actor, reason=f"verified (run #{run.id})")
        elif ok and step == Step.DECOMMISSION:
            transition_system(
                session,
                system,
                SystemState.DECOMMISSIONED,
                actor=actor,
                reason=f"source switched off (run #{run.id})",
            )
        elif ok and step == Step.ROLLBACK:
            transition_system(
                session, system, SystemState.ROLLED_BACK, actor=actor, reason=f"rolled back (run #{run.id})"
            )
            if run.rollback_of_id is not None:
                undone = get_run(session, run.rollback_of_id)
                if undone.state == RunState.FAILED:
                    undone.state = RunState.ROLLED_BACK
        outcome = StepOutcome(run.id, step, RunState(run.state), rc, changed, reason)
    STEP_SECONDS.labels(step=step.value, outcome="succeeded" if ok else "failed").observe(time.monotonic() - started)
    if ok and step == Step.ROLLBACK:
        ROLLBACKS.inc()
    return outcome


def interrupt_stale_runs(db: Database, system_id: int, *, reason: str) -> list[int]:
    """Mark the system's queued/running runs failed: their worker died (the migration resumes)."""
    with db.unit_of_work() as uow:
        runs = uow.session.scalars(
            select(RunbookRun).where(RunbookRun.system_id == system_id, RunbookRun.state == RunState.RUNNING)
        ).all()
        for run in runs:
            run.state, run.reason, run.finished_at = RunState.FAILED, reason, utcnow()
            audit.record(
                uow.session,
                actor=SYSTEM.username,
                action="runbook.interrupted",
                target_type=AUDIT_TARGET,
                target_id=system_id,
                reason=reason,
                detail={"run_id": run.id, "step": run.step},
            )
        return [r.id for r in runs]


def migrate_system(
    db: Database,
    settings: Settings,
    providers: ProviderRegistry,
    system_id: int,
    *,
    actor: Actor,
    wave_id: int | None = None,
    heartbeat: Heartbeat | None = None,
    on_event: EventListener | None = None,
) -> StepOutcome | None:
    """Run the migration's remaining steps in order; stop at the first failure.

    A failed cutover or verify has been rolled back by :func:`run_step`; a failure before the
    cutover leaves the source untouched, and the system goes to "rolled_back" too.  Steps that
    succeeded since the last rollback are not run again, so a migration whose
    worker died resumes where it stopped.  Returns the last step's outcome (None when
    nothing was left to do: the system is already on the cloud, or no longer migrating).
    """
    with db.unit_of_work() as uow:
        system = _system(uow.session, system_id)
        if system.state not in {SystemState.PLANNED, SystemState.MIGRATING}:
            return None
        done = completed_steps(uow.session, system_id)
    _recheck_placement(db, system_id, wave_id, actor=actor)
    interrupt_stale_runs(db, system_id, reason="interrupted: the worker running it stopped; the migration resumed")
    outcome = None
    for step in MIGRATION_STEPS:
        if step in done:
            continue
        outcome = run_step(
            db,
            settings,
            providers,
            system_id,
            step,
            actor=actor,
            wave_id=wave_id,
            heartbeat=heartbeat,
            on_event=on_event,
        )
        if not outcome.succeeded:
            if step not in ROLLBACK_ON_FAILURE:
                _stopped_before_cutover(db, system_id, outcome, actor=actor)
            break
    return outcome


def _recheck_placement(db: Database, system_id: int, wave_id: int | None, *, actor: Actor) -> None:
    """The classified rule and the department's clouds, checked again as the work item runs:
    the system may have been classified, or its department lost the cloud, since its wave
    started.  A refusal (audited by ensure_placeable) stops the migration before any step and
    the system leaves "migrating" for "rolled_back" (its source was not touched by this run)."""
    from cloudmgr.errors import DomainError
    from cloudmgr.programme.models import MigrationWave
    from cloudmgr.programme.services import ensure_department_may_use

    try:
        with db.unit_of_work() as uow:
            system = _system(uow.session, system_id)
            ensure_placeable(uow.session, system, actor=actor, entry_point="runbook.migrate")
            wave = uow.session.get(MigrationWave, wave_id) if wave_id is not None else None
            cloud_id = wave.cloud_id if wave is not None else system.target_cloud_id
            if cloud_id is not None:
                ensure_department_may_use(uow.session, system, cloud_id)
    except DomainError as exc:
        with db.unit_of_work() as uow:
            system = _system(uow.session, system_id)
            if system.state == SystemState.MIGRATING:
                transition_system(
                    uow.session, system, SystemState.ROLLED_BACK, actor=actor, reason=f"migration refused: {exc}"
                )
        raise


def _stopped_before_cutover(db: Database, system_id: int, outcome: StepOutcome, *, actor: Actor) -> None:
    """A migration that failed before its cutover never touched the source: it still serves.

    The system leaves "migrating" for "rolled_back" (its wave can settle; an operator retries
    the step from the system's page, which moves it back to "migrating")."""
    with db.unit_of_work() as uow:
        system = _system(uow.session, system_id)
        if system.state == SystemState.MIGRATING:
            transition_system(
                uow.session,
                system,
                SystemState.ROLLED_BACK,
                actor=actor,
                reason=f"{outcome.step.value} failed (run #{outcome.run_id}); the source was not touched and serves",
            )
