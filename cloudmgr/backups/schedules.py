"""Backup schedules (issue 16): ``hour`` and ``weekday`` are in the province's time (UTC+8, no
daylight saving); each slot a schedule reaches is one *period* (a day, or an ISO week) and its
backup is tagged ``cm-bk-<schedule>-<period>``, so a scheduler that runs twice, or late, never
makes two.  Also what the scheduler's job asks (:mod:`cloudmgr.backups.jobs`).  Reached through
:mod:`cloudmgr.backups.services`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.backups.common import (
    COPYABLE_STATES,
    DELETE_WORK,
    KEEP_MAX,
    LOCAL_TIME,
    find_volume,
    must_act,
    must_be_copyable,
    queue_backup,
)
from cloudmgr.backups.errors import (
    ScheduleInvalid,
    VolumeNotReady,
)
from cloudmgr.backups.models import (
    BackupSchedule,
    CopyState,
    Frequency,
    VolumeBackupRecord,
)
from cloudmgr.db import utcnow
from cloudmgr.messages import N_, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.servicerequests.parts import ManagedVolume, VolumeState
from cloudmgr.workqueue.services import enqueue


@dataclass(frozen=True)
class ScheduleForm:
    frequency: str
    hour: int
    keep: int
    weekday: int | None = None
    enabled: bool = True


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
    find_volume(session, actor, volume_row_id)
    return session.scalar(select(BackupSchedule).where(BackupSchedule.volume_row_id == volume_row_id))


def set_schedule(
    session: Session, actor: Actor, volume_row_id: int, form: ScheduleForm, *, now: datetime | None = None
) -> BackupSchedule:
    """Create or replace the volume's schedule; its next slot is counted from ``now``."""
    volume = find_volume(session, actor, volume_row_id, lock=True)
    must_act(actor)
    frequency, weekday = _checked(form)
    if volume.state not in COPYABLE_STATES and volume.state not in {VolumeState.PENDING, VolumeState.CREATING}:
        raise VolumeNotReady(message(N_("volume %(id)s is not ready: it will not be backed up"), id=volume.id))
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
    volume = find_volume(session, actor, volume_row_id, lock=True)
    must_act(actor)
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
    must_be_copyable(volume)
    return queue_backup(session, actor, volume, tag, schedule.id)


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
