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
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError, CloudProvider, CloudUnavailable, ServerSpec
from cloudmgr.db import Database, utcnow
from cloudmgr.moves.metrics import MOVE_STEP_SECONDS, MOVES_TOTAL
from cloudmgr.moves.models import Move, MoveStep
from cloudmgr.moves.services import _add_steps, _CloudRef, check_not_classified, managed_project_ids, record_event
from cloudmgr.moves.states import MoveKind, MoveState, StepState
from cloudmgr.organisation.models import Cloud
from cloudmgr.providers import ProviderRegistry
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer, OrphanServer
from cloudmgr.workqueue.services import ClaimedItem, GiveUp, RetryLater, renew

log = logging.getLogger(__name__)

SYSTEM = "system:moves"

#: Tests only: called as ``hook(move_id, step, phase)`` with phase "started" (the step is
#: recorded as running), "acted" (its side effect happened, not yet recorded) and "done".
#: Raising from it simulates the process dying at that point.
CRASH_HOOK: Callable[[int, str, str], None] | None = None


class StepFailed(Exception):
    """A step's check failed: the move ends failed with this reason."""


class _MoveFailed(Exception):
    pass


def _hook(move_id: int, step: str, phase: str) -> None:
    if CRASH_HOOK is not None:
        CRASH_HOOK(move_id, step, phase)


@dataclass
class _View:
    """What the runner needs of a move, read in one short unit of work."""

    id: int
    kind: MoveKind
    state: MoveState
    cloud: _CloudRef
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
    target_cloud: _CloudRef | None = None
    target_project_id: str | None = None
    target_department_key: str | None = None
    flavor_name: str | None = None
    idempotency_key: str | None = None
    managed_server_id: int | None = None
    parent_id: int | None = None


@dataclass
class _Ctx:
    db: Database
    registry: ProviderRegistry
    timeout: float
    work_dir: Path
    renew: Callable[[], None] | None = None


def _ref(cloud: Cloud) -> _CloudRef:
    return _CloudRef(cloud.id, cloud.key, cloud.os_cloud, cloud.region)


def _view(move: Move) -> _View:
    return _View(
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
    )


