"""The public face of snapshots and backups (issue 16): every rule about them is decided here.

A volume has snapshots (Cinder's, next to it) and backups (in the backup store); a server has
snapshots of its own (Nova's createImage: a Glance image of its root disk, in the department's
project), restored by rebuilding the server from one (its root disk replaced, its data volumes
untouched).  Each counts against the department's quota until deleted: a volume snapshot one
SNAPSHOTS and its GB, a backup one BACKUPS, a server snapshot one SNAPSHOTS (see
:func:`take_server_snapshot`); deleting a ready copy gives exactly that back once, when the
cloud has deleted it.

Services work in the caller's session and never call a cloud: each action checks the
department wall (another department's volume is not found; department staff and heads and
operators act, others only read), checks the volume or copy is in a state the action needs,
reserves the quota it will take in the ledger, and writes its record together with the work
item (:mod:`cloudmgr.backups.jobs`) that makes it on the cloud after the commit.

Schedules: ``hour`` and ``weekday`` are in the province's time (UTC+8, no daylight saving);
each slot a schedule reaches is one *period* (a day, or an ISO week) and its backup is tagged
``cm-bk-<schedule>-<period>``, so a scheduler that runs twice, or late, never makes two.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.backups.errors import (
    CopyConflict,
    CopyInvalid,
    CopyKind,
    CopyNotFound,
    CopyProblem,
    NotYourServer,
    NotYourVolume,
    ScheduleInvalid,
    ServerNotFound,
    VolumeNotFound,
    VolumeNotReady,
)
from cloudmgr.backups.models import (
    BackupSchedule,
    CopyState,
    Frequency,
    RestoreState,
    ServerSnapshotRecord,
    VolumeBackupRecord,
    VolumeSnapshotRecord,
)
from cloudmgr.db import utcnow
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.parts import ManagedVolume, VolumeState
from cloudmgr.servicerequests.states import ServerState
from cloudmgr.workqueue.models import WorkItem, WorkState
from cloudmgr.workqueue.services import enqueue

__all__ = [
    "KEEP_MAX",
    "LOCAL_TIME",
    "SNAPSHOT_NAME_MAX",
    "BackupSchedule",
    "CopyState",
    "Frequency",
    "RestoreState",
    "ScheduleForm",
    "ServerSnapshotRecord",
    "VolumeBackupRecord",
    "VolumeSnapshotRecord",
    "VolumeView",
]

#: The province's time, in which schedules are written (China has no daylight saving).
LOCAL_TIME = timezone(timedelta(hours=8), "UTC+8")
KEEP_MAX = 30
#: Who acts on volumes; everyone else who sees the department (auditors, finance) only reads.
VOLUME_ACTORS = frozenset({Role.DEPT_STAFF, Role.DEPT_HEAD, Role.OPERATOR})
#: A volume with data on the cloud: what can be snapshotted or backed up.
COPYABLE_STATES = frozenset({VolumeState.ATTACHED, VolumeState.AVAILABLE})

#: A server with a root disk on the cloud that Nova snapshots and rebuilds.
SERVER_COPYABLE_STATES = frozenset({ServerState.ACTIVE, ServerState.STOPPED})
SNAPSHOT_NAME_MAX = 64

# Work item kinds (cloudmgr.scheduler.jobs maps them to cloudmgr.backups.jobs' handlers).
SNAPSHOT_WORK = "backups.snapshot"
BACKUP_WORK = "backups.backup"
RESTORE_WORK = "backups.restore"
DELETE_WORK = "backups.delete"  # any copy: a backup, a volume snapshot or a server snapshot
SERVER_SNAPSHOT_WORK = "backups.server_snapshot"
SERVER_RESTORE_WORK = "backups.server_restore"
WORK_KINDS = frozenset(
    {SNAPSHOT_WORK, BACKUP_WORK, RESTORE_WORK, DELETE_WORK, SERVER_SNAPSHOT_WORK, SERVER_RESTORE_WORK}
)


@dataclass(frozen=True)
class VolumeView:
    """What the pages show of a volume."""

    id: int
    department_id: int
    cloud_id: int
    server_id: int | None
    server_name: str | None
    size_gb: int
    volume_type: str | None
    state: VolumeState
    has_cloud_volume: bool


@dataclass(frozen=True)
class ScheduleForm:
    frequency: str
    hour: int
    keep: int
    weekday: int | None = None
    enabled: bool = True


# --- the wall ---------------------------------------------------------------------------------


def _volume(session: Session, actor: Actor, volume_row_id: int, *, lock: bool = False) -> ManagedVolume:
    volume = session.get(ManagedVolume, volume_row_id, with_for_update=lock or None)
    if volume is None or volume.state == VolumeState.DELETED or not actor.can_see_department(volume.department_id):
        raise VolumeNotFound(f"no volume {volume_row_id}")
    return volume


def _must_act(actor: Actor) -> None:
    if actor.role not in VOLUME_ACTORS:
        raise NotYourVolume("only the department or an operator acts on a volume's snapshots and backups")


def may_act(actor: Actor, volume: VolumeView) -> bool:
    """Whether ``actor`` may take snapshots and backups of ``volume`` and restore them now."""
    return actor.role in VOLUME_ACTORS and volume.state in COPYABLE_STATES and volume.has_cloud_volume


def may_restore(actor: Actor) -> bool:
    return actor.role in VOLUME_ACTORS


def get_volume(session: Session, actor: Actor, volume_row_id: int) -> VolumeView:
    volume = _volume(session, actor, volume_row_id)
    server = session.get(ManagedServer, volume.server_id) if volume.server_id is not None else None
    return VolumeView(
        id=volume.id,
        department_id=volume.department_id,
        cloud_id=volume.cloud_id,
        server_id=volume.server_id,
        server_name=server.name if server is not None else None,
        size_gb=volume.size_gb,
        volume_type=volume.volume_type,
        state=volume.state,
        has_cloud_volume=bool(volume.volume_id),
    )


def _copyable(volume: ManagedVolume) -> None:
    if volume.state not in COPYABLE_STATES or not volume.volume_id:
        raise VolumeNotReady(f"volume {volume.id} is {volume.state.value}: it has nothing to copy yet")


def _tag(prefix: str) -> str:
    return f"cm-{prefix}-{secrets.token_hex(8)}"


# --- snapshots --------------------------------------------------------------------------------


def list_snapshots(session: Session, actor: Actor, volume_row_id: int) -> Sequence[VolumeSnapshotRecord]:
    _volume(session, actor, volume_row_id)
    return session.scalars(
        select(VolumeSnapshotRecord)
        .where(VolumeSnapshotRecord.volume_row_id == volume_row_id, VolumeSnapshotRecord.state != CopyState.DELETED)
        .order_by(VolumeSnapshotRecord.created_at.desc(), VolumeSnapshotRecord.id.desc())
    ).all()


def take_snapshot(session: Session, actor: Actor, volume_row_id: int) -> VolumeSnapshotRecord:
    """Snapshot the volume: one snapshot and its gigabytes (Cinder counts a snapshot's size
    against the same gigabytes as volumes) are reserved until the cloud made it."""
    volume = _volume(session, actor, volume_row_id, lock=True)
    _must_act(actor)
    _copyable(volume)
    tag = _tag("sn")
    reservation = ledger.reserve(
        session,
        department_id=volume.department_id,
        cloud_id=volume.cloud_id,
        amounts={Resource.SNAPSHOTS: 1, Resource.GIGABYTES: volume.size_gb},
        owner=f"snapshot:{tag}",
    )
    record = VolumeSnapshotRecord(
        volume_row_id=volume.id,
        department_id=volume.department_id,
        cloud_id=volume.cloud_id,
        tag=tag,
        size_gb=volume.size_gb,
        state=CopyState.PENDING,
        reservation_id=reservation.id,
        requested_by=actor.username,
    )
    session.add(record)
    session.flush()
    enqueue(session, SNAPSHOT_WORK, f"snapshot:{record.id}", {"snapshot_record_id": record.id})
    audit.record(
        session,
        actor=actor.username,
        action="volume.snapshot",
        target_type="managed_volume",
        target_id=volume.id,
        detail={"snapshot_record": record.id, "tag": tag},
    )
    return record


def get_snapshot(session: Session, actor: Actor, snapshot_record_id: int) -> VolumeSnapshotRecord:
    record = session.get(VolumeSnapshotRecord, snapshot_record_id)
    if record is None or record.state == CopyState.DELETED or not actor.can_see_department(record.department_id):
        raise CopyNotFound(f"no snapshot {snapshot_record_id}")
    return record


def restore_snapshot(session: Session, actor: Actor, snapshot_record_id: int) -> ManagedVolume:
    """A new volume of the department made from the snapshot (the source volume is untouched)."""
    record = get_snapshot(session, actor, snapshot_record_id)
    _must_act(actor)
    if record.state != CopyState.READY or not record.snapshot_id:
        raise VolumeNotReady(f"snapshot {record.id} is {record.state.value}: only a ready snapshot is restored")
    source = session.get_one(ManagedVolume, record.volume_row_id)
    return _new_volume(session, actor, source, record.size_gb, "snapshot", record.id)


# --- backups ----------------------------------------------------------------------------------


def list_backups(session: Session, actor: Actor, volume_row_id: int) -> Sequence[VolumeBackupRecord]:
    _volume(session, actor, volume_row_id)
    return session.scalars(
        select(VolumeBackupRecord)
        .where(VolumeBackupRecord.volume_row_id == volume_row_id, VolumeBackupRecord.state != CopyState.DELETED)
        .order_by(VolumeBackupRecord.created_at.desc(), VolumeBackupRecord.id.desc())
    ).all()


def _queue_backup(
    session: Session, actor: Actor, volume: ManagedVolume, tag: str, schedule_id: int | None
) -> VolumeBackupRecord:
    reservation = ledger.reserve(
        session,
        department_id=volume.department_id,
        cloud_id=volume.cloud_id,
        amounts={Resource.BACKUPS: 1},
        owner=f"backup:{tag}",
    )
    record = VolumeBackupRecord(
        volume_row_id=volume.id,
        department_id=volume.department_id,
        cloud_id=volume.cloud_id,
        tag=tag,
        size_gb=volume.size_gb,
        state=CopyState.PENDING,
        schedule_id=schedule_id,
        reservation_id=reservation.id,
        requested_by=actor.username,
    )
    session.add(record)
    session.flush()
    enqueue(session, BACKUP_WORK, f"backup:{record.id}", {"backup_record_id": record.id})
    audit.record(
        session,
        actor=actor.username,
        action="volume.backup",
        target_type="managed_volume",
        target_id=volume.id,
        detail={"backup_record": record.id, "tag": tag, "schedule": schedule_id},
    )
    return record


def back_up_now(session: Session, actor: Actor, volume_row_id: int) -> VolumeBackupRecord:
    """Back the volume up by hand (kept until removed: pruning only counts a schedule's own)."""
    volume = _volume(session, actor, volume_row_id, lock=True)
    _must_act(actor)
    _copyable(volume)
    return _queue_backup(session, actor, volume, _tag("bk"), None)


def get_backup(session: Session, actor: Actor, backup_record_id: int) -> VolumeBackupRecord:
    record = session.get(VolumeBackupRecord, backup_record_id)
    if record is None or record.state == CopyState.DELETED or not actor.can_see_department(record.department_id):
        raise CopyNotFound(f"no backup {backup_record_id}")
    return record


def restore_backup(session: Session, actor: Actor, backup_record_id: int) -> ManagedVolume:
    """A new volume of the department holding the backup's data.  Never into the source: it is
    usually attached (Cinder restores only into an available volume) and its data stays."""
    record = get_backup(session, actor, backup_record_id)
    _must_act(actor)
    if record.state != CopyState.READY or not record.backup_id:
        raise VolumeNotReady(f"backup {record.id} is {record.state.value}: only a ready backup is restored")
    source = session.get_one(ManagedVolume, record.volume_row_id)
    return _new_volume(session, actor, source, record.size_gb, "backup", record.id)


def _new_volume(
    session: Session, actor: Actor, source: ManagedVolume, size_gb: int, kind: str, copy_id: int
) -> ManagedVolume:
    tag = _tag("rs")
    reservation = ledger.reserve(
        session,
        department_id=source.department_id,
        cloud_id=source.cloud_id,
        amounts={Resource.VOLUMES: 1, Resource.GIGABYTES: size_gb},
        owner=f"volume:{tag}",
    )
    volume = ManagedVolume(
        server_id=None,
        request_id=None,
        name=f"{source.name or f'volume-{source.id}'}-{kind}-{copy_id}"[:64],
        department_id=source.department_id,
        cloud_id=source.cloud_id,
        index=1,
        size_gb=size_gb,
        volume_type=source.volume_type,
        idempotency_key=tag,
        state=VolumeState.PENDING,
        quota_counted=False,  # held by the reservation until the cloud made it
    )
    session.add(volume)
    session.flush()
    enqueue(
        session,
        RESTORE_WORK,
        f"restore:{volume.id}",
        {"volume_row_id": volume.id, "source": kind, "copy_id": copy_id, "reservation_id": reservation.id},
    )
    audit.record(
        session,
        actor=actor.username,
        action=f"volume.restore_{kind}",
        target_type="managed_volume",
        target_id=volume.id,
        detail={"from_volume": source.id, kind: copy_id, "tag": tag},
    )
    return volume


# --- deleting a volume's snapshot or backup ---------------------------------------------------


def _restoring_from(session: Session, kind: str, copy_id: int) -> bool:
    """Whether a new volume is being made from the copy now (its restore's work item is still
    queued or running): deleting the copy then would pull it from under the restore."""
    items = session.scalars(
        select(WorkItem).where(
            WorkItem.kind == RESTORE_WORK,
            WorkItem.state.in_([WorkState.QUEUED.value, WorkState.RUNNING.value]),
        )
    )
    return any(item.payload.get("source") == kind and int(item.payload.get("copy_id", 0)) == copy_id for item in items)


def _deletable(record: VolumeSnapshotRecord | VolumeBackupRecord | ServerSnapshotRecord, kind: CopyKind) -> None:
    if record.state == CopyState.PENDING:
        raise CopyConflict(CopyProblem.COPY_BUSY, kind=kind.value, copy=record.id, state=record.state.value)


def delete_volume_snapshot(session: Session, actor: Actor, snapshot_record_id: int) -> VolumeSnapshotRecord:
    """Delete a ready (or failed) snapshot of a volume; once the cloud has deleted it, its
    snapshot and its GB go back to the department's quota (a failed one gave its hold back
    already).  Asking again while it is being deleted changes nothing."""
    record = get_snapshot(session, actor, snapshot_record_id)
    _must_act(actor)
    record = session.get_one(VolumeSnapshotRecord, record.id, with_for_update=True, populate_existing=True)
    if record.state == CopyState.DELETING:
        return record
    _deletable(record, CopyKind.VOLUME_SNAPSHOT)
    if _restoring_from(session, "snapshot", record.id):
        raise CopyConflict(CopyProblem.COPY_IN_USE, kind=CopyKind.VOLUME_SNAPSHOT.value, copy=record.id)
    previous, record.state = record.state, CopyState.DELETING
    enqueue(
        session,
        DELETE_WORK,
        f"delete-snapshot:{record.id}",
        {"snapshot_record_id": record.id, "previous": previous.value},
    )
    audit.record(
        session,
        actor=actor.username,
        action="volume.snapshot.delete",
        target_type="managed_volume",
        target_id=record.volume_row_id,
        detail={"snapshot_record": record.id, "tag": record.tag, "was": previous.value},
    )
    return record


def delete_backup(session: Session, actor: Actor, backup_record_id: int) -> VolumeBackupRecord:
    """Delete a backup made by hand (or one whose schedule is gone, or a failed one): a ready
    scheduled backup is its schedule's to prune beyond ``keep``.  Its backup goes back to the
    quota once the cloud has deleted it."""
    record = get_backup(session, actor, backup_record_id)
    _must_act(actor)
    record = session.get_one(VolumeBackupRecord, record.id, with_for_update=True, populate_existing=True)
    if record.state == CopyState.DELETING:
        return record
    _deletable(record, CopyKind.BACKUP)
    if record.schedule_id is not None and record.state == CopyState.READY:
        raise CopyConflict(CopyProblem.SCHEDULED_BACKUP, copy=record.id)
    if _restoring_from(session, "backup", record.id):
        raise CopyConflict(CopyProblem.COPY_IN_USE, kind=CopyKind.BACKUP.value, copy=record.id)
    previous, record.state = record.state, CopyState.DELETING
    enqueue(
        session,
        DELETE_WORK,
        f"delete-backup:{record.id}",
        {"backup_record_id": record.id, "previous": previous.value},
    )
    audit.record(
        session,
        actor=actor.username,
        action="volume.backup.delete",
        target_type="managed_volume",
        target_id=record.volume_row_id,
        detail={"backup_record": record.id, "tag": record.tag, "was": previous.value},
    )
    return record


def may_delete_backup(actor: Actor, record: VolumeBackupRecord) -> bool:
    """Whether the page offers to delete ``record`` (:func:`delete_backup` refuses the rest)."""
    return (
        actor.role in VOLUME_ACTORS
        and record.state in {CopyState.READY, CopyState.FAILED}
        and not (record.schedule_id is not None and record.state == CopyState.READY)
    )


def may_delete_copy(actor: Actor, record: VolumeSnapshotRecord | ServerSnapshotRecord) -> bool:
    return actor.role in VOLUME_ACTORS and record.state in {CopyState.READY, CopyState.FAILED}


# --- server snapshots -------------------------------------------------------------------------


def _server(session: Session, actor: Actor, server_row_id: int, *, lock: bool = False) -> ManagedServer:
    server = session.get(ManagedServer, server_row_id, with_for_update=lock or None, populate_existing=lock)
    if server is None or not actor.can_see_department(server.department_id):
        raise ServerNotFound(f"no server {server_row_id}")
    return server


def _must_act_on_server(actor: Actor) -> None:
    if actor.role not in VOLUME_ACTORS:
        raise NotYourServer("only the department or an operator acts on a server's snapshots")


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
        raise CopyNotFound(f"no server snapshot {snapshot_record_id}")
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
    tag = _tag("ss")
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
    _deletable(record, CopyKind.SERVER_SNAPSHOT)
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


# --- schedules --------------------------------------------------------------------------------


def next_slot(frequency: Frequency, weekday: int | None, hour: int, after: datetime) -> datetime:
    """The first slot of the schedule strictly after ``after`` (UTC)."""
    local = after.astimezone(LOCAL_TIME)
    slot = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    step = timedelta(days=1)
    if frequency == Frequency.WEEKLY:
        assert weekday is not None
        slot += timedelta(days=(weekday - slot.weekday()) % 7)
        step = timedelta(days=7)
    if slot <= local:
        slot += step
    return slot.astimezone(UTC)


def period_of(frequency: Frequency, slot: datetime) -> str:
    """The period a slot belongs to: ``YYYYMMDD`` (daily) or ``YYYYWww`` (the ISO week)."""
    local = slot.astimezone(LOCAL_TIME)
    if frequency == Frequency.DAILY:
        return local.strftime("%Y%m%d")
    year, week, _day = local.isocalendar()
    return f"{year}W{week:02d}"


def scheduled_tag(schedule_id: int, period: str) -> str:
    return f"cm-bk-{schedule_id}-{period}"


def _checked(form: ScheduleForm) -> tuple[Frequency, int | None]:
    try:
        frequency = Frequency(form.frequency)
    except ValueError:
        raise ScheduleInvalid("frequency", "daily or weekly") from None
    if not 0 <= form.hour <= 23:
        raise ScheduleInvalid("hour", "an hour of the day, 0 to 23")
    if not 1 <= form.keep <= KEEP_MAX:
        raise ScheduleInvalid("keep", f"keep 1 to {KEEP_MAX} backups")
    if frequency == Frequency.WEEKLY:
        if form.weekday is None or not 0 <= form.weekday <= 6:
            raise ScheduleInvalid("weekday", "a weekly schedule needs a weekday, 0 (Monday) to 6 (Sunday)")
        return frequency, form.weekday
    return frequency, None


def get_schedule(session: Session, actor: Actor, volume_row_id: int) -> BackupSchedule | None:
    _volume(session, actor, volume_row_id)
    return session.scalar(select(BackupSchedule).where(BackupSchedule.volume_row_id == volume_row_id))


def set_schedule(
    session: Session, actor: Actor, volume_row_id: int, form: ScheduleForm, *, now: datetime | None = None
) -> BackupSchedule:
    """Create or replace the volume's schedule; its next slot is counted from ``now``."""
    volume = _volume(session, actor, volume_row_id, lock=True)
    _must_act(actor)
    frequency, weekday = _checked(form)
    if volume.state not in COPYABLE_STATES and volume.state not in {VolumeState.PENDING, VolumeState.CREATING}:
        raise VolumeNotReady(f"volume {volume.id} is {volume.state.value}: it will not be backed up")
    schedule = session.scalar(select(BackupSchedule).where(BackupSchedule.volume_row_id == volume.id))
    if schedule is None:
        schedule = BackupSchedule(volume_row_id=volume.id)
        session.add(schedule)
    schedule.frequency, schedule.weekday, schedule.hour = frequency, weekday, form.hour
    schedule.keep, schedule.enabled, schedule.updated_by = form.keep, form.enabled, actor.username
    schedule.next_run_at = next_slot(frequency, weekday, form.hour, now or utcnow())
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="volume.backup_schedule.set",
        target_type="managed_volume",
        target_id=volume.id,
        detail={
            "frequency": frequency.value,
            "weekday": weekday,
            "hour": form.hour,
            "keep": form.keep,
            "enabled": form.enabled,
        },
    )
    return schedule


