"""The steps of a whole system's move (:mod:`cloudmgr.moves.systems`), run in its one work item.

``stop_servers``: every server of the system stopped, those that depend on others first
(the applications before their databases), so the copies are consistent.  ``move_servers``:
each server's cross-cloud move run, layer by layer (the databases first, so the applications
boot on the target with their databases there); each stops before it is recorded on the
target, verified, waiting (``awaiting_confirm``).  A server that fails ends the system move
failed, naming it; resumed, the failed server's move carries on from its failed step.
``switch_over``: once every server is on the target, each is recorded there and its source
deleted (its move finishes), in the same order.  Until then the whole can be undone
(``undo_servers``): every server's move undone, the databases' sources started first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cloudmgr.inventory.models import LegacySystem
from cloudmgr.messages import N_, Message, message
from cloudmgr.moves.models import Move, MoveStep
from cloudmgr.moves.records import record_event
from cloudmgr.moves.states import UNDO_STEPS, MoveState, StepState
from cloudmgr.moves.stepping import SYSTEM, MoveView, StepContext, StepFailed, run_step, transition

#: A system move's server moves that wait, verified on the target, for the others.
HELD = MoveState.AWAITING_CONFIRM


def ordered_children(ctx: StepContext, view: MoveView) -> list[tuple[int, str, str, int]]:
    """(move id, hostname, state, layer) of each server's move, in dependency order."""
    with ctx.db.unit_of_work() as uow:
        children = uow.session.scalars(select(Move).where(Move.parent_id == view.id)).all()
        rows = [
            (
                c.id,
                str((c.resources or {}).get("hostname") or c.server_name),
                str(c.state),
                int((c.resources or {}).get("layer", 0)),
            )
            for c in children
        ]
    return sorted(rows, key=lambda r: (r[3], r[1]))


def _state(ctx: StepContext, move_id: int) -> tuple[str, str | None]:
    with ctx.db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id)
        assert move is not None
        return str(move.state), move.state_reason


def _reopen(ctx: StepContext, move_id: int, target: MoveState, *, action: str, reason: Message) -> None:
    """A server's move taken up again by the system: its failed steps run again."""
    with ctx.db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id, with_for_update=True)
        assert move is not None
        record_event(uow.session, move, target, actor=SYSTEM, action=action, reason=reason)
        move.finished_at = None
        for step in move.steps:
            if step.state == StepState.FAILED.value:
                step.state = StepState.PENDING.value


def _resumed(view: MoveView) -> Message:
    return message(N_("system move %(move)s resumed"), move=view.id)


BACK_ON_SOURCE = Message(N_("every server is back on its source"))


def _failed(hostname: str, move_id: int, reason: str | None) -> StepFailed:
    return StepFailed(
        message(
            N_("server %(host)s (move %(move)s) failed: %(reason)s"),
            host=hostname,
            move=move_id,
            reason=reason or "",
        )
    )


def run_system(ctx: StepContext, view: MoveView) -> None:
    if view.state == MoveState.REVERTING:
        run_step(ctx, view, "undo_servers", lambda: _undo_servers(ctx, view))
        transition(
            ctx.db,
            view.id,
            MoveState.REVERTED,
            action="reverted",
            reason=Message(N_("every server is back on its source")),
        )
        return
    run_step(ctx, view, "stop_servers", lambda: _stop_servers(ctx, view))
    run_step(ctx, view, "move_servers", lambda: _move_servers(ctx, view))
    result = run_step(ctx, view, "switch_over", lambda: _switch_over(ctx, view))
    assert view.target_cloud is not None
    transition(
        ctx.db,
        view.id,
        MoveState.DONE,
        action="finish",
        reason=message(
            N_("%(count)s servers now on %(cloud)s"), count=len(result["switched"]), cloud=view.target_cloud.key
        ),
    )


def _stop_servers(ctx: StepContext, view: MoveView) -> dict[str, Any]:
    """The applications first, their databases last (the reverse of the boot order)."""
    source = view.cloud.provider(ctx.registry)
    stopped = []
    for move_id, hostname, _state_now, _layer in reversed(ordered_children(ctx, view)):
        with ctx.db.unit_of_work() as uow:
            child = uow.session.get(Move, move_id)
            assert child is not None
            server_id = child.server_id or ""
            past_stop = any(s.name == "stop_source" and s.state == StepState.DONE.value for s in child.steps)
        if past_stop:
            continue  # a resumed system move: this one's source is stopped, or gone
        server = source.get_server(server_id)
        if server.status != "SHUTOFF":
            source.stop_server(server_id)
            source.wait_for_server(server_id, {"SHUTOFF"}, timeout=ctx.timeout)
        stopped.append(hostname)
    return {"stopped": stopped}