def _transition(
    db: Database, move_id: int, target: MoveState, *, action: str, reason: str | None = None, actor: str = SYSTEM
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


def _placement_check(ctx: _Ctx, view: _View, entry_point: str) -> dict[str, str]:
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
            reason = str(refused)
        else:
            systems = systems_of_server(
                session,
                cloud_server_id=view.server_id,
                managed_server_id=view.managed_server_id,
                metadata=view.resources.get("metadata"),
            )
            return server_metadata(systems[0]) if systems else {}
    raise StepFailed(reason)


def _job_entry_point(view: _View) -> str:
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


def _step_error(db: Database, view: _View, name: str, error: str, *, failed: bool, seconds: float) -> None:
    with db.unit_of_work() as uow:
        step = _step_row(uow.session, view.id, name)
        step.error = error[:4000]
        step.seconds = seconds
        if failed:
            step.state = StepState.FAILED.value
            step.finished_at = utcnow()


def run_step(ctx: _Ctx, view: _View, name: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
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
        _step_error(ctx.db, view, name, str(exc), failed=True, seconds=time.perf_counter() - started)
        raise _MoveFailed(f"{name}: {exc}") from exc
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
    _transition(db, move_id, MoveState.FAILED, action="fail", reason=f"gave up: {error}"[:2000])


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
    ctx = _Ctx(
        db=db,
        registry=registry,
        timeout=timeout if timeout is not None else float(settings.boot_timeout_seconds),
        work_dir=work_dir or settings.instance_path / "moves",
        renew=renew,
    )
    with db.unit_of_work() as uow:
        move = uow.session.get(Move, move_id, with_for_update=True)
        if move is None:
            raise GiveUp(f"there is no move {move_id}")
        if move.state == MoveState.REQUESTED:
            record_event(uow.session, move, MoveState.RUNNING, actor=SYSTEM, action="start")
            move.started_at = utcnow()
        view = _view(move)
    runners: dict[MoveKind, Callable[[_Ctx, _View], None]] = {
        MoveKind.LIVE: _run_live,
        MoveKind.COLD: _run_cold,
        MoveKind.DRAIN: _run_drain,
        MoveKind.CROSS_CLOUD: _run_cross_cloud,
    }
    owed = view.kind == MoveKind.COLD and view.state == MoveState.AWAITING_CONFIRM and view.auto_confirm
    if view.state in (MoveState.RUNNING, MoveState.CONFIRMING, MoveState.REVERTING) or owed:
        try:
            runners[view.kind](ctx, view)
        except _MoveFailed as exc:
            log.warning("move %s failed: %s", move_id, exc)
            _transition(db, move_id, MoveState.FAILED, action="fail", reason=str(exc)[:2000])
    with db.unit_of_work() as uow:
        return str(uow.session.scalar(select(Move.state).where(Move.id == move_id)))


# ---- live and cold migration ------------------------------------------------------------


def _record_host(db: Database, view: _View, host: str | None) -> None:
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


def _run_live(ctx: _Ctx, view: _View) -> None:
    provider = view.cloud.provider(ctx.registry)
    server_id = view.server_id or ""

    def migrate() -> dict[str, Any]:
        server = provider.get_server(server_id)
        if server.task_state is not None:  # an earlier attempt's migration still running
            server = provider.wait_for_server(server_id, {"ACTIVE"}, timeout=ctx.timeout)
        if server.host != view.source_host and (view.target_host is None or server.host == view.target_host):
            return {"host": server.host}  # moved by an earlier attempt
        if server.status != "ACTIVE":
            raise StepFailed(f"server {server.name} is {server.status}: only a running server can be live-migrated")
        _placement_check(ctx, view, _job_entry_point(view))
        provider.live_migrate(server_id, view.target_host)
        after = provider.wait_for_server(server_id, {"ACTIVE"}, timeout=ctx.timeout)
        if after.host == view.source_host:
            raise StepFailed(
                f"server {after.name} stayed on {view.source_host}: "
                f"{after.fault_message or 'the cloud found no host for it or the migration failed'}"
            )
        return {"host": after.host}

    result = run_step(ctx, view, "migrate", migrate)
    _record_host(ctx.db, view, result.get("host"))
    _transition(ctx.db, view.id, MoveState.DONE, action="finish", reason=f"now on {result.get('host')}")


def _run_cold(ctx: _Ctx, view: _View) -> None:
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
        _placement_check(ctx, view, _job_entry_point(view))
        provider.cold_migrate(server_id, view.target_host)
        after = provider.wait_for_server(server_id, settled, timeout=ctx.timeout)
        if after.status != "VERIFY_RESIZE":
            raise StepFailed(
                f"server {after.name} stayed on {view.source_host}: "
                f"{after.fault_message or 'the cloud found no host for it or the migration failed'}"
            )
        return {"host": after.host}

    def confirm() -> dict[str, Any]:
        server = provider.get_server(server_id)
        if server.status == "VERIFY_RESIZE":
            provider.confirm_migration(server_id)
            server = provider.wait_for_server(server_id, {"ACTIVE", "SHUTOFF"}, timeout=ctx.timeout)
        if server.host == view.source_host:
            raise StepFailed(f"server {server.name} is back on {view.source_host}: the migration was reverted")
        return {"host": server.host}

    def revert() -> dict[str, Any]:
        server = provider.get_server(server_id)
        if server.status == "VERIFY_RESIZE":
            provider.revert_migration(server_id)
            server = provider.wait_for_server(server_id, {"ACTIVE", "SHUTOFF"}, timeout=ctx.timeout)
        if server.host != view.source_host:
            raise StepFailed(f"server {server.name} is on {server.host}: the migration was already confirmed")
        return {"host": server.host}

    if view.state == MoveState.RUNNING:
        result = run_step(ctx, view, "migrate", migrate)
        _record_host(ctx.db, view, result.get("host"))
        if result.get("confirmed"):
            _transition(ctx.db, view.id, MoveState.AWAITING_CONFIRM, action="migrated")
            _transition(ctx.db, view.id, MoveState.DONE, action="finish", reason="confirmed outside cloudmgr")
            return
        _transition(ctx.db, view.id, MoveState.AWAITING_CONFIRM, action="migrated", reason=f"on {result.get('host')}")
        if not view.auto_confirm:
            return
        view.state = MoveState.AWAITING_CONFIRM
    if view.state == MoveState.AWAITING_CONFIRM:
        # Only with auto_confirm (see run_move); also when a worker died right after "migrated":
        # the confirmation it owed is given by the worker that takes the item over.
        _transition(ctx.db, view.id, MoveState.CONFIRMING, action="confirm", reason="confirmed automatically")
        view.state = MoveState.CONFIRMING
    if view.state == MoveState.CONFIRMING:
        result = run_step(ctx, view, "confirm", confirm)
        _record_host(ctx.db, view, result.get("host"))
        _transition(ctx.db, view.id, MoveState.DONE, action="finish", reason=f"now on {result.get('host')}")
    elif view.state == MoveState.REVERTING:
        result = run_step(ctx, view, "revert", revert)
        _record_host(ctx.db, view, result.get("host"))
        _transition(ctx.db, view.id, MoveState.REVERTED, action="reverted", reason=f"back on {view.source_host}")


# ---- host drain -----------------------------------------------------------------------


def _drain_children(ctx: _Ctx, view: _View, provider: CloudProvider) -> dict[str, Any]:
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
                reason=f"drain of {host} (move {view.id}): {view.reason}",
                created_by=view.created_by,
                resources={},
            )
            _add_steps(child)
            session.add(child)
            session.flush()
            audit.record(
                session,
                actor=SYSTEM,
                action="move.create",
                target_type="move",
                target_id=child.id,
                reason=child.reason,
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
                    uow.session, failed, MoveState.RUNNING, actor=SYSTEM, action="resume", reason="drain resumed"
                )
                for step in failed.steps:
                    if step.state == StepState.FAILED.value:
                        step.state = StepState.PENDING.value
        run_move(ctx.db, ctx.registry, child_id, renew=ctx.renew, timeout=ctx.timeout, work_dir=ctx.work_dir)
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


def _run_drain(ctx: _Ctx, view: _View) -> None:
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
        _transition(ctx.db, view.id, MoveState.DONE, action="finish", reason=f"{result['moved']} servers moved")
    else:
        failed = [o for o in result["servers"] if o["state"] == MoveState.FAILED]
        reason = f"{len(failed)} servers could not be moved" + (
            f"; still on {host}: {', '.join(result['left_on_host'])}" if result["left_on_host"] else ""
        )
        _transition(ctx.db, view.id, MoveState.PARTIAL, action="finish", reason=reason)


# ---- cross-cloud move -----------------------------------------------------------------


def snapshot_name(key: str) -> str:
    """The source snapshot's name: the move's idempotency key makes it unique on the cloud
    (several cloudmgr databases may share one OpenStack)."""
    return f"cloudmgr-{key}-snapshot"


def image_name(key: str) -> str:
    return f"cloudmgr-{key}-image"


def _images_named(provider: CloudProvider, name: str) -> list[Any]:
    return [i for i in provider.list_images() if i.name == name]


def _run_cross_cloud(ctx: _Ctx, view: _View) -> None:
    assert view.target_cloud is not None and view.target_project_id is not None
    source = view.cloud.provider(ctx.registry)
    target = view.target_cloud.provider(ctx.registry)
    target_project = view.target_project_id
    server_id = view.server_id or ""
    folder = ctx.work_dir / str(view.id)
    image_file = folder / "snapshot.img"
    expected = view.resources.get("flavor") or {}
    key = view.idempotency_key or f"move-{view.id}"

    def stop_source() -> dict[str, Any]:
        # Before anything is touched: the system may have been reclassified since the move was created.
        _placement_check(ctx, view, "move.cross_cloud.start")
        server = source.get_server(server_id)
        if server.status != "SHUTOFF":
            source.stop_server(server_id)
            source.wait_for_server(server_id, {"SHUTOFF"}, timeout=ctx.timeout)
        return {"source_stopped": True}

    def snapshot() -> dict[str, Any]:
        name = snapshot_name(key)
        for image in _images_named(source, name):
            try:
                ready = image if image.status == "active" else source.wait_for_image(image.id, timeout=ctx.timeout)
                return {"snapshot_image_id": ready.id, "snapshot_bytes": ready.size_bytes}
            except CloudError:
                source.delete_image(image.id)  # a snapshot that will never be usable
        made = source.create_snapshot(server_id, name, timeout=ctx.timeout)
        return {"snapshot_image_id": made.id, "snapshot_bytes": made.size_bytes}

    def download() -> dict[str, Any]:
        snap_id = view.resources["snapshot_image_id"]
        size = view.resources.get("snapshot_bytes")
        if image_file.exists() and (size is None or image_file.stat().st_size == size):
            return {"image_file": str(image_file), "downloaded_bytes": image_file.stat().st_size}
        folder.mkdir(parents=True, exist_ok=True)
        written = source.download_image(snap_id, image_file)
        if size is not None and written != size:
            image_file.unlink(missing_ok=True)
            raise StepFailed(f"downloaded {written} bytes of snapshot {snap_id}, expected {size}")
        return {"image_file": str(image_file), "downloaded_bytes": written}

    def upload() -> dict[str, Any]:
        name = image_name(key)
        for image in _images_named(target, name):
            if image.status == "active" and image.owner_project_id in (target_project, None):
                return {"target_image_id": image.id}
            target.delete_image(image.id)  # an upload cut short
        if not image_file.exists():
            raise StepFailed(f"the downloaded snapshot {image_file} is gone: resume from the download step")
        snap = source.get_image(view.resources["snapshot_image_id"])
        made = target.upload_image(name, image_file, disk_format=snap.disk_format or "qcow2", project_id=target_project)
        return {"target_image_id": made.id}

    def boot() -> dict[str, Any]:
        existing = target.find_server_by_key(target_project, key)
        if existing is not None and existing.status == "ERROR":
            target.delete_server(existing.id, wait=True, timeout=ctx.timeout)
        flavor = next((f for f in target.list_flavors() if f.name == view.flavor_name), None)
        if flavor is None:
            raise StepFailed(
                f"cloud {view.target_cloud.key if view.target_cloud else ''} has no flavor {view.flavor_name}"
            )
        # Again right before the boot, and the target carries the classification of its
        # system as it is now (the source's metadata may predate a reclassification), so the
        # adapter's guard sees it too.
        placement = _placement_check(ctx, view, "move.cross_cloud.boot")
        metadata = {
            **(view.resources.get("metadata") or {}),
            **placement,
            "cloudmgr_move": str(view.id),
            "cloudmgr_department": view.target_department_key or "",
        }
        if view.managed_server_id is not None:
            metadata["cloudmgr_server"] = str(view.managed_server_id)
        spec = ServerSpec(
            name=view.server_name or f"moved-{view.id}",
            flavor_id=flavor.id,
            image_id=view.resources["target_image_id"],
            network_id=view.resources.get("network_id"),
            idempotency_key=key,
            metadata=metadata,
        )
        server = target.create_server(target_project, spec)
        server = target.wait_for_server(server.id, {"ACTIVE"}, timeout=ctx.timeout)
        return {"target_server_id": server.id, "target_host": server.host}

    def verify() -> dict[str, Any]:
        server = target.get_server(view.resources["target_server_id"])
        if server.status != "ACTIVE":
            raise StepFailed(f"the new server {server.name} is {server.status}, not ACTIVE")
        flavor = next(
            (f for f in target.list_flavors() if f.id == server.flavor_id or f.name == server.flavor_name), None
        )
        if flavor is None or (flavor.vcpus, flavor.ram_mb, flavor.disk_gb) != (
            expected.get("vcpus"),
            expected.get("ram_mb"),
            expected.get("disk_gb"),
        ):
            raise StepFailed(f"the new server {server.name} does not have the source's size ({expected})")
        if server.project_id not in (None, target_project):
            raise StepFailed(f"the new server {server.name} is in project {server.project_id}, not {target_project}")
        return {"verified": True, "addresses": {k: list(v) for k, v in server.addresses.items()}}

    def record_target() -> dict[str, Any]:
        return _record_target(ctx, view)

    def delete_source() -> dict[str, Any]:
        source.delete_server(server_id, wait=True, timeout=ctx.timeout)
        return {"source_deleted": True}

    def cleanup() -> dict[str, Any]:
        deleted = []
        for provider, name in ((source, snapshot_name(key)), (target, image_name(key))):
            for image in _images_named(provider, name):
                provider.delete_image(image.id)
                deleted.append(image.id)
        for field_name, provider in (("snapshot_image_id", source), ("target_image_id", target)):
            image_id = view.resources.get(field_name)
            if image_id and image_id not in deleted:
                provider.delete_image(image_id)  # gone already counts as deleted
        shutil.rmtree(folder, ignore_errors=True)
        leftovers = _images_named(source, snapshot_name(key)) + _images_named(target, image_name(key))
        if leftovers:
            raise StepFailed(f"images still present after cleanup: {', '.join(i.id for i in leftovers)}")
        return {"deleted_images": deleted}

    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("stop_source", stop_source),
        ("snapshot", snapshot),
        ("download", download),
        ("upload", upload),
        ("boot", boot),
        ("verify", verify),
        ("record_target", record_target),
        ("delete_source", delete_source),
        ("cleanup", cleanup),
    ]
    for name, action in steps:
        run_step(ctx, view, name, action)
    _transition(
        ctx.db,
        view.id,
        MoveState.DONE,
        action="finish",
        reason=f"now {view.resources.get('target_server_id')} on {view.target_cloud.key}",
    )


