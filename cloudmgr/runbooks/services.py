"""The runbook runner: a legacy system's migration, one step (one playbook run) at a time.

Every step runs through the one wrapper over ``ansible_runner.run``
(:func:`cloudmgr.automation.run_playbook`) with its own private data directory under
``settings.ansible_artifacts_dir`` (kept), and never inside a unit of work: the run row
is committed as ``running`` first, each Ansible event is stored in its own small unit of
work as it arrives (the system page polls them), and the outcome is committed after.
So a page reads the live events, and SQLite's single write lock is never held for the
minutes a playbook takes.

* precheck → provision → replicate → cutover → verify (:func:`migrate_system`); the
  system goes to ``migrating`` before the first step that changes anything and to
  ``on_cloud`` when verify succeeds, always through
  :func:`cloudmgr.inventory.services.transition_system`.
* provision boots the target VM through the cloud adapter first: the classified rule
  (:func:`~cloudmgr.inventory.classification.ensure_placeable`), then
  ``CloudProvider.create_server`` with an idempotency key (a rerun finds the same VM).
* a failed cutover or verify runs ``rollback`` at once: the service address and the
  service go back to the source, the failed run ends ``rolled_back`` and the system
  ``rolled_back`` with its source serving.
* decommission only after a verified cutover, and only when asked.
* the playbooks are idempotent, so re-running a step is safe; a run left ``running`` by a
  worker that died is marked failed ("interrupted") when the system's migration resumes,
  and its step runs again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.automation import artifacts_dir_for, local_host_vars, new_run_id, run_playbook
from cloudmgr.automation.values import NAME_RE, address_problem
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
from cloudmgr.runbooks.errors import (
    RunbookBusy,
    RunbookNotConfigured,
    RunbookTargetInvalid,
    RunNotFound,
    StepNotAllowed,
    UnknownStep,
)
from cloudmgr.runbooks.metrics import ROLLBACKS, STEP_SECONDS
from cloudmgr.runbooks.models import (
    ACTIVE_RUN_STATES,
    MIGRATION_STEPS,
    ROLLBACK_ON_FAILURE,
    RunbookEvent,
    RunbookRun,
    RunbookTarget,
    RunState,
    Step,
)
from cloudmgr.runbooks.variables import target_problems
from cloudmgr.workqueue.services import enqueue

log = logging.getLogger(__name__)

AUDIT_TARGET = "legacy_system"
RUN_STEP_KIND = "runbook.run_step"
MIGRATE_KIND = "runbook.migrate_system"

#: Host variables every runbook host gets unless the system's target says otherwise.
DEFAULT_HOST_VARS: Mapping[str, Any] = {
    "ansible_user": "root",
    "ansible_python_interpreter": "/usr/bin/python3",
    "app_data_dir": "/srv/app",
    "app_state_dir": "/var/lib/cloudmgr-app",
    "service_interface": "eth0",
}
DEFAULT_GROUP_VARS: Mapping[str, Any] = {"service_port": 8080, "service_prefix": 24, "app_service_name": "app"}

#: Events kept for the live view (the rest stay in the run's artefacts).
STORED_EVENTS = frozenset(
    {
        "playbook_on_play_start",
        "playbook_on_task_start",
        "runner_on_ok",
        "runner_on_failed",
        "runner_on_unreachable",
        "runner_on_skipped",
        "runner_item_on_failed",
        "playbook_on_stats",
    }
)

# The states a system may be in for each step (the step may move it to "migrating" first).
_STEP_STATES: Mapping[Step, frozenset[str]] = {
    Step.PRECHECK: frozenset({SystemState.LEGACY, SystemState.PLANNED, SystemState.MIGRATING, SystemState.ROLLED_BACK}),
    Step.PROVISION: frozenset({SystemState.PLANNED, SystemState.MIGRATING, SystemState.ROLLED_BACK}),
    Step.REPLICATE: frozenset({SystemState.PLANNED, SystemState.MIGRATING, SystemState.ROLLED_BACK}),
    Step.CUTOVER: frozenset({SystemState.PLANNED, SystemState.MIGRATING, SystemState.ROLLED_BACK}),
    Step.VERIFY: frozenset({SystemState.MIGRATING, SystemState.ON_CLOUD}),
    Step.ROLLBACK: frozenset({SystemState.MIGRATING, SystemState.ON_CLOUD, SystemState.ROLLED_BACK}),
    Step.DECOMMISSION: frozenset({SystemState.ON_CLOUD}),
}
_MOVES_TO_MIGRATING = frozenset({Step.PROVISION, Step.REPLICATE, Step.CUTOVER})
_NEEDS_TARGET = frozenset({Step.PROVISION, Step.REPLICATE, Step.CUTOVER, Step.VERIFY, Step.ROLLBACK, Step.DECOMMISSION})
_NEEDS_SERVICE_ADDRESS = frozenset({Step.CUTOVER, Step.VERIFY, Step.ROLLBACK, Step.DECOMMISSION})

Heartbeat = Callable[[], None]
EventListener = Callable[[Mapping[str, Any]], None]


def parse_step(value: str) -> Step:
    try:
        return Step(value)
    except ValueError:
        raise UnknownStep(f"unknown runbook step {value!r}: one of {', '.join(s.value for s in Step)}") from None


def _username(actor: Actor | str) -> str:
    return actor if isinstance(actor, str) else actor.username


def target_name(system: LegacySystem) -> str:
    """The new VM's name (and its Ansible inventory name)."""
    return f"{system.hostname}-cloud"