def delete_schedule(session: Session, actor: Actor, volume_row_id: int) -> bool:
    """Stop backing the volume up on its own; the backups it made stay (as if made by hand).
    False when it had no schedule."""
    volume = _volume(session, actor, volume_row_id, lock=True)
    _must_act(actor)
    schedule = session.scalar(select(BackupSchedule).where(BackupSchedule.volume_row_id == volume.id))
    if schedule is None:
        return False
    session.execute(
        update(VolumeBackupRecord).where(VolumeBackupRecord.schedule_id == schedule.id).values(schedule_id=None)
    )
    session.delete(schedule)
    audit.record(
        session,
        actor=actor.username,
        action="volume.backup_schedule.delete",
        target_type="managed_volume",
        target_id=volume.id,
    )
    return True


# --- what the scheduler's job asks (cloudmgr.backups.jobs) ------------------------------------


def due_schedule_ids(session: Session, now: datetime) -> list[int]:
    return list(
        session.scalars(
            select(BackupSchedule.id)
            .where(BackupSchedule.enabled, BackupSchedule.next_run_at <= now)
            .order_by(BackupSchedule.next_run_at, BackupSchedule.id)
        )
    )


def queue_scheduled_backup(
    session: Session, actor: Actor, schedule_id: int, now: datetime
) -> VolumeBackupRecord | None:
    """The backup of the schedule's due period, once: None when the period has its backup
    already (a rerun) or the schedule is no longer due.  The schedule moves on to its next
    slot either way; a refusal (quota, a volume gone) raises and leaves it to
    :func:`skip_period`."""
    schedule = session.get(BackupSchedule, schedule_id, with_for_update=True)
    if schedule is None or not schedule.enabled or schedule.next_run_at > now:
        return None
    tag = scheduled_tag(schedule.id, period_of(schedule.frequency, schedule.next_run_at))
    schedule.next_run_at = next_slot(schedule.frequency, schedule.weekday, schedule.hour, now)
    if session.scalar(select(VolumeBackupRecord.id).where(VolumeBackupRecord.tag == tag)) is not None:
        return None
    volume = session.get_one(ManagedVolume, schedule.volume_row_id, with_for_update=True)
    _copyable(volume)
    return _queue_backup(session, actor, volume, tag, schedule.id)


