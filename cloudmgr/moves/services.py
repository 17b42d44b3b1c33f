"""The moves' public face: starting them (re-exported from :mod:`cloudmgr.moves.migrations`,
:mod:`cloudmgr.moves.drains` and :mod:`cloudmgr.moves.cross_cloud`), the operator's actions
on a move (confirm, revert, resume; revert undoes a failed cross-cloud move) and reading moves.

Starting a move reads the cloud first (the server, its host, the hosts' free capacity), so
those functions take the :class:`~cloudmgr.db.Database` and open their own short units of
work around the cloud calls (never a transaction held open across a cloud call: on SQLite
it would hold the write lock).  Each stores the move (who, when, why), its steps, an event
and an audit record, and queues one work item ``move`` in the same transaction; the work
happens after the commit (:mod:`cloudmgr.moves.jobs`).  The actions work in the caller's
session and only queue the move's work item again.

Refusals are audited so the audit survives the caller's rollback: a drain the other hosts
cannot take in its own unit of work before the error is raised; a server of a classified
system (refused at the creation of every live, cold and cross-cloud move, and again in the
job right before a step places it: :func:`check_not_classified`) through
:mod:`cloudmgr.inventory.classification`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.moves.choices import move_choices
from cloudmgr.moves.cross_cloud import CROSS_CLOUD_STATUSES, start_cross_cloud_move
from cloudmgr.moves.drains import DrainPlan, DrainServer, managed_project_ids, plan_drain, start_drain
from cloudmgr.moves.errors import MoveInvalid, MoveNotFound
from cloudmgr.moves.migrations import MOVABLE_STATUSES, start_migration
from cloudmgr.moves.models import Move, MoveStep
from cloudmgr.moves.parts import server_amounts
from cloudmgr.moves.records import (
    AUDIT_TARGET,
    MAX_REASON,
    WORK_KIND,
    check_not_classified,
    may_move_servers,
    queue_run,
    record_event,
    require_may_move_servers,
    work_key,
)
from cloudmgr.moves.states import OPEN_STATES, SYSTEM_UNDO_STEPS, UNDO_STEPS, MoveKind, MoveState, StepState
from cloudmgr.moves.systems import start_system_move
from cloudmgr.moves.transfer import checksum_rows
from cloudmgr.organisation.actor import Actor
from cloudmgr.paging import Page, PageRequest, paginate, search
from cloudmgr.quotas import ledger

__all__ = [
    "AUDIT_TARGET",
    "CROSS_CLOUD_STATUSES",
    "MAX_REASON",
    "MOVABLE_STATUSES",
    "WORK_KIND",
    "DrainPlan",
    "DrainServer",
    "check_not_classified",
    "checksum_rows",
    "confirm",
    "get_move",
    "list_moves",
    "managed_project_ids",
    "may_move_servers",
    "may_undo",
    "move_choices",
    "plan_drain",
    "record_event",
    "resume",
    "revert",
    "start_cross_cloud_move",
    "start_drain",
    "start_migration",
    "start_system_move",
    "work_key",
]


# ---- operator actions on a move ---------------------------------------------------------


def _locked(session: Session, move_id: int, actor: Actor) -> Move:
    require_may_move_servers(actor)
    move = session.get(Move, move_id, with_for_update=True)
    if move is None:
        raise MoveNotFound(f"there is no move {move_id}")
    return move


def _not_a_system_server(move: Move) -> None:
    """A server of a whole system's move is resumed or undone with the system, never alone
    (the system's order and its all-or-nothing undo depend on it)."""
    if move.kind == MoveKind.CROSS_CLOUD.value and (move.resources or {}).get("system_move"):
        raise MoveInvalid(f"move {move.id} moves one server of system move {move.parent_id}: resume or undo that move")


def confirm(session: Session, move_id: int, *, actor: Actor, reason: str | None = None) -> Move:
    """Keep a cold migration waiting in VERIFY_RESIZE on its new host."""
    move = _locked(session, move_id, actor)
    if move.kind != MoveKind.COLD.value:
        raise MoveInvalid(f"move {move_id} is a {move.kind} move: only cold migrations wait for a confirmation")
    record_event(session, move, MoveState.CONFIRMING, actor=actor, action="confirm", reason=reason or None)
    queue_run(session, move.id)
    return move


def revert(session: Session, move_id: int, *, actor: Actor, reason: str | None = None) -> Move:
    """Send a cold migration waiting in VERIFY_RESIZE back to its source host, or undo a
    failed cross-cloud move whose source is not being deleted (:func:`may_undo`): what it
    made on the target is removed and the server is back on its source cloud as it was."""
    move = _locked(session, move_id, actor)
    _not_a_system_server(move)
    if move.kind in (MoveKind.CROSS_CLOUD.value, MoveKind.SYSTEM.value):
        return _undo(session, move, actor, reason)
    if move.kind != MoveKind.COLD.value:
        raise MoveInvalid(
            f"move {move_id} is a {move.kind} move: only cold migrations and cross-cloud moves can be reverted"
        )
    record_event(session, move, MoveState.REVERTING, actor=actor, action="revert", reason=reason or None)
    _add_steps(move, ("revert",))
    queue_run(session, move.id)
    return move


def may_undo(move: Move) -> bool:
    """A cross-cloud move is undone once it failed, as long as the deletion of its source
    has not begun (after that only going on makes the server whole)."""
    if move.kind == MoveKind.SYSTEM.value:
        # A whole system: as long as no server's source is being deleted (run_system).
        from cloudmgr.moves.run_system import may_undo_system

        return move.state == MoveState.FAILED and may_undo_system(list(move.children))
    started_deleting = any(s.name == "delete_source" and s.attempts > 0 for s in move.steps)
    return move.kind == MoveKind.CROSS_CLOUD.value and move.state == MoveState.FAILED and not started_deleting


def _undo(session: Session, move: Move, actor: Actor, reason: str | None) -> Move:
    if move.state != MoveState.FAILED:
        raise MoveInvalid(f"move {move.id} is {move.state}: only a failed cross-cloud move is undone")
    if move.kind == MoveKind.SYSTEM.value and not may_undo(move):
        raise MoveInvalid(f"a server's source of move {move.id} is being deleted: resume the move, it cannot be undone")
    if not may_undo(move):
        raise MoveInvalid(f"the source of move {move.id} is being deleted: resume the move, it cannot be undone")
    record_event(session, move, MoveState.REVERTING, actor=actor, action="revert", reason=reason or None)
    _add_steps(move, undo_steps(move.kind))
    move.finished_at = None
    queue_run(session, move.id)
    return move


def undo_steps(kind: str) -> tuple[str, ...]:
    return SYSTEM_UNDO_STEPS if kind == MoveKind.SYSTEM.value else UNDO_STEPS


def _add_steps(move: Move, names: tuple[str, ...]) -> None:
    """The steps at the end of the move's list; one there already runs again if it failed."""
    for name in names:
        step = next((s for s in move.steps if s.name == name), None)
        if step is None:
            position = max((s.position for s in move.steps), default=0) + 1
            move.steps.append(MoveStep(position=position, name=name, state=StepState.PENDING.value, result={}))
        elif step.state == StepState.FAILED.value:
            step.state = StepState.PENDING.value


def resume(session: Session, move_id: int, *, actor: Actor, reason: str | None = None) -> Move:
    """Carry a failed (or partial) move on from the step that failed; a move still open
    just gets its work item queued again (a worker that died left it)."""
    move = _locked(session, move_id, actor)
    _not_a_system_server(move)
    if move.state == MoveState.FAILED and any(s.name in undo_steps(move.kind) for s in move.steps):
        # An undo that failed is carried on, not the move it undoes.
        record_event(session, move, MoveState.REVERTING, actor=actor, action="resume", reason=reason or None)
        move.finished_at = None
        _add_steps(move, undo_steps(move.kind))
    elif move.state in (MoveState.FAILED, MoveState.PARTIAL):
        record_event(session, move, MoveState.RUNNING, actor=actor, action="resume", reason=reason or None)
        _reserve_again(session, move)
        move.finished_at = None
        for step in move.steps:
            # A drain looks at its host afresh: every step runs again (each is re-entrant).
            if step.state == StepState.FAILED.value or move.kind == MoveKind.DRAIN.value:
                step.state = StepState.PENDING.value
    elif MoveState(move.state) not in OPEN_STATES or move.state == MoveState.AWAITING_CONFIRM:
        raise MoveInvalid(f"move {move_id} is {move.state}: there is nothing to resume")
    queue_run(session, move.id)
    return move


def _reserve_again(session: Session, move: Move) -> None:
    """A cross-cloud move refused by the classified rule in its job gave its target
    reservation back; resumed (the system was reclassified as non-classified), it takes it
    again before the target is booted, so the switch of the quota stays exact."""
    if (
        move.kind != MoveKind.CROSS_CLOUD.value
        or move.reservation_id is not None
        or move.managed_server_id is None
        or move.target_cloud_id is None
        or move.target_department_id is None
        or any(s.name == "record_target" and s.state == StepState.DONE.value for s in move.steps)
    ):
        return
    move.reservation_id = ledger.reserve(
        session,
        department_id=move.target_department_id,
        cloud_id=move.target_cloud_id,
        amounts=server_amounts(move.resources or {}),
        owner=f"move:{move.server_id}",
    ).id


# ---- reading --------------------------------------------------------------------------


def get_move(session: Session, move_id: int) -> Move:
    move = session.get(
        Move, move_id, options=[selectinload(Move.steps), selectinload(Move.events), selectinload(Move.children)]
    )
    if move is None:
        raise MoveNotFound(f"there is no move {move_id}")
    return move


def moves_page(
    session: Session, params: PageRequest, *, state: str | None = None, kind: str | None = None
) -> Page[Move]:
    """Moves newest first (a drain's own migrations under it), searched in the server, hosts, the
    reason and who asked."""
    query = select(Move).options(selectinload(Move.steps), selectinload(Move.cloud)).where(Move.parent_id.is_(None))
    if state:
        query = query.where(Move.state == state)
    if kind:
        query = query.where(Move.kind == kind)
    query = search(
        query,
        params.q,
        Move.id,
        Move.server_id,
        Move.server_name,
        Move.source_host,
        Move.target_host,
        Move.reason,
        Move.created_by,
    )
    return paginate(session, query, params, Move.id.desc())


def list_moves(
    session: Session,
    *,
    state: str | None = None,
    kind: str | None = None,
    include_children: bool = False,
    limit: int = 200,
) -> Sequence[Move]:
    query = select(Move).options(selectinload(Move.steps), selectinload(Move.cloud)).order_by(Move.id.desc())
    if state:
        query = query.where(Move.state == state)
    if kind:
        query = query.where(Move.kind == kind)
    if not include_children:
        query = query.where(Move.parent_id.is_(None))
    return session.scalars(query.limit(limit)).all()
