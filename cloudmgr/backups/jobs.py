"""The work that makes snapshots, backups and restored volumes on the cloud, and the scheduler's
job that queues the due scheduled backups and prunes the old ones.

Handlers are entry points: they read the runtime, open short units of work and call the cloud
only between them.  Every cloud call is idempotent by the record's tag (a retried or
taken-over item finds what an earlier run made); a cloud that cannot be reached, a busy
volume or a copy still being made is retried later; any other cloud refusal fails the record
and gives its quota back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from cloudmgr.backups import services
from cloudmgr.backups.models import CopyState, VolumeBackupRecord, VolumeSnapshotRecord
from cloudmgr.cloud import CloudError, CloudUnavailable
from cloudmgr.cloud.errors import CloudConflict, CloudTimeout
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.db import Database, utcnow
from cloudmgr.errors import DomainError
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import get_runtime
from cloudmgr.servicerequests.parts import ManagedVolume, VolumeState
from cloudmgr.workqueue.services import ClaimedItem, GiveUp, RetryLater

log = logging.getLogger(__name__)

ACTOR = Actor.system("backups")
#: Retried, not failed: the cloud is away, the volume is busy (backing up, restoring), a copy is slow.
RETRYABLE = (CloudUnavailable, CloudConflict, CloudTimeout)


def _provider(cloud: Cloud) -> CloudProvider:
    return get_runtime().providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)


def _retry(exc: CloudError) -> RetryLater:
    return RetryLater(f"{type(exc).__name__}: {exc}", delay=30.0 if isinstance(exc, CloudConflict) else None)


# --- snapshots --------------------------------------------------------------------------------


def _fail_snapshot(db: Database, record_id: int, error: str) -> None:
    with db.unit_of_work() as uow:
        record = uow.session.get(VolumeSnapshotRecord, record_id, with_for_update=True)
        if record is None or record.state != CopyState.PENDING:
            return
        record.state, record.fault = CopyState.FAILED, error[:2000]
        if record.reservation_id is not None:
            ledger.release(uow.session, record.reservation_id, reason=f"snapshot failed: {error[:200]}")


def handle_snapshot(db: Database, item: ClaimedItem) -> None:
    record_id = int(item.payload["snapshot_record_id"])
    with db.unit_of_work() as uow:
        record = uow.session.get(VolumeSnapshotRecord, record_id)
        if record is None or record.state != CopyState.PENDING:
            return
        volume = uow.session.get_one(ManagedVolume, record.volume_row_id)
        provider = _provider(uow.session.get_one(Cloud, record.cloud_id))
        cloud_volume_id, tag = volume.volume_id, record.tag
    if not cloud_volume_id:
        _fail_snapshot(db, record_id, "the volume has no cloud volume")
        return
    try:
        made = provider.create_volume_snapshot(cloud_volume_id, tag, tag)
        _record_cloud_id(db, VolumeSnapshotRecord, record_id, made.id)
        made = provider.wait_volume_snapshot(made.id)
    except RETRYABLE as exc:
        raise _retry(exc) from exc
    except CloudError as exc:
        _fail_snapshot(db, record_id, str(exc))
        return
    with db.unit_of_work() as uow:
        record = uow.session.get_one(VolumeSnapshotRecord, record_id, with_for_update=True)
        if record.state != CopyState.PENDING:
            return
        record.state, record.snapshot_id, record.size_gb = CopyState.READY, made.id, made.size_gb
        if record.reservation_id is not None:
            ledger.consume(uow.session, record.reservation_id, reason="snapshot ready")


def _give_up_snapshot(db: Database, item: ClaimedItem, error: str) -> None:
    _fail_snapshot(db, int(item.payload["snapshot_record_id"]), error)


handle_snapshot.on_give_up = _give_up_snapshot  # type: ignore[attr-defined]


def _record_cloud_id(
    db: Database, model: type[VolumeSnapshotRecord | VolumeBackupRecord], record_id: int, cloud_id: str
) -> None:
    """The cloud's id as soon as the cloud accepted: a record stuck afterwards can still be found."""
    with db.unit_of_work() as uow:
        if model is VolumeSnapshotRecord:
            uow.session.get_one(VolumeSnapshotRecord, record_id, with_for_update=True).snapshot_id = cloud_id
        else:
            uow.session.get_one(VolumeBackupRecord, record_id, with_for_update=True).backup_id = cloud_id


# --- backups ----------------------------------------------------------------------------------