def skip_period(session: Session, actor: Actor, schedule_id: int, now: datetime, why: str) -> None:
    """The due period's backup was refused: the schedule moves on, and the refusal is on record."""
    schedule = session.get(BackupSchedule, schedule_id, with_for_update=True)
    if schedule is None or schedule.next_run_at > now:
        return
    period = period_of(schedule.frequency, schedule.next_run_at)
    schedule.next_run_at = next_slot(schedule.frequency, schedule.weekday, schedule.hour, now)
    audit.record(
        session,
        actor=actor.username,
        action="volume.backup_schedule.skipped",
        target_type="managed_volume",
        target_id=schedule.volume_row_id,
        reason=why[:2000],
        detail={"schedule": schedule.id, "period": period},
    )


def prune_schedule(session: Session, actor: Actor, schedule_id: int) -> list[int]:
    """The schedule's ready backups beyond its ``keep`` newest go (oldest first), each deleted
    on the cloud by a work item; the ids of the records pruned."""
    schedule = session.get(BackupSchedule, schedule_id, with_for_update=True)
    if schedule is None:
        return []
    ready = session.scalars(
        select(VolumeBackupRecord)
        .where(VolumeBackupRecord.schedule_id == schedule.id, VolumeBackupRecord.state == CopyState.READY)
        .order_by(VolumeBackupRecord.created_at.desc(), VolumeBackupRecord.id.desc())
    ).all()
    pruned = []
    for record in reversed(ready[schedule.keep :]):
        record.state = CopyState.DELETING
        enqueue(session, DELETE_WORK, f"delete-backup:{record.id}", {"backup_record_id": record.id})
        pruned.append(record.id)
        audit.record(
            session,
            actor=actor.username,
            action="volume.backup.prune",
            target_type="managed_volume",
            target_id=record.volume_row_id,
            detail={"backup_record": record.id, "tag": record.tag, "keep": schedule.keep},
        )
    return pruned


def schedule_ids(session: Session) -> list[int]:
    return list(session.scalars(select(BackupSchedule.id).order_by(BackupSchedule.id)))
