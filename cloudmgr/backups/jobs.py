"""The work that makes snapshots, backups and restored volumes on the cloud, server snapshots and
the rebuilds that restore them, deletes any of these copies, and the scheduler's job that queues
the due scheduled backups and prunes the old ones.

Handlers are entry points: they read the runtime, open short units of work and call the cloud
only between them.  Every cloud call is idempotent by the record's tag (a retried or
taken-over item finds what an earlier run made); a cloud that cannot be reached, a busy
volume or a copy still being made is retried later; any other cloud refusal fails the record
and gives its quota back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.backups import services
from cloudmgr.backups.models import (
    CopyState,
    RestoreState,
    ServerSnapshotRecord,
    VolumeBackupRecord,
    VolumeSnapshotRecord,
)
from cloudmgr.cloud import CloudError, CloudUnavailable
from cloudmgr.cloud.errors import CloudConflict, CloudTimeout
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.db import Database, utcnow
from cloudmgr.errors import DomainError
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.quotas import ledger
from cloudmgr.quotas.models import QuotaReservation, ReservationState
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import get_runtime
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.parts import ManagedVolume, VolumeState
from cloudmgr.stored_messages import MAX_TEXT, stored_text
from cloudmgr.workqueue.services import ClaimedItem, GiveUp, RetryLater

log = logging.getLogger(__name__)

ACTOR = Actor.system("backups")
#: Retried, not failed: the cloud is away, the volume is busy (backing up, restoring), a copy is slow.
RETRYABLE = (CloudUnavailable, CloudConflict, CloudTimeout)


def _provider(cloud: Cloud) -> CloudProvider:
    return get_runtime().providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)


def _retry(exc: CloudError) -> RetryLater:
    return RetryLater(f"{type(exc).__name__}: {exc}", delay=30.0 if isinstance(exc, CloudConflict) else None)


# --- snapshots and backups of a volume -------------------------------------------------------


_CopyRecord = VolumeSnapshotRecord | VolumeBackupRecord


@dataclass(frozen=True)
class _VolumeCopyKind:
    """What differs between a volume's snapshot and its backup: the record, the words, the calls."""

    model: type[VolumeSnapshotRecord] | type[VolumeBackupRecord]
    payload_key: str
    word: str  # "snapshot" / "backup": in faults and ledger reasons
    create: Callable[[CloudProvider, str, str], Any]  # (provider, cloud volume id, tag) -> the copy
    wait: Callable[[CloudProvider, str], Any]  # (provider, copy's cloud id) -> the ready copy

    def get(self, session: Session, record_id: int, *, lock: bool = False) -> _CopyRecord | None:
        return cast(_CopyRecord | None, session.get(self.model, record_id, with_for_update=lock))

    def set_cloud_id(self, record: _CopyRecord, cloud_id: str) -> None:
        if isinstance(record, VolumeSnapshotRecord):
            record.snapshot_id = cloud_id
        else:
            record.backup_id = cloud_id


_SNAPSHOT = _VolumeCopyKind(
    VolumeSnapshotRecord,
    "snapshot_record_id",
    "snapshot",
    lambda provider, volume_id, tag: provider.create_volume_snapshot(volume_id, tag, tag),
    lambda provider, copy_id: provider.wait_volume_snapshot(copy_id),
)
_BACKUP = _VolumeCopyKind(
    VolumeBackupRecord,
    "backup_record_id",
    "backup",
    lambda provider, volume_id, tag: provider.create_volume_backup(volume_id, tag, tag),
    lambda provider, copy_id: provider.wait_volume_backup(copy_id),
)


def _fail_copy(db: Database, kind: _VolumeCopyKind, record_id: int, error: str | Message) -> None:
    with db.unit_of_work() as uow:
        record = kind.get(uow.session, record_id, lock=True)
        if record is None or record.state != CopyState.PENDING:
            return
        record.state, record.fault = CopyState.FAILED, stored_text(record, error)
        if record.reservation_id is not None:
            ledger.release(uow.session, record.reservation_id, reason=f"{kind.word} failed: {str(error)[:200]}")


