"""Work-queue handlers: a system's migration (queued when its wave starts) and one step
(queued from the system's page or the API).

Both renew their work item's lease while Ansible runs (on every event), so a long
playbook is not taken over by another worker; a worker that dies leaves the lease to
expire, and the next worker resumes the migration (the interrupted step runs again: the
playbooks are idempotent).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from cloudmgr.db import Database, utcnow
from cloudmgr.errors import DomainError
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runbooks.models import RunState
from cloudmgr.runbooks.services import Heartbeat, get_run, migrate_system, run_step
from cloudmgr.runtime import get_runtime
from cloudmgr.workqueue.services import ClaimedItem, GiveUp, renew

log = logging.getLogger(__name__)

ACTOR = Actor.system("runbook")


def _heartbeat(db: Database, item: ClaimedItem, lease_seconds: int) -> Heartbeat:
    lease = timedelta(seconds=lease_seconds)
    last = time.monotonic()

    def beat() -> None:
        nonlocal last
        if time.monotonic() - last >= lease_seconds / 3:
            last = time.monotonic()
            if not renew(db, item, lease=lease):
                log.warning("work item %s: the lease was lost while the runbook ran", item.id)

    return beat


def handle_migrate_system(db: Database, item: ClaimedItem) -> None:
    """Payload {"system_id", "wave_id"}: run the system's remaining migration steps."""
    runtime = get_runtime()
    try:
        system_id = int(item.payload["system_id"])
        wave_id = int(item.payload["wave_id"]) if item.payload.get("wave_id") is not None else None
    except (KeyError, TypeError, ValueError) as exc:
        raise GiveUp(f"bad payload {item.payload!r}") from exc
    try:
        outcome = migrate_system(
            db,
            runtime.settings,
            runtime.providers,
            system_id,
            actor=ACTOR,
            wave_id=wave_id,
            heartbeat=_heartbeat(db, item, runtime.settings.work_lease_seconds),
        )
    except DomainError as exc:  # refused (classified, not allowed, busy): retrying cannot help
        raise GiveUp(f"{exc.code}: {exc}") from exc
    if outcome is not None and not outcome.succeeded:
        log.warning("migration of system %s stopped at %s: %s", system_id, outcome.step.value, outcome.reason)


def handle_run_step(db: Database, item: ClaimedItem) -> None:
    """Payload {"run_id"}: run the queued step an operator asked for."""
    runtime = get_runtime()
    try:
        run_id = int(item.payload["run_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise GiveUp(f"bad payload {item.payload!r}") from exc
    with db.unit_of_work() as uow:
        run = get_run(uow.session, run_id)
        if run.state == RunState.RUNNING:
            # Its worker died mid-way: run the (idempotent) step again as a fresh queued run.
            run.state, run.reason, run.finished_at = (
                RunState.QUEUED,
                "interrupted: the worker running it stopped; run again",
                None,
            )
        elif run.state != RunState.QUEUED:
            return
        system_id, step, actor, wave_id = run.system_id, run.step, run.actor, run.wave_id
    try:
        run_step(
            db,
            runtime.settings,
            runtime.providers,
            system_id,
            step,
            # The step runs on behalf of whoever queued it (their right was checked then): the run's
            # events and the system's transitions keep their name.
            actor=Actor(username=actor, role=Role.OPERATOR),
            wave_id=wave_id,
            run_id=run_id,
            heartbeat=_heartbeat(db, item, runtime.settings.work_lease_seconds),
        )
    except DomainError as exc:
        with db.unit_of_work() as uow:
            run = get_run(uow.session, run_id)
            if run.state in {RunState.QUEUED, RunState.RUNNING}:
                run.state, run.reason, run.finished_at = RunState.FAILED, f"{exc.code}: {exc}"[:4000], utcnow()
        raise GiveUp(f"{exc.code}: {exc}") from exc
