"""Snapshots of a department's servers (issue 16): Nova's createImage makes a Glance image of
the server's root disk in the department's project; restoring rebuilds the server from one (its
root disk replaced, its data volumes untouched).  A server snapshot counts as one of the
department's SNAPSHOTS until deleted.  Reached through :mod:`cloudmgr.backups.services`."""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.backups.common import (
    DELETE_WORK,
    SERVER_COPYABLE_STATES,
    SERVER_RESTORE_WORK,
    SERVER_SNAPSHOT_WORK,
    SNAPSHOT_NAME_MAX,
    VOLUME_ACTORS,
    must_be_deletable,
    new_tag,
)
from cloudmgr.backups.errors import (
    CopyConflict,
    CopyInvalid,
    CopyKind,
    CopyNotFound,
    CopyProblem,
    NotYourServer,
    ServerNotFound,
)
from cloudmgr.backups.models import (
    CopyState,
    RestoreState,
    ServerSnapshotRecord,
)
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.workqueue.services import enqueue

# --- server snapshots -------------------------------------------------------------------------


def _server(session: Session, actor: Actor, server_row_id: int, *, lock: bool = False) -> ManagedServer:
    server = session.get(ManagedServer, server_row_id, with_for_update=lock or None, populate_existing=lock)
    if server is None or not actor.can_see_department(server.department_id):
        raise ServerNotFound(message(N_("no server %(id)s"), id=server_row_id))
    return server


def _must_act_on_server(actor: Actor) -> None:
    if actor.role not in VOLUME_ACTORS:
        raise NotYourServer(Message(N_("only the department or an operator acts on a server's snapshots")))


def _snapshot_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= SNAPSHOT_NAME_MAX or any(unicodedata.category(c).startswith("C") for c in name):
        raise CopyInvalid(CopyProblem.NAME, max=SNAPSHOT_NAME_MAX)
    return name


def _server_copyable(server: ManagedServer) -> None:
    if server.state not in SERVER_COPYABLE_STATES or not server.server_id:
        raise CopyConflict(CopyProblem.SERVER_NOT_READY, server=server.name, state=server.state.value)


def _server_busy(session: Session, server_row_id: int) -> bool:
    """A snapshot of the server being made or a rebuild of it under way: one at a time."""
    return (
        session.scalar(
            select(ServerSnapshotRecord.id)
            .where(
                ServerSnapshotRecord.server_row_id == server_row_id,
                (ServerSnapshotRecord.state == CopyState.PENDING)
                | ServerSnapshotRecord.restore_state.in_([RestoreState.QUEUED, RestoreState.REBUILDING]),
            )
            .limit(1)
        )
        is not None
    )


def may_snapshot_server(actor: Actor, server: ManagedServer) -> bool:
    """Whether the page offers to snapshot ``server`` now (:func:`take_server_snapshot` refuses the rest)."""
    return actor.role in VOLUME_ACTORS and server.state in SERVER_COPYABLE_STATES and bool(server.server_id)


def may_restore_server(actor: Actor, server: ManagedServer, record: ServerSnapshotRecord) -> bool:
    return (
        may_snapshot_server(actor, server)
        and record.state == CopyState.READY
        and record.restore_state not in {RestoreState.QUEUED, RestoreState.REBUILDING}
    )


def list_server_snapshots(session: Session, actor: Actor, server_row_id: int) -> Sequence[ServerSnapshotRecord]:
    _server(session, actor, server_row_id)
    return session.scalars(
        select(ServerSnapshotRecord)
        .where(ServerSnapshotRecord.server_row_id == server_row_id, ServerSnapshotRecord.state != CopyState.DELETED)
        .order_by(ServerSnapshotRecord.created_at.desc(), ServerSnapshotRecord.id.desc())
    ).all()


def get_server_snapshot(session: Session, actor: Actor, snapshot_record_id: int) -> ServerSnapshotRecord:
    record = session.get(ServerSnapshotRecord, snapshot_record_id)
    if record is None or record.state == CopyState.DELETED or not actor.can_see_department(record.department_id):
        raise CopyNotFound(message(N_("no server snapshot %(id)s"), id=snapshot_record_id))
    return record


