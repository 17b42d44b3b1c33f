"""The steps of a host drain: disable the host, move each of its servers in a child move
(run one after the other inside the drain's work item), enable the host again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudProvider
from cloudmgr.messages import N_, Message, message
from cloudmgr.moves.drains import managed_project_ids
from cloudmgr.moves.models import Move
from cloudmgr.moves.records import add_steps, keep_message, record_event
from cloudmgr.moves.states import MoveKind, MoveState, StepState
from cloudmgr.moves.stepping import SYSTEM, MoveView, StepContext, run_step, transition


def _drain_children(ctx: StepContext, view: MoveView, provider: CloudProvider) -> dict[str, Any]:
    host = view.source_host or ""
    servers = provider.list_servers_on_host(host)
    if view.only_managed:
        with ctx.db.unit_of_work() as uow:
            projects = managed_project_ids(uow.session, view.cloud)
        servers = [s for s in servers if s.project_id in projects]
    with ctx.db.unit_of_work() as uow:
        session = uow.session
        drain = session.get(Move, view.id)
        assert drain is not None
        known = {c.server_id for c in drain.children if c.state != MoveState.REVERTED}
        for server in servers:
            if server.id in known:
                continue
            kind = MoveKind.COLD if server.status == "SHUTOFF" else MoveKind.LIVE
            why = message(
                N_("drain of %(host)s (move %(move)s): %(reason)s"), host=host, move=view.id, reason=view.reason
            )
            child = Move(
                kind=kind.value,
                state=MoveState.REQUESTED,
                cloud_id=view.cloud.id,
                server_id=server.id,
                server_name=server.name,
                project_id=server.project_id,
                source_host=host,
                flavor_name=server.flavor_name,
                auto_confirm=kind == MoveKind.COLD,
                parent_id=view.id,
                reason=str(why),
                created_by=view.created_by,
                resources={},
            )
            add_steps(child)
            keep_message(child, child.reason, why)
            session.add(child)
            session.flush()
            audit.record(
                session,
                actor=SYSTEM.username,
                action="move.create",
                target_type="move",
                target_id=child.id,
                reason=why,
                detail={"kind": kind.value, "server": server.id, "drain": view.id},
            )
        children = [
            (c.id, c.state) for c in session.scalars(select(Move).where(Move.parent_id == view.id).order_by(Move.id))
        ]
    for child_id, state in children:
        if state in (MoveState.DONE, MoveState.REVERTED):
            continue
        if state == MoveState.FAILED:
            with ctx.db.unit_of_work() as uow:
                failed = uow.session.get(Move, child_id, with_for_update=True)
                assert failed is not None
                record_event(
                    uow.session,
                    failed,
                    MoveState.RUNNING,
                    actor=SYSTEM,
                    action="resume",
                    reason=Message(N_("drain resumed")),
                )
                for step in failed.steps:
                    if step.state == StepState.FAILED.value:
                        step.state = StepState.PENDING.value
        ctx.run_child(child_id)
    with ctx.db.unit_of_work() as uow:
        drain = uow.session.get(Move, view.id)
        assert drain is not None
        outcome = [
            {"server": c.server_name, "id": c.server_id, "state": c.state, "reason": c.state_reason}
            for c in drain.children
        ]
    remaining = provider.list_servers_on_host(host)
    if view.only_managed:
        remaining = [s for s in remaining if s.project_id in projects]
    return {
        "moved": sum(1 for o in outcome if o["state"] == MoveState.DONE),
        "failed": sum(1 for o in outcome if o["state"] == MoveState.FAILED),
        "left_on_host": [s.name for s in remaining],
        "servers": outcome,
    }


def run_drain(ctx: StepContext, view: MoveView) -> None:
    provider = view.cloud.provider(ctx.registry)
    host = view.source_host or ""

    def disable() -> dict[str, Any]:
        if not view.disable_host:
            return {"host_disabled": False}
        provider.set_compute_service_enabled(
            host, False, reason=f"cloudmgr drain (move {view.id}): {view.reason}"[:255]
        )
        return {"host_disabled": True}

    disabled = bool(run_step(ctx, view, "disable_host", disable).get("host_disabled"))
    result = run_step(ctx, view, "migrate_servers", lambda: _drain_children(ctx, view, provider))
    complete = not result["failed"] and not result["left_on_host"]
    keep = complete and bool(view.resources.get("keep_disabled"))

    def enable() -> dict[str, Any]:
        if disabled and not keep:
            provider.set_compute_service_enabled(host, True)
            return {"host_enabled": True}
        return {"host_enabled": False}

    run_step(ctx, view, "enable_host", enable)
    if complete:
        transition(
            ctx.db,
            view.id,
            MoveState.DONE,
            action="finish",
            reason=message(N_("%(n)s servers moved"), n=result["moved"]),
        )
    else:
        failed = [o for o in result["servers"] if o["state"] == MoveState.FAILED]
        reason = message(N_("%(n)s servers could not be moved"), n=len(failed))
        if result["left_on_host"]:
            reason = message(
                N_("%(n)s servers could not be moved; still on %(host)s: %(servers)s"),
                n=len(failed),
                host=host,
                servers=", ".join(result["left_on_host"]),
            )
        transition(ctx.db, view.id, MoveState.PARTIAL, action="finish", reason=reason)