def _make_copy(db: Database, kind: _VolumeCopyKind, item: ClaimedItem) -> None:
    record_id = int(item.payload[kind.payload_key])
    with db.unit_of_work() as uow:
        record = kind.get(uow.session, record_id)
        if record is None or record.state != CopyState.PENDING:
            return
        volume = uow.session.get_one(ManagedVolume, record.volume_row_id)
        provider = _provider(uow.session.get_one(Cloud, record.cloud_id))
        cloud_volume_id, tag = volume.volume_id, record.tag
    if not cloud_volume_id:
        _fail_copy(db, kind, record_id, Message(N_("the volume has no cloud volume")))
        return
    try:
        made = kind.create(provider, cloud_volume_id, tag)
        # The cloud's id as soon as the cloud accepted: a record stuck afterwards can still be found.
        with db.unit_of_work() as uow:
            locked = kind.get(uow.session, record_id, lock=True)
            if locked is not None:
                kind.set_cloud_id(locked, made.id)
        made = kind.wait(provider, made.id)
    except RETRYABLE as exc:
        raise _retry(exc) from exc
    except CloudError as exc:
        _fail_copy(db, kind, record_id, str(exc))
        return
    with db.unit_of_work() as uow:
        record = kind.get(uow.session, record_id, lock=True)
        if record is None or record.state != CopyState.PENDING:
            return
        record.state, record.size_gb = CopyState.READY, made.size_gb
        kind.set_cloud_id(record, made.id)
        if record.reservation_id is not None:
            ledger.consume(uow.session, record.reservation_id, reason=f"{kind.word} ready")


def handle_snapshot(db: Database, item: ClaimedItem) -> None:
    _make_copy(db, _SNAPSHOT, item)


def _give_up_snapshot(db: Database, item: ClaimedItem, error: str) -> None:
    _fail_copy(db, _SNAPSHOT, int(item.payload[_SNAPSHOT.payload_key]), error)


handle_snapshot.on_give_up = _give_up_snapshot  # type: ignore[attr-defined]


def handle_backup(db: Database, item: ClaimedItem) -> None:
    _make_copy(db, _BACKUP, item)


def _give_up_backup(db: Database, item: ClaimedItem, error: str) -> None:
    _fail_copy(db, _BACKUP, int(item.payload[_BACKUP.payload_key]), error)


handle_backup.on_give_up = _give_up_backup  # type: ignore[attr-defined]


# --- restores: a new volume from a snapshot or a backup ---------------------------------------


def _fail_restore(db: Database, item: ClaimedItem, error: str | Message) -> None:
    with db.unit_of_work() as uow:
        volume = uow.session.get(ManagedVolume, int(item.payload["volume_row_id"]), with_for_update=True)
        if volume is None or volume.state not in {VolumeState.PENDING, VolumeState.CREATING}:
            return
        volume.state, volume.fault = VolumeState.FAILED, stored_text(volume, error)
        ledger.release(uow.session, int(item.payload["reservation_id"]), reason=f"restore failed: {str(error)[:200]}")


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
        _fail_restore(db, item, message(N_("the department has no project on cloud %(cloud)s"), cloud=cloud_key))
        return
    if copy_cloud_id is None:
        gone = N_("the snapshot to restore is gone") if source == "snapshot" else N_("the backup to restore is gone")
        _fail_restore(db, item, Message(gone))
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


# --- deleting a copy: pruned, or removed by the department ------------------------------------

Copy = VolumeBackupRecord | VolumeSnapshotRecord | ServerSnapshotRecord


@dataclass(frozen=True)
class _Deleted:
    """What a delete item is about: which record, and what its quota was (when it was not read)."""

    model: type[Copy]
    record_id: int
    kind: str
    fallback: dict[Resource, int]

    def load(self, session: Session, *, lock: bool = False) -> Copy | None:
        found = session.get(self.model, self.record_id, with_for_update=lock or None, populate_existing=lock)
        return cast("Copy | None", found)


def _deleted(db: Database, payload: Mapping[str, Any]) -> _Deleted:
    if "backup_record_id" in payload:
        return _Deleted(VolumeBackupRecord, int(payload["backup_record_id"]), "backup", {Resource.BACKUPS: 1})
    if "snapshot_record_id" in payload:
        record_id = int(payload["snapshot_record_id"])
        with db.unit_of_work() as uow:
            record = uow.session.get(VolumeSnapshotRecord, record_id)
            size = record.size_gb if record is not None else 0
        return _Deleted(
            VolumeSnapshotRecord, record_id, "volume snapshot", {Resource.SNAPSHOTS: 1, Resource.GIGABYTES: size}
        )
    if "server_snapshot_record_id" in payload:
        return _Deleted(
            ServerSnapshotRecord, int(payload["server_snapshot_record_id"]), "server snapshot", {Resource.SNAPSHOTS: 1}
        )
    raise GiveUp(f"a delete item names no copy: {dict(payload)}")


def _counted(session: Session, reservation_id: int | None, fallback: dict[Resource, int]) -> dict[Resource, int]:
    """What a ready copy counts in the ledger: what its reservation turned into usage (a copy
    recorded before reservations were kept: the copy's own amounts)."""
    reservation = session.get(QuotaReservation, reservation_id) if reservation_id is not None else None
    if reservation is None:
        return fallback
    if reservation.state != ReservationState.CONSUMED.value:
        return {}
    return {Resource(name): int(n) for name, n in reservation.amounts.items()}