def _move_servers(ctx: StepContext, view: MoveView) -> dict[str, Any]:
    """Each server's move run up to its hold, layer by layer; the first failure stops the rest."""
    held = []
    for move_id, hostname, state, _layer in ordered_children(ctx, view):
        if state in (HELD, MoveState.DONE):
            held.append(hostname)
            continue
        if state == MoveState.FAILED:
            _reopen(
                ctx,
                move_id,
                MoveState.RUNNING,
                action="resume",
                reason=message(N_("system move %(move)s resumed"), move=view.id),
            )
        ctx.run_child(move_id)
        state, reason = _state(ctx, move_id)
        if state not in (HELD, MoveState.DONE):
            raise _failed(hostname, move_id, reason)
        held.append(hostname)
        if ctx.renew is not None:
            ctx.renew()
    return {"on_target": held}


def _switch_over(ctx: StepContext, view: MoveView) -> dict[str, Any]:
    """Every server recorded on the target and its source deleted, in dependency order; the
    inventory's hosts then point at their new servers."""
    switched = []
    for move_id, hostname, state, _layer in ordered_children(ctx, view):
        if state == HELD:
            with ctx.db.unit_of_work() as uow:
                child = uow.session.get(Move, move_id, with_for_update=True)
                assert child is not None
                child.resources = {**(child.resources or {}), "release_source": True}
                record_event(
                    uow.session, child, MoveState.RUNNING, actor=SYSTEM, action="release",
                    reason=message(N_("every server of system move %(move)s is on the target"), move=view.id),
                )  # fmt: skip
        elif state == MoveState.FAILED:
            _reopen(
                ctx,
                move_id,
                MoveState.RUNNING,
                action="resume",
                reason=message(N_("system move %(move)s resumed"), move=view.id),
            )
        if state != MoveState.DONE:
            ctx.run_child(move_id)
            state, reason = _state(ctx, move_id)
            if state != MoveState.DONE:
                raise _failed(hostname, move_id, reason)
        _point_inventory(ctx, move_id)
        switched.append(hostname)
    return {"switched": switched}


def _point_inventory(ctx: StepContext, move_id: int) -> None:
    with ctx.db.unit_of_work() as uow:
        child = uow.session.get(Move, move_id)
        assert child is not None
        new_server = (child.resources or {}).get("target_server_id")
        hostname = (child.resources or {}).get("hostname")
        host = uow.session.scalar(select(LegacySystem).where(LegacySystem.hostname == hostname)) if hostname else None
        if host is not None and new_server and host.cloud_server_id in (child.server_id, new_server):
            host.cloud_server_id = str(new_server)
            host.target_cloud_id = child.target_cloud_id


def may_undo_system(children: list[Move]) -> bool:
    """Until any server's source is being deleted, the whole can go back."""
    return not any(s.name == "delete_source" and s.attempts > 0 for child in children for s in child.steps) and all(
        c.state != MoveState.DONE for c in children
    )


def _undo_servers(ctx: StepContext, view: MoveView) -> dict[str, Any]:
    """Every server's move undone, in dependency order (a database's source runs again
    before the applications that need it)."""
    undone = []
    for move_id, hostname, state, _layer in ordered_children(ctx, view):
        if state == MoveState.REVERTED:
            undone.append(hostname)
            continue
        with ctx.db.unit_of_work() as uow:
            child = uow.session.get(Move, move_id, with_for_update=True)
            assert child is not None
            why = message(N_("system move %(move)s undone"), move=view.id)
            if child.state in (MoveState.REQUESTED, MoveState.RUNNING):
                # Never started, or left by a worker that died: failed first, then undone.
                record_event(uow.session, child, MoveState.FAILED, actor=SYSTEM, action="fail", reason=why)
            if child.state in (MoveState.FAILED, HELD):
                record_event(uow.session, child, MoveState.REVERTING, actor=SYSTEM, action="revert", reason=why)
                child.finished_at = None
                names = {s.name: s for s in child.steps}
                for name in UNDO_STEPS:
                    step = names.get(name)
                    if step is None:
                        position = max((s.position for s in child.steps), default=0) + 1
                        child.steps.append(
                            MoveStep(position=position, name=name, state=StepState.PENDING.value, result={})
                        )
                    elif step.state == StepState.FAILED.value:
                        step.state = StepState.PENDING.value
        ctx.run_child(move_id)
        state, reason = _state(ctx, move_id)
        if state != MoveState.REVERTED:
            raise _failed(hostname, move_id, reason)
        undone.append(hostname)
    return {"undone": undone}