def _record_target(ctx: _Ctx, view: _View) -> dict[str, Any]:
    """The database follows the server: the managed server now is the target one, the
    target's reservation becomes usage and the source's usage is given back."""
    target_server_id = view.resources["target_server_id"]
    assert view.target_cloud is not None
    with ctx.db.unit_of_work() as uow:
        session = uow.session
        move = session.get(Move, view.id, with_for_update=True)
        assert move is not None
        for orphan in session.scalars(
            select(OrphanServer).where(OrphanServer.server_id == target_server_id, OrphanServer.resolved_at.is_(None))
        ):
            orphan.resolved_at = utcnow()
        managed = session.get(ManagedServer, move.managed_server_id) if move.managed_server_id else None
        if managed is None:
            return {"managed": False}
        if managed.server_id == target_server_id:
            return {"managed": True, "managed_server_id": managed.id}
        source_department, source_cloud = managed.department_id, managed.cloud_id
        if move.reservation_id is not None:
            ledger.consume(session, move.reservation_id, reason=f"moved in by move {move.id}")
        ledger.give_back_usage(
            session,
            department_id=source_department,
            cloud_id=source_cloud,
            amounts={Resource.CORES: managed.vcpus, Resource.RAM_MB: managed.ram_mb, Resource.INSTANCES: 1},
        )
        from cloudmgr.catalog.models import CatalogItem

        flavor_item = session.scalar(
            select(CatalogItem).where(
                CatalogItem.cloud_id == view.target_cloud.id,
                CatalogItem.kind == "flavor",
                CatalogItem.cloud_name == view.flavor_name,
            )
        )
        previous = {"cloud_id": managed.cloud_id, "server_id": managed.server_id, "department_id": source_department}
        managed.cloud_id = view.target_cloud.id
        managed.department_id = move.target_department_id or managed.department_id
        managed.zone = move.target_zone or managed.zone
        managed.server_id = target_server_id
        managed.idempotency_key = move.idempotency_key or managed.idempotency_key
        managed.host = view.resources.get("target_host")
        managed.addresses = dict(view.resources.get("addresses") or {})
        if flavor_item is not None:
            managed.flavor_item_id = flavor_item.id
        audit.record(
            session,
            actor=SYSTEM,
            action="server.moved",
            target_type="managed_server",
            target_id=managed.id,
            reason=f"move {move.id}",
            detail={"from": previous, "to": {"cloud_id": managed.cloud_id, "server_id": target_server_id}},
        )
        return {"managed": True, "managed_server_id": managed.id}


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
    from cloudmgr.moves.services import work_key
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
