"""Reading a system's runbook runs, their stored Ansible events and which steps it has completed."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudmgr.runbooks.errors import (
    RunNotFound,
)
from cloudmgr.runbooks.models import (
    RunbookEvent,
    RunbookRun,
    RunbookTarget,
    RunState,
    Step,
)


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