def _delete_on_cloud(provider: CloudProvider, record: Copy, project_id: str | None) -> None:
    if isinstance(record, VolumeBackupRecord):
        if record.backup_id:
            provider.delete_volume_backup(record.backup_id, wait=True)
    elif isinstance(record, VolumeSnapshotRecord):
        if record.snapshot_id:
            provider.delete_volume_snapshot(record.snapshot_id, wait=True)
    elif record.image_id:
        provider.delete_image(record.image_id)
    elif project_id:
        # A snapshot that failed before its image was recorded: whatever the cloud made by its tag.
        leftover = provider.find_image_by_tag(project_id, record.tag)
        if leftover is not None:
            provider.delete_image(leftover.id)


def handle_delete(db: Database, item: ClaimedItem) -> None:
    """Delete the copy on the cloud, then record it deleted and give back, once, what it counted
    in the quota: nothing for one that had failed (its hold went back then), and a second run
    finds the record deleted and gives nothing again."""
    what = _deleted(db, item.payload)
    with db.unit_of_work() as uow:
        record = what.load(uow.session)
        if record is None:
            raise GiveUp(f"no {what.kind} record {what.record_id}")
        if record.state != CopyState.DELETING:
            return
        provider = _provider(uow.session.get_one(Cloud, record.cloud_id))
        project_id = _project_id(uow.session, record.department_id, record.cloud_id)
        uow.session.expunge(record)
    try:
        _delete_on_cloud(provider, record, project_id)
    except RETRYABLE as exc:
        raise _retry(exc) from exc
    except CloudError as exc:
        raise GiveUp(f"deleting {what.kind} {what.record_id} failed: {exc}") from exc
    with db.unit_of_work() as uow:
        session = uow.session
        record = what.load(session, lock=True)
        if record is None or record.state != CopyState.DELETING:
            return
        record.state, record.fault = CopyState.DELETED, None
        if str(item.payload.get("previous", CopyState.READY.value)) == CopyState.READY.value:
            counted = _counted(session, record.reservation_id, what.fallback)
            ledger.give_back_usage(
                session, department_id=record.department_id, cloud_id=record.cloud_id, amounts=counted
            )
        audit.record(
            session,
            actor=ACTOR.username,
            action=f"{what.kind.replace(' ', '_')}.deleted",
            target_type=what.model.__tablename__,
            target_id=record.id,
            detail={"tag": record.tag},
        )


def _give_up_delete(db: Database, item: ClaimedItem, error: str) -> None:
    """The cloud would not delete it: the copy is back as it was, with the reason."""
    what = _deleted(db, item.payload)
    with db.unit_of_work() as uow:
        record = what.load(uow.session, lock=True)
        if record is None or record.state != CopyState.DELETING:
            return
        record.state = CopyState(str(item.payload.get("previous", CopyState.READY.value)))
        record.fault = stored_text(record, message(N_("could not be deleted: %(error)s"), error=error))


handle_delete.on_give_up = _give_up_delete  # type: ignore[attr-defined]


def _project_id(session: Session, department_id: int, cloud_id: int) -> str | None:
    return session.scalar(
        select(DepartmentCloud.project_id).where(
            DepartmentCloud.department_id == department_id, DepartmentCloud.cloud_id == cloud_id
        )
    )


# --- server snapshots: made, and a server rebuilt from one --------------------------------------

#: A root disk of tens of GB takes minutes to upload; a timeout is retried (found by its tag).
SERVER_SNAPSHOT_TIMEOUT = 1800.0
REBUILD_TIMEOUT = 900.0


def _fail_server_snapshot(db: Database, record_id: int, error: str | Message) -> None:
    with db.unit_of_work() as uow:
        record = uow.session.get(ServerSnapshotRecord, record_id, with_for_update=True)
        if record is None or record.state != CopyState.PENDING:
            return
        record.state, record.fault = CopyState.FAILED, stored_text(record, error)
        if record.reservation_id is not None:
            ledger.release(uow.session, record.reservation_id, reason=f"server snapshot failed: {str(error)[:200]}")


