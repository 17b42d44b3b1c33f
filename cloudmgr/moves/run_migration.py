"""The steps of a live or cold migration (run by :mod:`cloudmgr.moves.jobs`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cloudmgr.db import Database
from cloudmgr.messages import N_, Message, message
from cloudmgr.moves.states import MoveState
from cloudmgr.moves.stepping import (
    MoveView,
    StepContext,
    StepFailed,
    job_entry_point,
    placement_check,
    run_step,
    transition,
)
from cloudmgr.servicerequests.models import ManagedServer


def _record_host(db: Database, view: MoveView, host: str | None) -> None:
    """The database follows the server: a managed server's host is where the move left it
    (the portal and the API show it).  A drain's servers are found by their id."""
    if not host:
        return
    with db.unit_of_work() as uow:
        managed = uow.session.scalar(
            select(ManagedServer).where(
                ManagedServer.cloud_id == view.cloud.id, ManagedServer.server_id == view.server_id
            )
        )
        if managed is not None:
            managed.host = host


def _stayed(server: str, host: str | None, fault: str | None) -> Message:
    """The server did not move: the cloud's own fault text when it wrote one."""
    why: str | Message = fault or Message(N_("the cloud found no host for it or the migration failed"))
    return message(N_("server %(server)s stayed on %(host)s: %(why)s"), server=server, host=host, why=why)


def run_live(ctx: StepContext, view: MoveView) -> None:
    provider = view.cloud.provider(ctx.registry)
    server_id = view.server_id or ""

    def migrate() -> dict[str, Any]:
        server = provider.get_server(server_id)
        if server.task_state is not None:  # an earlier attempt's migration still running
            server = provider.wait_for_server(server_id, {"ACTIVE"}, timeout=ctx.timeout)
        if server.host != view.source_host and (view.target_host is None or server.host == view.target_host):
            return {"host": server.host}  # moved by an earlier attempt
        if server.status != "ACTIVE":
            raise StepFailed(
                message(
                    N_("server %(server)s is %(status)s: only a running server can be live-migrated"),
                    server=server.name,
                    status=server.status,
                )
            )
        placement_check(ctx, view, job_entry_point(view))
        provider.live_migrate(server_id, view.target_host)
        after = provider.wait_for_server(server_id, {"ACTIVE"}, timeout=ctx.timeout)
        if after.host == view.source_host:
            raise StepFailed(_stayed(after.name, view.source_host, after.fault_message))
        return {"host": after.host}

    result = run_step(ctx, view, "migrate", migrate)
    _record_host(ctx.db, view, result.get("host"))
    transition(ctx.db, view.id, MoveState.DONE, action="finish", reason=f"now on {result.get('host')}")


def run_cold(ctx: StepContext, view: MoveView) -> None:
    provider = view.cloud.provider(ctx.registry)
    server_id = view.server_id or ""
    settled = {"VERIFY_RESIZE", "ACTIVE", "SHUTOFF"}

    def migrate() -> dict[str, Any]:
        server = provider.get_server(server_id)
        if server.task_state is not None:
            server = provider.wait_for_server(server_id, settled, timeout=ctx.timeout)
        if server.status == "VERIFY_RESIZE":
            return {"host": server.host}
        if server.host != view.source_host:
            return {"host": server.host, "confirmed": True}  # moved and confirmed outside this move
        placement_check(ctx, view, job_entry_point(view))
        provider.cold_migrate(server_id, view.target_host)
        after = provider.wait_for_server(server_id, settled, timeout=ctx.timeout)
        if after.status != "VERIFY_RESIZE":
            raise StepFailed(_stayed(after.name, view.source_host, after.fault_message))
        return {"host": after.host}

    def confirm() -> dict[str, Any]:
        server = provider.get_server(server_id)
        if server.status == "VERIFY_RESIZE":
            provider.confirm_migration(server_id)
            server = provider.wait_for_server(server_id, {"ACTIVE", "SHUTOFF"}, timeout=ctx.timeout)
        if server.host == view.source_host:
            raise StepFailed(
                message(
                    N_("server %(server)s is back on %(host)s: the migration was reverted"),
                    server=server.name,
                    host=view.source_host,
                )
            )
        return {"host": server.host}

    def revert() -> dict[str, Any]:
        server = provider.get_server(server_id)
        if server.status == "VERIFY_RESIZE":
            provider.revert_migration(server_id)
            server = provider.wait_for_server(server_id, {"ACTIVE", "SHUTOFF"}, timeout=ctx.timeout)
        if server.host != view.source_host:
            raise StepFailed(
                message(
                    N_("server %(server)s is on %(host)s: the migration was already confirmed"),
                    server=server.name,
                    host=server.host,
                )
            )
        return {"host": server.host}

    if view.state == MoveState.RUNNING:
        result = run_step(ctx, view, "migrate", migrate)
        _record_host(ctx.db, view, result.get("host"))
        if result.get("confirmed"):
            transition(ctx.db, view.id, MoveState.AWAITING_CONFIRM, action="migrated")
            transition(ctx.db, view.id, MoveState.DONE, action="finish", reason="confirmed outside cloudmgr")
            return
        transition(ctx.db, view.id, MoveState.AWAITING_CONFIRM, action="migrated", reason=f"on {result.get('host')}")
        if not view.auto_confirm:
            return
        view.state = MoveState.AWAITING_CONFIRM
    if view.state == MoveState.AWAITING_CONFIRM:
        # Only with auto_confirm (see run_move); also when a worker died right after "migrated":
        # the confirmation it owed is given by the worker that takes the item over.
        transition(ctx.db, view.id, MoveState.CONFIRMING, action="confirm", reason="confirmed automatically")
        view.state = MoveState.CONFIRMING
    if view.state == MoveState.CONFIRMING:
        result = run_step(ctx, view, "confirm", confirm)
        _record_host(ctx.db, view, result.get("host"))
        transition(ctx.db, view.id, MoveState.DONE, action="finish", reason=f"now on {result.get('host')}")
    elif view.state == MoveState.REVERTING:
        result = run_step(ctx, view, "revert", revert)
        _record_host(ctx.db, view, result.get("host"))
        transition(ctx.db, view.id, MoveState.REVERTED, action="reverted", reason=f"back on {view.source_host}")