# --- reading -----------------------------------------------------------------------------------


def get_run(session: Session, run_id: int) -> RunbookRun:
    run = session.get(RunbookRun, run_id)
    if run is None:
        raise RunNotFound(f"no runbook run {run_id}")
    return run


def list_runs(session: Session, system_id: int, *, limit: int = 50) -> Sequence[RunbookRun]:
    """The system's runs, newest first."""
    return session.scalars(
        select(RunbookRun).where(RunbookRun.system_id == system_id).order_by(RunbookRun.id.desc()).limit(limit)
    ).all()


def events_after(session: Session, run_id: int, after_id: int = 0, *, limit: int = 500) -> Sequence[RunbookEvent]:
    return session.scalars(
        select(RunbookEvent)
        .where(RunbookEvent.run_id == run_id, RunbookEvent.id > after_id)
        .order_by(RunbookEvent.id)
        .limit(limit)
    ).all()


def get_target(session: Session, system_id: int) -> RunbookTarget | None:
    return session.get(RunbookTarget, system_id)


def _last_rollback_id(session: Session, system_id: int) -> int:
    return (
        session.scalar(
            select(func.max(RunbookRun.id)).where(
                RunbookRun.system_id == system_id, RunbookRun.step == Step.ROLLBACK.value
            )
        )
        or 0
    )


def completed_steps(session: Session, system_id: int) -> set[Step]:
    """Steps that succeeded since the system's last rollback (a migration resumes after them)."""
    since = _last_rollback_id(session, system_id)
    rows = session.scalars(
        select(RunbookRun.step).where(
            RunbookRun.system_id == system_id,
            RunbookRun.state == RunState.SUCCEEDED,
            RunbookRun.id > since,
        )
    )
    return {Step(s) for s in rows}


# --- configuration -----------------------------------------------------------------------------


def configure_target(
    session: Session,
    system: LegacySystem,
    *,
    actor: Actor | str,
    target_host: str | None = None,
    service_address: str | None = None,
    vars: Mapping[str, Any] | None = None,
    source_vars: Mapping[str, Any] | None = None,
    target_vars: Mapping[str, Any] | None = None,
) -> RunbookTarget:
    """Set where the system's runbook acts; given variables are merged into the stored ones.

    Every value is checked first (:mod:`cloudmgr.runbooks.variables`): one refused value
    raises :class:`RunbookTargetInvalid` naming each problem, and nothing is changed."""
    problems = target_problems(
        target_host=target_host,
        service_address=service_address,
        vars=vars,
        source_vars=source_vars,
        target_vars=target_vars,
    )
    if problems:
        raise RunbookTargetInvalid(f"{system.hostname}: " + "; ".join(problems), problems)
    target = session.get(RunbookTarget, system.id)
    username = _username(actor)
    if target is None:
        target = RunbookTarget(system_id=system.id, vars={}, source_vars={}, target_vars={}, updated_by=username)
        session.add(target)
    if target_host is not None:
        target.target_host = target_host or None
    if service_address is not None:
        target.service_address = service_address or None
    if vars:
        target.vars = {**target.vars, **vars}
    if source_vars:
        target.source_vars = {**target.source_vars, **source_vars}
    if target_vars:
        target.target_vars = {**target.target_vars, **target_vars}
    target.updated_by = username
    audit.record(
        session,
        actor=username,
        action="runbook.configure",
        target_type=AUDIT_TARGET,
        target_id=system.id,
        detail={
            "target_host": target.target_host,
            "service_address": target.service_address,
            "vars": sorted(target.vars),
            "source_vars": sorted(target.source_vars),
            "target_vars": sorted(target.target_vars),
        },
    )
    session.flush()
    return target


# --- starting a step from a page, the API or a wave -------------------------------------------


def _system(session: Session, system_id: int) -> LegacySystem:
    system = session.get(LegacySystem, system_id)
    if system is None:
        raise SystemNotFound(f"no legacy system {system_id}")
    return system