def take_server_snapshot(session: Session, actor: Actor, server_row_id: int, name: str) -> ServerSnapshotRecord:
    """Snapshot a running or stopped server (one snapshot or restore of a server at a time).

    Quota: a server snapshot is a Glance image, which Cinder never counts and for which the
    clouds hold no per-project limit cloudmgr pushes; it is held as one of the department's
    SNAPSHOTS (its allowance of point-in-time copies) so a department cannot fill the image
    store without bound.  The ledger is then stricter than Cinder (volume and server snapshots
    share the limit, Cinder sees only the former), never looser.  No GB: an image is not in
    Cinder's gigabytes."""
    server = _server(session, actor, server_row_id, lock=True)
    _must_act_on_server(actor)
    name = _snapshot_name(name)
    _server_copyable(server)
    if _server_busy(session, server.id):
        raise CopyConflict(CopyProblem.SERVER_BUSY, server=server.name)
    tag = new_tag("ss")
    reservation = ledger.reserve(
        session,
        department_id=server.department_id,
        cloud_id=server.cloud_id,
        amounts={Resource.SNAPSHOTS: 1},
        owner=f"server-snapshot:{tag}",
    )
    record = ServerSnapshotRecord(
        server_row_id=server.id,
        department_id=server.department_id,
        cloud_id=server.cloud_id,
        name=name,
        tag=tag,
        state=CopyState.PENDING,
        reservation_id=reservation.id,
        requested_by=actor.username,
    )
    session.add(record)
    session.flush()
    enqueue(session, SERVER_SNAPSHOT_WORK, f"server-snapshot:{record.id}", {"server_snapshot_record_id": record.id})
    audit.record(
        session,
        actor=actor.username,
        action="server.snapshot",
        target_type="managed_server",
        target_id=server.id,
        detail={"server_snapshot_record": record.id, "name": name, "tag": tag},
    )
    return record


def restore_server_snapshot(
    session: Session, actor: Actor, snapshot_record_id: int, *, confirm: str
) -> ServerSnapshotRecord:
    """Rebuild the snapshot's server from it: the root disk is replaced by the snapshot's (what
    was written since is lost), the server keeps its name, addresses, flavor and data volumes.
    ``confirm`` is the server's name, typed to say the user knows the disk is replaced."""
    record = get_server_snapshot(session, actor, snapshot_record_id)
    _must_act_on_server(actor)
    server = _server(session, actor, record.server_row_id, lock=True)
    record = session.get_one(ServerSnapshotRecord, record.id, with_for_update=True, populate_existing=True)
    if record.state != CopyState.READY or not record.image_id:
        raise CopyConflict(CopyProblem.SNAPSHOT_NOT_READY, copy=record.name, state=record.state.value)
    _server_copyable(server)
    if _server_busy(session, server.id):
        raise CopyConflict(CopyProblem.SERVER_BUSY, server=server.name)
    if (confirm or "").strip() != server.name:
        raise CopyInvalid(CopyProblem.CONFIRM, server=server.name)
    record.restore_state, record.restore_requested_by = RestoreState.QUEUED, actor.username
    record.restore_fault, record.restored_at = None, None
    enqueue(
        session,
        SERVER_RESTORE_WORK,
        f"server-restore:{record.id}:{secrets.token_hex(4)}",
        {"server_snapshot_record_id": record.id},
    )
    audit.record(
        session,
        actor=actor.username,
        action="server.restore_snapshot",
        target_type="managed_server",
        target_id=server.id,
        detail={"server_snapshot_record": record.id, "name": record.name, "image_id": record.image_id},
    )
    return record


def delete_server_snapshot(session: Session, actor: Actor, snapshot_record_id: int) -> ServerSnapshotRecord:
    """Delete a ready (or failed) server snapshot; its snapshot goes back to the quota once the
    cloud has deleted the image (a failed one gave its hold back already).  Not while the
    server is being rebuilt from it."""
    record = get_server_snapshot(session, actor, snapshot_record_id)
    _must_act_on_server(actor)
    record = session.get_one(ServerSnapshotRecord, record.id, with_for_update=True, populate_existing=True)
    if record.state == CopyState.DELETING:
        return record
    must_be_deletable(record, CopyKind.SERVER_SNAPSHOT)
    if record.restore_state in {RestoreState.QUEUED, RestoreState.REBUILDING}:
        raise CopyConflict(CopyProblem.COPY_IN_USE, kind=CopyKind.SERVER_SNAPSHOT.value, copy=record.name)
    previous, record.state = record.state, CopyState.DELETING
    enqueue(
        session,
        DELETE_WORK,
        f"delete-server-snapshot:{record.id}",
        {"server_snapshot_record_id": record.id, "previous": previous.value},
    )
    audit.record(
        session,
        actor=actor.username,
        action="server.snapshot.delete",
        target_type="managed_server",
        target_id=record.server_row_id,
        detail={"server_snapshot_record": record.id, "name": record.name, "image_id": record.image_id},
    )
    return record