def _fail_backup(db: Database, record_id: int, error: str) -> None:
    with db.unit_of_work() as uow:
        record = uow.session.get(VolumeBackupRecord, record_id, with_for_update=True)
        if record is None or record.state != CopyState.PENDING:
            return
        record.state, record.fault = CopyState.FAILED, error[:2000]
        if record.reservation_id is not None:
            ledger.release(uow.session, record.reservation_id, reason=f"backup failed: {error[:200]}")


def handle_backup(db: Database, item: ClaimedItem) -> None:
    record_id = int(item.payload["backup_record_id"])
    with db.unit_of_work() as uow:
        record = uow.session.get(VolumeBackupRecord, record_id)
        if record is None or record.state != CopyState.PENDING:
            return
        volume = uow.session.get_one(ManagedVolume, record.volume_row_id)
        provider = _provider(uow.session.get_one(Cloud, record.cloud_id))
        cloud_volume_id, tag = volume.volume_id, record.tag
    if not cloud_volume_id:
        _fail_backup(db, record_id, "the volume has no cloud volume")
        return
    try:
        made = provider.create_volume_backup(cloud_volume_id, tag, tag)
        _record_cloud_id(db, VolumeBackupRecord, record_id, made.id)
        made = provider.wait_volume_backup(made.id)
    except RETRYABLE as exc:
        raise _retry(exc) from exc
    except CloudError as exc:
        _fail_backup(db, record_id, str(exc))
        return
    with db.unit_of_work() as uow:
        record = uow.session.get_one(VolumeBackupRecord, record_id, with_for_update=True)
        if record.state != CopyState.PENDING:
            return
        record.state, record.backup_id, record.size_gb = CopyState.READY, made.id, made.size_gb
        if record.reservation_id is not None:
            ledger.consume(uow.session, record.reservation_id, reason="backup ready")


def _give_up_backup(db: Database, item: ClaimedItem, error: str) -> None:
    _fail_backup(db, int(item.payload["backup_record_id"]), error)


handle_backup.on_give_up = _give_up_backup  # type: ignore[attr-defined]


# --- restores: a new volume from a snapshot or a backup ---------------------------------------


def _fail_restore(db: Database, item: ClaimedItem, error: str) -> None:
    with db.unit_of_work() as uow:
        volume = uow.session.get(ManagedVolume, int(item.payload["volume_row_id"]), with_for_update=True)
        if volume is None or volume.state not in {VolumeState.PENDING, VolumeState.CREATING}:
            return
        volume.state, volume.fault = VolumeState.FAILED, error[:2000]
        ledger.release(uow.session, int(item.payload["reservation_id"]), reason=f"restore failed: {error[:200]}")


def handle_restore(db: Database, item: ClaimedItem) -> None:
    """Snapshot: Cinder makes the volume from it.  Backup: the volume is made empty by its tag
    (the one idempotent way) and the backup restored into it; a retry that finds it restoring
    waits, one that finds it available restores again (the same data, written twice).  Once
    the cloud's id is recorded a retry reads that volume by id, not by its tag: Cinder
    restores the backed-up volume's metadata (its tag among them) into the target."""
    volume_row_id, source, copy_id = (
        int(item.payload["volume_row_id"]),
        str(item.payload["source"]),
        int(item.payload["copy_id"]),
    )
    with db.unit_of_work() as uow:
        session = uow.session
        volume = session.get(ManagedVolume, volume_row_id)
        if volume is None or volume.state not in {VolumeState.PENDING, VolumeState.CREATING}:
            return
        cloud = session.get_one(Cloud, volume.cloud_id)
        provider = _provider(cloud)
        project_id = session.scalar(
            select(DepartmentCloud.project_id).where(
                DepartmentCloud.department_id == volume.department_id, DepartmentCloud.cloud_id == volume.cloud_id
            )
        )
        copy_cloud_id: str | None = None
        if source == "snapshot":
            snapshot = session.get(VolumeSnapshotRecord, copy_id)
            copy_cloud_id = snapshot.snapshot_id if snapshot is not None else None
        else:
            backup = session.get(VolumeBackupRecord, copy_id)
            copy_cloud_id = backup.backup_id if backup is not None else None
        name, size_gb, volume_type = f"cm-restored-{volume.id}", volume.size_gb, volume.volume_type
        tag, cloud_key, known_id = volume.idempotency_key, cloud.key, volume.volume_id
    if not project_id:
        _fail_restore(db, item, f"the department has no project on cloud {cloud_key}")
        return
    if copy_cloud_id is None:
        _fail_restore(db, item, f"the {source} to restore is gone")
        return
    try:
        if source == "snapshot":
            made = provider.create_volume(project_id, name, size_gb, volume_type, tag, snapshot_id=copy_cloud_id)
            _record_restore(db, volume_row_id, made.id, VolumeState.CREATING)
            made = provider.wait_volume(made.id)
        else:
            if known_id:
                made = provider.get_volume(known_id)
            else:
                made = provider.create_volume(project_id, name, size_gb, volume_type, tag)
                _record_restore(db, volume_row_id, made.id, VolumeState.CREATING)
            made = provider.wait_volume(made.id, {"available", "restoring-backup"})
            if made.status == "available":
                provider.restore_volume_backup(copy_cloud_id, volume_id=made.id)
            provider.wait_volume(made.id, timeout=1800)
    except RETRYABLE as exc:
        raise _retry(exc) from exc
    except CloudError as exc:
        _fail_restore(db, item, str(exc))
        return
    with db.unit_of_work() as uow:
        volume = uow.session.get_one(ManagedVolume, volume_row_id, with_for_update=True)
        if volume.state not in {VolumeState.PENDING, VolumeState.CREATING}:
            return
        volume.state, volume.volume_id = VolumeState.AVAILABLE, made.id
        volume.quota_counted = True
        ledger.consume(uow.session, int(item.payload["reservation_id"]), reason="volume restored")