def handle_server_snapshot(db: Database, item: ClaimedItem) -> None:
    """Nova's createImage by the record's tag (a retry finds the image an earlier run asked
    for), waited for until Glance has it; then the record is ready and its quota hold used."""
    record_id = int(item.payload["server_snapshot_record_id"])
    with db.unit_of_work() as uow:
        record = uow.session.get(ServerSnapshotRecord, record_id)
        if record is None or record.state != CopyState.PENDING:
            return
        server = uow.session.get_one(ManagedServer, record.server_row_id)
        provider = _provider(uow.session.get_one(Cloud, record.cloud_id))
        cloud_server_id, name, tag = server.server_id, record.name, record.tag
    if not cloud_server_id:
        _fail_server_snapshot(db, record_id, Message(N_("the server is not on the cloud")))
        return
    try:
        made = provider.create_snapshot(cloud_server_id, name, timeout=SERVER_SNAPSHOT_TIMEOUT, idempotency_tag=tag)
    except RETRYABLE as exc:
        raise _retry(exc) from exc
    except CloudError as exc:
        _fail_server_snapshot(db, record_id, str(exc))
        return
    with db.unit_of_work() as uow:
        session = uow.session
        record = session.get_one(ServerSnapshotRecord, record_id, with_for_update=True)
        if record.state != CopyState.PENDING:
            return
        record.state, record.image_id, record.size_bytes = CopyState.READY, made.id, made.size_bytes
        if record.reservation_id is not None:
            ledger.consume(session, record.reservation_id, reason="server snapshot ready")
        audit.record(
            session,
            actor=ACTOR.username,
            action="server.snapshot.ready",
            target_type="managed_server",
            target_id=record.server_row_id,
            detail={"server_snapshot_record": record.id, "image_id": made.id},
        )


def _give_up_server_snapshot(db: Database, item: ClaimedItem, error: str) -> None:
    _fail_server_snapshot(db, int(item.payload["server_snapshot_record_id"]), error)


handle_server_snapshot.on_give_up = _give_up_server_snapshot  # type: ignore[attr-defined]


def _fail_server_restore(db: Database, record_id: int, error: str | Message) -> None:
    with db.unit_of_work() as uow:
        record = uow.session.get(ServerSnapshotRecord, record_id, with_for_update=True)
        if record is None or record.restore_state not in {RestoreState.QUEUED, RestoreState.REBUILDING}:
            return
        record.restore_state, record.restore_fault = RestoreState.FAILED, stored_text(record, error)
        audit.record(
            uow.session,
            actor=ACTOR.username,
            action="server.restore_failed",
            target_type="managed_server",
            target_id=record.server_row_id,
            reason=error if isinstance(error, Message) else error[:MAX_TEXT],
            detail={"server_snapshot_record": record.id},
        )


def handle_server_restore(db: Database, item: ClaimedItem) -> None:
    """Nova's rebuild from the snapshot's image, then waited for until the server is back
    (running, or stopped if it was).  Once the cloud accepted, the record says so and a retry
    only waits; a retry before that asks again (a rebuild already under way from the same
    image counts as accepted)."""
    record_id = int(item.payload["server_snapshot_record_id"])
    with db.unit_of_work() as uow:
        record = uow.session.get(ServerSnapshotRecord, record_id)
        if record is None or record.restore_state not in {RestoreState.QUEUED, RestoreState.REBUILDING}:
            return
        server = uow.session.get_one(ManagedServer, record.server_row_id)
        provider = _provider(uow.session.get_one(Cloud, record.cloud_id))
        cloud_server_id, image_id, accepted = (
            server.server_id,
            record.image_id,
            record.restore_state == RestoreState.REBUILDING,
        )
    if not cloud_server_id or not image_id:
        _fail_server_restore(db, record_id, Message(N_("the server or the snapshot is not on the cloud")))
        return
    try:
        if not accepted:
            provider.rebuild_server(cloud_server_id, image_id)
            with db.unit_of_work() as uow:
                record = uow.session.get_one(ServerSnapshotRecord, record_id, with_for_update=True)
                if record.restore_state == RestoreState.QUEUED:
                    record.restore_state = RestoreState.REBUILDING
        rebuilt = provider.wait_for_server(cloud_server_id, {"ACTIVE", "SHUTOFF"}, timeout=REBUILD_TIMEOUT)
    except RETRYABLE as exc:
        raise _retry(exc) from exc
    except CloudError as exc:
        _fail_server_restore(db, record_id, str(exc))
        return
    with db.unit_of_work() as uow:
        session = uow.session
        record = session.get_one(ServerSnapshotRecord, record_id, with_for_update=True)
        if record.restore_state not in {RestoreState.QUEUED, RestoreState.REBUILDING}:
            return
        record.restore_state, record.restore_fault, record.restored_at = RestoreState.DONE, None, utcnow()
        audit.record(
            session,
            actor=ACTOR.username,
            action="server.restored",
            target_type="managed_server",
            target_id=record.server_row_id,
            detail={"server_snapshot_record": record.id, "image_id": image_id, "status": rebuilt.status},
        )


def _give_up_server_restore(db: Database, item: ClaimedItem, error: str) -> None:
    _fail_server_restore(db, int(item.payload["server_snapshot_record_id"]), error)


handle_server_restore.on_give_up = _give_up_server_restore  # type: ignore[attr-defined]


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
