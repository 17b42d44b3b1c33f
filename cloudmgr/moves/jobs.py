"""Running moves: the ``move`` work handler, one recorded step at a time.

Each step is stored as running before it acts and as done (with what it created) after,
each in its own short unit of work, never across a cloud call.  Every step is
re-entrant: before creating anything it looks for what an earlier, interrupted attempt
may have made (a snapshot or an image by its name, the target server by its idempotency
key, a migration by where the server now is), so a move killed at any point is resumed by
running it again: by another worker once the item's lease expires, or by
``cloudmgr moves resume``.

A cloud that cannot be reached makes the work item retry later; a cloud that refuses or a
check that fails ends the move ``failed`` with the reason (resume carries on from the failed
step).  A drain runs its per-server moves one after the other inside its own item.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cloudmgr.db import Database, utcnow
from cloudmgr.messages import N_, message
from cloudmgr.moves.models import Move
from cloudmgr.moves.records import record_event
from cloudmgr.moves.run_cross_cloud import image_name, run_cross_cloud, snapshot_name
from cloudmgr.moves.run_drain import run_drain
from cloudmgr.moves.run_migration import run_cold, run_live
from cloudmgr.moves.run_system import run_system
from cloudmgr.moves.states import MoveKind, MoveState
from cloudmgr.moves.stepping import (
    SYSTEM,
    MoveFailed,
    MoveView,
    StepContext,
    StepFailed,
    run_step,
    transition,
    view_of,
)
from cloudmgr.providers import ProviderRegistry
from cloudmgr.workqueue.services import ClaimedItem, GiveUp, renew

__all__ = [
    "SYSTEM",
    "StepFailed",
    "handle_move",
    "image_name",
    "run_move",
    "run_now",
    "run_step",
    "snapshot_name",
    "transition",
]

log = logging.getLogger(__name__)

_RUNNERS: dict[MoveKind, Callable[[StepContext, MoveView], None]] = {
    MoveKind.LIVE: run_live,
    MoveKind.COLD: run_cold,
    MoveKind.DRAIN: run_drain,
    MoveKind.CROSS_CLOUD: run_cross_cloud,
    MoveKind.SYSTEM: run_system,
}


# ---- the handler ----------------------------------------------------------------------


def handle_move(db: Database, item: ClaimedItem) -> None:
    from cloudmgr.runtime import get_runtime

    runtime = get_runtime()
    try:
        move_id = int(item.payload["move_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise GiveUp(f"work item {item.id} names no move") from exc
    lease = timedelta(seconds=runtime.settings.work_lease_seconds)
    run_move(db, runtime.providers, move_id, renew=lambda: _renew(db, item, lease))


def _give_up(db: Database, item: ClaimedItem, error: str) -> None:
    """The work queue stopped retrying (the cloud stayed unreachable): the move fails with
    the reason, and ``resume`` can carry it on later."""
    move_id = int(item.payload.get("move_id", 0))
    with db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id)
        if move is None or move.state not in (
            MoveState.REQUESTED,
            MoveState.RUNNING,
            MoveState.CONFIRMING,
            MoveState.REVERTING,
        ):
            return
    transition(
        db, move_id, MoveState.FAILED, action="fail", reason=message(N_("gave up: %(error)s"), error=error[:1900])
    )


handle_move.on_give_up = _give_up  # type: ignore[attr-defined]


def _renew(db: Database, item: ClaimedItem, lease: timedelta) -> None:
    # The configured lease, as the item was claimed with: renewing with the work queue's
    # default instead kept a dead worker's move from being taken over for two minutes.
    if not renew(db, item, lease=lease):
        log.warning("work item %s (%s) was taken over by another worker", item.id, item.key)


def run_move(
    db: Database,
    registry: ProviderRegistry,
    move_id: int,
    *,
    renew: Callable[[], None] | None = None,
    timeout: float | None = None,
    work_dir: Path | None = None,
) -> str:
    """Run (or resume) a move as far as it can go now; returns its state afterwards."""
    from cloudmgr.runtime import get_runtime

    settings = get_runtime().settings
    step_timeout = timeout if timeout is not None else float(settings.boot_timeout_seconds)
    folder = work_dir or settings.instance_path / "moves"
    ctx = StepContext(
        db=db,
        registry=registry,
        timeout=step_timeout,
        work_dir=folder,
        # A drain runs its servers' moves one after the other inside its own work item.
        run_child=lambda child_id: run_move(db, registry, child_id, renew=renew, timeout=step_timeout, work_dir=folder),
        renew=renew,
    )
    with db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id, with_for_update=True)
        if move is None:
            raise GiveUp(f"there is no move {move_id}")
        if move.state == MoveState.REQUESTED:
            record_event(uow.session, move, MoveState.RUNNING, actor=SYSTEM, action="start")
            move.started_at = utcnow()
        view = view_of(move)
    owed = view.kind == MoveKind.COLD and view.state == MoveState.AWAITING_CONFIRM and view.auto_confirm
    if view.state in (MoveState.RUNNING, MoveState.CONFIRMING, MoveState.REVERTING) or owed:
        try:
            _RUNNERS[view.kind](ctx, view)
        except MoveFailed as exc:
            log.warning("move %s failed: %s", move_id, exc)
            transition(db, move_id, MoveState.FAILED, action="fail", reason=exc.reason)
    with db.unit_of_work() as uow:
        return str(uow.session.scalar(select(Move.state).where(Move.id == move_id)))


# ---- running a move in this process (the CLI) --------------------------------------------


def run_now(
    db: Database, registry: ProviderRegistry, move_id: int, *, lease_seconds: float, force: bool = False
) -> str:
    """Run the move here and now instead of in a scheduler worker, holding its work item.

    The item's lease is taken so no worker runs the move at the same time; an item a live
    worker holds is refused unless ``force`` (that worker died: its lease is still running).
    """
    from sqlalchemy import update

    from cloudmgr.moves.errors import MoveInProgress
    from cloudmgr.moves.records import work_key
    from cloudmgr.workqueue.models import WorkItem, WorkState
    from cloudmgr.workqueue.services import worker_identity

    owner = f"cli:{worker_identity()}"
    lease = timedelta(seconds=lease_seconds)
    now = utcnow()
    live_states = [WorkState.QUEUED.value, WorkState.RUNNING.value]
    with db.unit_of_work() as uow:
        condition = (WorkItem.key == work_key(move_id)) & WorkItem.state.in_(live_states)
        if not force:
            condition &= (WorkItem.state == WorkState.QUEUED.value) | (WorkItem.lease_expires_at < now)
        taken = uow.session.execute(
            update(WorkItem)
            .where(condition)
            .values(state=WorkState.RUNNING.value, lease_owner=owner, lease_expires_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        if not taken.rowcount:  # type: ignore[attr-defined]
            busy = uow.session.scalar(
                select(WorkItem).where(WorkItem.key == work_key(move_id), WorkItem.state.in_(live_states))
            )
            if busy is not None:
                raise MoveInProgress(
                    f"a worker ({busy.lease_owner}) is running move {move_id}; if it died, use --force"
                )

    def keep_lease() -> None:
        with db.unit_of_work() as uow:
            uow.session.execute(
                update(WorkItem)
                .where(WorkItem.key == work_key(move_id), WorkItem.lease_owner == owner)
                .values(lease_expires_at=utcnow() + lease)
            )

    def release(values: dict[str, Any]) -> None:
        with db.unit_of_work() as uow:
            uow.session.execute(
                update(WorkItem)
                .where(WorkItem.key == work_key(move_id), WorkItem.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None, **values)
            )

    try:
        state = run_move(db, registry, move_id, renew=keep_lease)
    except Exception as exc:
        # Left to the scheduler: it retries the item (a cloud that could not be reached...).
        release(
            {"state": WorkState.QUEUED.value, "run_after": utcnow() + timedelta(seconds=30), "last_error": str(exc)}
        )
        raise
    release({"state": WorkState.DONE.value, "finished_at": utcnow()})
    return state