def _record_restore(db: Database, volume_row_id: int, cloud_volume_id: str, state: VolumeState) -> None:
    with db.unit_of_work() as uow:
        volume = uow.session.get_one(ManagedVolume, volume_row_id, with_for_update=True)
        volume.volume_id, volume.state = cloud_volume_id, state


handle_restore.on_give_up = _fail_restore  # type: ignore[attr-defined]


# --- deleting a copy (pruning) ----------------------------------------------------------------


def handle_delete(db: Database, item: ClaimedItem) -> None:
    record_id = int(item.payload["backup_record_id"])
    with db.unit_of_work() as uow:
        record = uow.session.get(VolumeBackupRecord, record_id)
        if record is None:
            raise GiveUp(f"no backup record {record_id}")
        if record.state != CopyState.DELETING:
            return
        provider = _provider(uow.session.get_one(Cloud, record.cloud_id))
        backup_id = record.backup_id
    try:
        if backup_id:
            provider.delete_volume_backup(backup_id, wait=True)
    except RETRYABLE as exc:
        raise _retry(exc) from exc
    except CloudError as exc:
        raise GiveUp(f"deleting backup {backup_id} failed: {exc}") from exc
    with db.unit_of_work() as uow:
        record = uow.session.get_one(VolumeBackupRecord, record_id, with_for_update=True)
        if record.state != CopyState.DELETING:
            return
        record.state = CopyState.DELETED
        ledger.give_back_usage(
            uow.session, department_id=record.department_id, cloud_id=record.cloud_id, amounts={Resource.BACKUPS: 1}
        )


# --- the scheduler's job ----------------------------------------------------------------------


@dataclass
class ScheduleRun:
    queued: list[int] = field(default_factory=list)  # backup records
    skipped: list[str] = field(default_factory=list)  # "schedule N: why"
    pruned: list[int] = field(default_factory=list)  # backup records


def run_backup_schedules(db: Database, *, now: datetime | None = None) -> ScheduleRun:
    """Queue one backup for each schedule whose slot has come (never two for one period, however
    often or late this runs), then prune each schedule's ready backups to its ``keep``.  Each
    schedule has its own unit of work: one department's full quota holds up no other."""
    now = now or utcnow()
    run = ScheduleRun()
    with db.unit_of_work() as uow:
        due = services.due_schedule_ids(uow.session, now)
    for schedule_id in due:
        try:
            with db.unit_of_work() as uow:
                queued = services.queue_scheduled_backup(uow.session, ACTOR, schedule_id, now)
                if queued is not None:
                    run.queued.append(queued.id)
        except DomainError as exc:
            log.warning("backup schedule %s: %s", schedule_id, exc)
            run.skipped.append(f"schedule {schedule_id}: {exc}")
            with db.unit_of_work() as uow:
                services.skip_period(uow.session, ACTOR, schedule_id, now, str(exc))
    with db.unit_of_work() as uow:
        every = services.schedule_ids(uow.session)
    for schedule_id in every:
        with db.unit_of_work() as uow:
            run.pruned.extend(services.prune_schedule(uow.session, ACTOR, schedule_id))
    return run