def _check_allowed(session: Session, system: LegacySystem, step: Step) -> None:
    if system.state not in _STEP_STATES[step]:
        raise StepNotAllowed(f"{step.value} cannot run while {system.hostname} is {system.state}")
    if step == Step.DECOMMISSION and Step.VERIFY not in completed_steps(session, system.id):
        raise StepNotAllowed(f"{system.hostname}: decommission only after a successful verify")


def _check_not_busy(session: Session, system: LegacySystem, *, except_run: int | None = None) -> None:
    query = select(RunbookRun.id, RunbookRun.step).where(
        RunbookRun.system_id == system.id, RunbookRun.state.in_(ACTIVE_RUN_STATES)
    )
    if except_run is not None:
        query = query.where(RunbookRun.id != except_run)
    busy = session.execute(query.limit(1)).first()
    if busy is not None:
        raise RunbookBusy(f"{system.hostname} already has runbook run #{busy[0]} ({busy[1]}) under way")


def request_step(
    session: Session, system_id: int, step: str, *, actor: Actor | str, wave_id: int | None = None
) -> RunbookRun:
    """Queue one step for the scheduler's workers (pages, API); the run starts as ``queued``."""
    parsed = parse_step(step)
    system = session.get(LegacySystem, system_id, with_for_update=True)
    if system is None:
        raise SystemNotFound(f"no legacy system {system_id}")
    _check_not_busy(session, system)
    _check_allowed(session, system, parsed)
    run = RunbookRun(
        system_id=system.id,
        wave_id=wave_id,
        step=parsed.value,
        state=RunState.QUEUED,
        actor=_username(actor),
        event_count=0,
    )
    session.add(run)
    session.flush()
    audit.record(
        session,
        actor=_username(actor),
        action="runbook.request",
        target_type=AUDIT_TARGET,
        target_id=system.id,
        detail={"run_id": run.id, "step": parsed.value},
    )
    enqueue(session, RUN_STEP_KIND, f"{RUN_STEP_KIND}:{run.id}", {"run_id": run.id})
    return run


# --- running a step ----------------------------------------------------------------------------


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


def _boot_plan(session: Session, system: LegacySystem, wave_id: int | None, actor: Actor | str) -> _Boot:
    """What to boot for the system, after the classified rule (refused and audited)."""
    ensure_placeable(session, system, actor=actor, entry_point="runbook.provision")
    zone = None
    cloud_id = system.target_cloud_id
    if wave_id is not None:
        from cloudmgr.programme.models import MigrationWave

        wave = session.get(MigrationWave, wave_id)
        if wave is not None:
            cloud_id, zone = wave.cloud_id, wave.zone
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
    if not flavors:
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
        flavor_id=flavors[0].external_id,
        image_id=image.external_id,
        network_id=network.network_id if network else None,
        idempotency_key=f"runbook-{system.hostname}",
        metadata=server_metadata(system),
    )
    return _Boot(cloud.id, cloud.key, cloud.os_cloud, cloud.region, link.project_id, spec)


def _default_key(settings: Settings) -> Path:
    return settings.instance_path / "ssh" / "id_ed25519"


def build_inventory(session: Session, system: LegacySystem, step: Step, settings: Settings) -> dict[str, Any]:
    """The run's inventory: localhost, the source (the legacy host) and the target VM.

    The stored values are checked again (rows written before the rules existed, or by hand):
    a refused one raises :class:`RunbookNotConfigured` naming it, before Ansible starts."""
    target = session.get(RunbookTarget, system.id)
    if not system.ansible_host:
        raise RunbookNotConfigured(f"{system.hostname} has no ansible_host in the inventory")
    if not NAME_RE.match(system.hostname):
        raise RunbookNotConfigured(f"{system.hostname!r}: the host name is not a plain name")
    host_problem = address_problem(system.ansible_host)
    if host_problem:
        raise RunbookNotConfigured(f"{system.hostname}: ansible_host {host_problem}")
    if target is not None:
        stored_problems = target_problems(
            target_host=target.target_host,
            service_address=target.service_address,
            vars=target.vars,
            source_vars=target.source_vars,
            target_vars=target.target_vars,
        )
        if stored_problems:
            raise RunbookNotConfigured(f"{system.hostname}: " + "; ".join(stored_problems))
    target_host = target.target_host if target else None
    if step in _NEEDS_TARGET and not target_host:
        raise RunbookNotConfigured(f"{system.hostname}: the target VM's address is unknown (provision first)")
    service_address = target.service_address if target else None
    if step in _NEEDS_SERVICE_ADDRESS and not service_address:
        raise RunbookNotConfigured(f"{system.hostname} has no service address configured")
    key = _default_key(settings)
    key_vars = {"ansible_ssh_private_key_file": str(key)} if key.exists() else {}
    group_vars: dict[str, Any] = {
        **DEFAULT_GROUP_VARS,
        "system_hostname": system.hostname,
        "system_os_family": system.os_family,
        "target_disk_gb": system.disk_gb,
    }
    if key.exists():
        group_vars["replication_key_file"] = str(key)
    if service_address:
        group_vars["service_address"] = service_address
    if step == Step.DECOMMISSION:
        group_vars["verified"] = Step.VERIFY in completed_steps(session, system.id)
    group_vars.update(target.vars if target else {})
    children: dict[str, Any] = {
        "source": {
            "hosts": {
                system.hostname: {
                    **DEFAULT_HOST_VARS,
                    **key_vars,
                    "ansible_host": system.ansible_host,
                    **(target.source_vars if target else {}),
                }
            }
        }
    }
    if target_host:
        children["target"] = {
            "hosts": {
                target_name(system): {
                    **DEFAULT_HOST_VARS,
                    **key_vars,
                    "ansible_host": target_host,
                    **(target.target_vars if target else {}),
                }
            }
        }
    else:
        children["target"] = {"hosts": {}}
    return {
        "all": {
            "hosts": {"localhost": local_host_vars()},
            "vars": group_vars,
            "children": children,
        }
    }


