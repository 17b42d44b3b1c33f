"""How a move runs: one recorded step at a time, and the classified rule checked again
right before a step places a server.

Each step is stored as running before it acts and as done (with what it created) after,
each in its own short unit of work, never across a cloud call.  A cloud that cannot be
reached makes the work item retry later; a cloud that refuses or a check that fails ends
the move ``failed`` with the reason.  The kinds' steps are in :mod:`cloudmgr.moves.run_migration`,
:mod:`cloudmgr.moves.run_drain` and :mod:`cloudmgr.moves.run_cross_cloud`; the work handler
in :mod:`cloudmgr.moves.jobs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from cloudmgr.cloud import CloudError, CloudUnavailable
from cloudmgr.db import Database, utcnow
from cloudmgr.messages import Message
from cloudmgr.moves.metrics import MOVE_STEP_SECONDS, MOVES_TOTAL
from cloudmgr.moves.models import Move, MoveStep
from cloudmgr.moves.records import CloudRef, check_not_classified, keep_message, record_event
from cloudmgr.moves.states import STEP_FAILED, MoveKind, MoveState, StepState
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.providers import ProviderRegistry
from cloudmgr.quotas import ledger
from cloudmgr.workqueue.services import RetryLater

SYSTEM = Actor.system("moves")

#: Tests only: called as ``hook(move_id, step, phase)`` with phase "started" (the step is
#: recorded as running), "acted" (its side effect happened, not yet recorded) and "done".
#: Raising from it simulates the process dying at that point.
CRASH_HOOK: Callable[[int, str, str], None] | None = None


class StepFailed(Exception):
    """A step's check failed: the move ends failed with this reason.

    The reason is a Message (shown in the reader's language on the pages; its English text
    in the API, the CLI and the logs), or the text a cloud or another service wrote."""

    def __init__(self, reason: str | Message) -> None:
        super().__init__(str(reason))
        self.reason = reason


class MoveFailed(Exception):
    """A step failed: the runner ends the move failed with this reason."""

    def __init__(self, step: str, reason: str | Message) -> None:
        self.reason = Message(STEP_FAILED, {"step": step, "reason": reason})
        super().__init__(str(self.reason))


def _hook(move_id: int, step: str, phase: str) -> None:
    if CRASH_HOOK is not None:
        CRASH_HOOK(move_id, step, phase)


@dataclass
class MoveView:
    """What the runner needs of a move, read in one short unit of work."""

    id: int
    kind: MoveKind
    state: MoveState
    cloud: CloudRef
    server_id: str | None
    server_name: str | None
    source_host: str | None
    target_host: str | None
    auto_confirm: bool
    disable_host: bool
    only_managed: bool
    reason: str
    created_by: str
    resources: dict[str, Any] = field(default_factory=dict)
    target_cloud: CloudRef | None = None
    target_project_id: str | None = None
    target_department_key: str | None = None
    flavor_name: str | None = None
    idempotency_key: str | None = None
    managed_server_id: int | None = None
    parent_id: int | None = None
    project_id: str | None = None


@dataclass
class StepContext:
    """What every step of a run needs: the database, the clouds, its limits, and how to
    keep its work item's lease and run a drain's child moves."""

    db: Database
    registry: ProviderRegistry
    timeout: float
    work_dir: Path
    run_child: Callable[[int], str]
    renew: Callable[[], None] | None = None


def _ref(cloud: Cloud) -> CloudRef:
    return CloudRef(cloud.id, cloud.key, cloud.os_cloud, cloud.region)


def view_of(move: Move) -> MoveView:
    return MoveView(
        id=move.id,
        kind=MoveKind(move.kind),
        state=MoveState(move.state),
        cloud=_ref(move.cloud),
        server_id=move.server_id,
        server_name=move.server_name,
        source_host=move.source_host,
        target_host=move.target_host,
        auto_confirm=move.auto_confirm,
        disable_host=move.disable_host,
        only_managed=move.only_managed,
        reason=move.reason,
        created_by=move.created_by,
        resources=dict(move.resources or {}),
        target_cloud=_ref(move.target_cloud) if move.target_cloud else None,
        target_project_id=move.target_project_id,
        target_department_key=move.target_department.key if move.target_department else None,
        flavor_name=move.flavor_name,
        idempotency_key=move.idempotency_key,
        managed_server_id=move.managed_server_id,
        parent_id=move.parent_id,
        project_id=move.project_id,
    )


def transition(
    db: Database,
    move_id: int,
    target: MoveState,
    *,
    action: str,
    reason: str | Message | None = None,
    actor: Actor = SYSTEM,
) -> None:
    with db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id, with_for_update=True)
        assert move is not None
        record_event(uow.session, move, target, actor=actor, action=action, reason=reason)
        move.current_step = None if target != MoveState.RUNNING else move.current_step
        if target in (MoveState.DONE, MoveState.FAILED, MoveState.PARTIAL, MoveState.REVERTED):
            move.finished_at = utcnow()
    if target in (MoveState.DONE, MoveState.FAILED, MoveState.PARTIAL, MoveState.REVERTED):
        with db.unit_of_work() as uow:
            kind = uow.session.scalar(select(Move.kind).where(Move.id == move_id))
        MOVES_TOTAL.labels(kind=str(kind), outcome=target.value).inc()


# ---- the classified rule, again, right before a step places the server ----------------------


def placement_check(ctx: StepContext, view: MoveView, entry_point: str) -> dict[str, str]:
    """Refuse (StepFailed, audited under ``entry_point``) to place a server whose legacy
    system is classified now: it may have been reclassified after the move was created.
    Returns the classification metadata the placed server carries, read from its system as
    it is now ({} when it is tied to none)."""
    from cloudmgr.inventory.classification import (
        ClassifiedPlacementRefused,
        server_metadata,
        systems_of_server,
    )

    with ctx.db.unit_of_work() as uow:
        session = uow.session
        try:
            check_not_classified(
                session,
                actor=SYSTEM,
                entry_point=entry_point,
                kind=view.kind,
                cloud_server_id=view.server_id,
                managed_server_id=view.managed_server_id,
                metadata=view.resources.get("metadata"),
                server_name=view.server_name or "",
                move_id=view.id,
            )
        except ClassifiedPlacementRefused as refused:
            move = session.get(Move, view.id, with_for_update=True)
            if move is not None and move.reservation_id is not None:
                # The target quota is not held for a move that will not happen (resume takes it again).
                ledger.release(session, move.reservation_id, reason="refused: classified_system")
                move.reservation_id = None
            reason: str | Message = refused.translatable or str(refused)
        else:
            systems = systems_of_server(
                session,
                cloud_server_id=view.server_id,
                managed_server_id=view.managed_server_id,
                metadata=view.resources.get("metadata"),
            )
            return server_metadata(systems[0]) if systems else {}
    raise StepFailed(reason)


def job_entry_point(view: MoveView) -> str:
    return "move.drain" if view.parent_id is not None else f"move.{view.kind.value}.job"


# ---- steps ----------------------------------------------------------------------------


def _step_row(session: Any, move_id: int, name: str) -> MoveStep:
    step: MoveStep | None = session.scalar(
        select(MoveStep).where(MoveStep.move_id == move_id, MoveStep.name == name).with_for_update()
    )
    if step is None:
        position = (session.scalar(select(func.max(MoveStep.position)).where(MoveStep.move_id == move_id)) or 0) + 1
        step = MoveStep(move_id=move_id, position=position, name=name, state=StepState.PENDING.value, result={})
        session.add(step)
        session.flush()
    return step


def _step_error(db: Database, view: MoveView, name: str, error: str | Message, *, failed: bool, seconds: float) -> None:
    with db.unit_of_work() as uow:
        step = _step_row(uow.session, view.id, name)
        step.error = str(error)[:4000]
        if isinstance(error, Message):
            move = uow.session.get(Move, view.id, with_for_update=True)
            assert move is not None
            keep_message(move, step.error, error)
        step.seconds = seconds
        if failed:
            step.state = StepState.FAILED.value
            step.finished_at = utcnow()


def remember(ctx: StepContext, view: MoveView, values: dict[str, Any]) -> None:
    """Store ``values`` with the move's resources now, in the middle of a step: what a step
    must still know if it dies before it is recorded (what existed before it acted)."""
    with ctx.db.unit_of_work() as uow:
        move = uow.session.get(Move, view.id, with_for_update=True)
        assert move is not None
        move.resources = {**(move.resources or {}), **values}
    view.resources.update(values)


def run_step(ctx: StepContext, view: MoveView, name: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one step unless it is already done; returns its result (the ids it created)."""
    with ctx.db.unit_of_work() as uow:
        step = _step_row(uow.session, view.id, name)
        if step.state == StepState.DONE.value:
            return dict(step.result or {})
        step.state = StepState.RUNNING.value
        step.attempts += 1
        step.started_at = utcnow()
        step.error = None
        move = uow.session.get(Move, view.id)
        assert move is not None
        move.current_step = name
    _hook(view.id, name, "started")
    started = time.perf_counter()
    try:
        result = action()
    except CloudUnavailable as exc:
        _step_error(ctx.db, view, name, str(exc), failed=False, seconds=time.perf_counter() - started)
        raise RetryLater(f"move {view.id}, step {name}: {exc}") from exc
    except (CloudError, StepFailed) as exc:
        reason = exc.reason if isinstance(exc, StepFailed) else str(exc)
        _step_error(ctx.db, view, name, reason, failed=True, seconds=time.perf_counter() - started)
        raise MoveFailed(name, reason) from exc
    finally:
        MOVE_STEP_SECONDS.labels(kind=view.kind.value, step=name).observe(time.perf_counter() - started)
    _hook(view.id, name, "acted")
    with ctx.db.unit_of_work() as uow:
        step = _step_row(uow.session, view.id, name)
        step.state = StepState.DONE.value
        step.finished_at = utcnow()
        step.seconds = time.perf_counter() - started
        step.result = dict(result)
        move = uow.session.get(Move, view.id)
        assert move is not None
        move.resources = {**(move.resources or {}), **result}
    view.resources.update(result)
    _hook(view.id, name, "done")
    if ctx.renew is not None:
        ctx.renew()
    return result
