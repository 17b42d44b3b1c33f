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

Server snapshots live in :mod:`cloudmgr.backups.server_snapshots`, schedules in
:mod:`cloudmgr.backups.schedules`, what they share in :mod:`cloudmgr.backups.common`; all are
reached through this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.backups.common import (
    BACKUP_WORK,
    COPYABLE_STATES,
    DELETE_WORK,
    KEEP_MAX,
    LOCAL_TIME,
    RESTORE_WORK,
    SERVER_RESTORE_WORK,
    SERVER_SNAPSHOT_WORK,
    SNAPSHOT_NAME_MAX,
    SNAPSHOT_WORK,
    VOLUME_ACTORS,
    WORK_KINDS,
    find_volume,
    must_act,
    must_be_copyable,
    must_be_deletable,
    new_tag,
    queue_backup,
)
from cloudmgr.backups.errors import (
    CopyConflict,
    CopyKind,
    CopyNotFound,
    CopyProblem,
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
from cloudmgr.backups.schedules import (
    ScheduleForm,
    delete_schedule,
    due_schedule_ids,
    get_schedule,
    next_slot,
    period_of,
    prune_schedule,
    queue_scheduled_backup,
    schedule_ids,
    scheduled_tag,
    set_schedule,
    skip_period,
)
from cloudmgr.backups.server_snapshots import (
    delete_server_snapshot,
    get_server_snapshot,
    list_server_snapshots,
    may_restore_server,
    may_snapshot_server,
    restore_server_snapshot,
    take_server_snapshot,
)
from cloudmgr.messages import N_, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.parts import ManagedVolume, VolumeState
from cloudmgr.workqueue.models import WorkItem, WorkState
from cloudmgr.workqueue.services import enqueue

__all__ = [
    "BACKUP_WORK",
    "DELETE_WORK",
    "KEEP_MAX",
    "LOCAL_TIME",
    "RESTORE_WORK",
    "SERVER_RESTORE_WORK",
    "SERVER_SNAPSHOT_WORK",
    "SNAPSHOT_NAME_MAX",
    "SNAPSHOT_WORK",
    "WORK_KINDS",
    "BackupSchedule",
    "CopyState",
    "Frequency",
    "RestoreState",
    "ScheduleForm",
    "ServerSnapshotRecord",
    "VolumeBackupRecord",
    "VolumeSnapshotRecord",
    "VolumeView",
    "delete_schedule",
    "delete_server_snapshot",
    "due_schedule_ids",
    "get_schedule",
    "get_server_snapshot",
    "list_server_snapshots",
    "may_restore_server",
    "may_snapshot_server",
    "next_slot",
    "period_of",
    "prune_schedule",
    "queue_scheduled_backup",
    "restore_server_snapshot",
    "schedule_ids",
    "scheduled_tag",
    "set_schedule",
    "skip_period",
    "take_server_snapshot",
]


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


# --- the wall ---------------------------------------------------------------------------------


def may_act(actor: Actor, volume: VolumeView) -> bool:
    """Whether ``actor`` may take snapshots and backups of ``volume`` and restore them now."""
    return actor.role in VOLUME_ACTORS and volume.state in COPYABLE_STATES and volume.has_cloud_volume


def may_restore(actor: Actor) -> bool:
    return actor.role in VOLUME_ACTORS


def get_volume(session: Session, actor: Actor, volume_row_id: int) -> VolumeView:
    volume = find_volume(session, actor, volume_row_id)
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


# --- snapshots --------------------------------------------------------------------------------


def list_snapshots(session: Session, actor: Actor, volume_row_id: int) -> Sequence[VolumeSnapshotRecord]:
    find_volume(session, actor, volume_row_id)
    return session.scalars(
        select(VolumeSnapshotRecord)
        .where(VolumeSnapshotRecord.volume_row_id == volume_row_id, VolumeSnapshotRecord.state != CopyState.DELETED)
        .order_by(VolumeSnapshotRecord.created_at.desc(), VolumeSnapshotRecord.id.desc())
    ).all()


def take_snapshot(session: Session, actor: Actor, volume_row_id: int) -> VolumeSnapshotRecord:
    """Snapshot the volume: one snapshot and its gigabytes (Cinder counts a snapshot's size
    against the same gigabytes as volumes) are reserved until the cloud made it."""
    volume = find_volume(session, actor, volume_row_id, lock=True)
    must_act(actor)
    must_be_copyable(volume)
    tag = new_tag("sn")
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
        raise CopyNotFound(message(N_("no snapshot %(id)s"), id=snapshot_record_id))
    return record


def restore_snapshot(session: Session, actor: Actor, snapshot_record_id: int) -> ManagedVolume:
    """A new volume of the department made from the snapshot (the source volume is untouched)."""
    record = get_snapshot(session, actor, snapshot_record_id)
    must_act(actor)
    if record.state != CopyState.READY or not record.snapshot_id:
        raise VolumeNotReady(
            message(N_("snapshot %(id)s is not ready: only a ready snapshot is restored"), id=record.id)
        )
    source = session.get_one(ManagedVolume, record.volume_row_id)
    return _new_volume(session, actor, source, record.size_gb, "snapshot", record.id)


# --- backups ----------------------------------------------------------------------------------


def list_backups(session: Session, actor: Actor, volume_row_id: int) -> Sequence[VolumeBackupRecord]:
    find_volume(session, actor, volume_row_id)
    return session.scalars(
        select(VolumeBackupRecord)
        .where(VolumeBackupRecord.volume_row_id == volume_row_id, VolumeBackupRecord.state != CopyState.DELETED)
        .order_by(VolumeBackupRecord.created_at.desc(), VolumeBackupRecord.id.desc())
    ).all()


def back_up_now(session: Session, actor: Actor, volume_row_id: int) -> VolumeBackupRecord:
    """Back the volume up by hand (kept until removed: pruning only counts a schedule's own)."""
    volume = find_volume(session, actor, volume_row_id, lock=True)
    must_act(actor)
    must_be_copyable(volume)
    return queue_backup(session, actor, volume, new_tag("bk"), None)


def get_backup(session: Session, actor: Actor, backup_record_id: int) -> VolumeBackupRecord:
    record = session.get(VolumeBackupRecord, backup_record_id)
    if record is None or record.state == CopyState.DELETED or not actor.can_see_department(record.department_id):
        raise CopyNotFound(message(N_("no backup %(id)s"), id=backup_record_id))
    return record


def restore_backup(session: Session, actor: Actor, backup_record_id: int) -> ManagedVolume:
    """A new volume of the department holding the backup's data.  Never into the source: it is
    usually attached (Cinder restores only into an available volume) and its data stays."""
    record = get_backup(session, actor, backup_record_id)
    must_act(actor)
    if record.state != CopyState.READY or not record.backup_id:
        raise VolumeNotReady(message(N_("backup %(id)s is not ready: only a ready backup is restored"), id=record.id))
    source = session.get_one(ManagedVolume, record.volume_row_id)
    return _new_volume(session, actor, source, record.size_gb, "backup", record.id)


def _new_volume(
    session: Session, actor: Actor, source: ManagedVolume, size_gb: int, kind: str, copy_id: int
) -> ManagedVolume:
    tag = new_tag("rs")
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


def delete_volume_snapshot(session: Session, actor: Actor, snapshot_record_id: int) -> VolumeSnapshotRecord:
    """Delete a ready (or failed) snapshot of a volume; once the cloud has deleted it, its
    snapshot and its GB go back to the department's quota (a failed one gave its hold back
    already).  Asking again while it is being deleted changes nothing."""
    record = get_snapshot(session, actor, snapshot_record_id)
    must_act(actor)
    record = session.get_one(VolumeSnapshotRecord, record.id, with_for_update=True, populate_existing=True)
    if record.state == CopyState.DELETING:
        return record
    must_be_deletable(record, CopyKind.VOLUME_SNAPSHOT)
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
    must_act(actor)
    record = session.get_one(VolumeBackupRecord, record.id, with_for_update=True, populate_existing=True)
    if record.state == CopyState.DELETING:
        return record
    must_be_deletable(record, CopyKind.BACKUP)
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
