"""The public face of snapshots and backups (issue 16): every rule about them is decided here.

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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.backups.errors import CopyNotFound, NotYourVolume, ScheduleInvalid, VolumeNotFound, VolumeNotReady
from cloudmgr.backups.models import BackupSchedule, CopyState, Frequency, VolumeBackupRecord, VolumeSnapshotRecord
from cloudmgr.db import utcnow
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.parts import ManagedVolume, VolumeState
from cloudmgr.workqueue.services import enqueue

__all__ = [
    "KEEP_MAX",
    "LOCAL_TIME",
    "BackupSchedule",
    "CopyState",
    "Frequency",
    "ScheduleForm",
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

# Work item kinds (cloudmgr.scheduler.jobs maps them to cloudmgr.backups.jobs' handlers).
SNAPSHOT_WORK = "backups.snapshot"
BACKUP_WORK = "backups.backup"
RESTORE_WORK = "backups.restore"
DELETE_WORK = "backups.delete"
WORK_KINDS = frozenset({SNAPSHOT_WORK, BACKUP_WORK, RESTORE_WORK, DELETE_WORK})


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