def _event_row(run_id: int, event: Mapping[str, Any]) -> RunbookEvent | None:
    name = str(event.get("event") or "")
    if name not in STORED_EVENTS:
        return None
    data = event.get("event_data") or {}
    raw = data.get("res")
    res: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    status: str | None = None
    message: str | None = None
    if name == "runner_on_ok":
        status = "changed" if res.get("changed") else "ok"
        message = res.get("msg") if isinstance(res.get("msg"), str) else None
    elif name in {"runner_on_failed", "runner_item_on_failed"}:
        status = "ignored" if data.get("ignore_errors") else "failed"
        parts = [str(res.get("msg") or "")] + [str(res.get(k) or "")[-600:] for k in ("stderr", "stdout")]
        message = "\n".join(p for p in parts if p)
    elif name == "runner_on_unreachable":
        status, message = "unreachable", str(res.get("msg") or "")
    elif name == "runner_on_skipped":
        status = "skipped"
    elif name == "playbook_on_stats":
        summary = []
        for key in ("ok", "changed", "failures", "dark", "skipped"):
            for host, count in sorted((data.get(key) or {}).items()):
                summary.append(f"{host}: {key}={count}")
        message = "; ".join(summary)
    return RunbookEvent(
        run_id=run_id,
        counter=int(event.get("counter") or 0),
        event=name,
        host=(str(data.get("host") or data.get("remote_addr") or "") or None),
        play=(str(data.get("play") or "")[:255] or None),
        task=(str(data.get("task") or "")[:255] or None),
        status=status,
        message=(message or "")[:4000] or None,
    )


def _store_event(db: Database, run_id: int, event: Mapping[str, Any]) -> None:
    row = _event_row(run_id, event)
    if row is None:
        return
    with db.unit_of_work() as uow:
        uow.session.add(row)


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
    actor: Actor | str,
    wave_id: int | None,
    run_id: int | None,
    rollback_of: int | None,
) -> tuple[int, _Boot | None]:
    """Check the step may run, take (or create) its run row and mark it running; commits."""
    username = _username(actor)
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
            actor="system:runbook",
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
    actor: Actor | str,
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
        outcome = _finish(db, run_id, parsed, result.ok, result.rc, result.changed, result.status, started)
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
    db: Database, run_id: int, step: Step, ok: bool, rc: int, changed: int, status: str, started: float
) -> StepOutcome:
    """Record the playbook's outcome and move the system on (or back)."""
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
            transition_system(
                session, system, SystemState.ON_CLOUD, actor=run.actor, reason=f"verified (run #{run.id})"
            )
        elif ok and step == Step.DECOMMISSION:
            transition_system(
                session,
                system,
                SystemState.DECOMMISSIONED,
                actor=run.actor,
                reason=f"source switched off (run #{run.id})",
            )
        elif ok and step == Step.ROLLBACK:
            transition_system(
                session, system, SystemState.ROLLED_BACK, actor=run.actor, reason=f"rolled back (run #{run.id})"
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
                actor="system:runbook",
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
    actor: Actor | str,
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


def _recheck_placement(db: Database, system_id: int, wave_id: int | None, *, actor: Actor | str) -> None:
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


def _stopped_before_cutover(db: Database, system_id: int, outcome: StepOutcome, *, actor: Actor | str) -> None:
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
