"""The copies of a volume cloudmgr keeps track of: Cinder snapshots (kept next to the volume),
Cinder backups (in the backup store, independent of the volume), and the schedule that makes
backups on its own; and the snapshots of a server (a Glance image of its root disk, which a
rebuild restores).  Each copy is made on the cloud by its tag, so a retried or taken-over work
item finds the copy an earlier run made instead of making a second one."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow


class CopyState(enum.StrEnum):
    PENDING = "pending"  # recorded; the work item has not made it on the cloud yet
    READY = "ready"  # the cloud holds it (available)
    FAILED = "failed"  # the fault says why; its quota was given back
    DELETING = "deleting"  # pruned or removed; the work item deletes it on the cloud
    DELETED = "deleted"


class RestoreState(enum.StrEnum):
    """A server's rebuild from one of its snapshots (the last one asked of that snapshot)."""

    QUEUED = "queued"  # recorded; the work item has not asked the cloud yet
    REBUILDING = "rebuilding"  # the cloud accepted the rebuild
    DONE = "done"
    FAILED = "failed"  # ``restore_fault`` says why


class Frequency(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class VolumeSnapshotRecord(Base):
    """A Cinder snapshot of one managed volume."""

    __tablename__ = "volume_snapshot_records"
    __table_args__ = (UniqueConstraint("tag"), enum_check("state", CopyState))

    id: Mapped[int] = mapped_column(primary_key=True)
    volume_row_id: Mapped[int] = mapped_column(ForeignKey("managed_volumes.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    # The Cinder metadata tag it is made with: the same snapshot on every retry.
    tag: Mapped[str] = mapped_column(String(128))
    snapshot_id: Mapped[str | None] = mapped_column(String(64))  # the cloud's id
    size_gb: Mapped[int] = mapped_column()
    state: Mapped[CopyState] = mapped_column(StrEnumType(CopyState, 16), default=CopyState.PENDING)
    reservation_id: Mapped[int | None] = mapped_column()  # the ledger's hold until it is ready
    requested_by: Mapped[str] = mapped_column(String(128))
    fault: Mapped[str | None] = mapped_column(Text)
    # The messages behind its English faults: {text: {"msgid", "params"}} (cloudmgr.stored_messages).
    messages: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class BackupSchedule(Base):
    """When a volume is backed up on its own, and how many of those backups are kept.

    ``hour`` (and ``weekday``, 0 = Monday, for weekly schedules) are in the province's time
    (UTC+8); ``next_run_at`` is the next slot, in UTC."""

    __tablename__ = "backup_schedules"
    __table_args__ = (
        UniqueConstraint("volume_row_id"),
        enum_check("frequency", Frequency),
        CheckConstraint("hour >= 0 AND hour <= 23", name="hour_range"),
        CheckConstraint("keep >= 1 AND keep <= 30", name="keep_range"),
        CheckConstraint("weekday IS NULL OR (weekday >= 0 AND weekday <= 6)", name="weekday_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    volume_row_id: Mapped[int] = mapped_column(ForeignKey("managed_volumes.id"))
    frequency: Mapped[Frequency] = mapped_column(StrEnumType(Frequency, 16))
    weekday: Mapped[int | None] = mapped_column()
    hour: Mapped[int] = mapped_column()
    keep: Mapped[int] = mapped_column()
    enabled: Mapped[bool] = mapped_column(default=True)
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class VolumeBackupRecord(Base):
    """A Cinder backup of one managed volume, made by hand (``schedule_id`` None) or by its schedule."""

    __tablename__ = "volume_backup_records"
    __table_args__ = (UniqueConstraint("tag"), enum_check("state", CopyState))

    id: Mapped[int] = mapped_column(primary_key=True)
    volume_row_id: Mapped[int] = mapped_column(ForeignKey("managed_volumes.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    # cm-bk-<schedule>-<period> for a scheduled one: one backup per schedule and period.
    tag: Mapped[str] = mapped_column(String(128))
    backup_id: Mapped[str | None] = mapped_column(String(64))
    size_gb: Mapped[int] = mapped_column()
    state: Mapped[CopyState] = mapped_column(StrEnumType(CopyState, 16), default=CopyState.PENDING)
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("backup_schedules.id", ondelete="SET NULL"))
    reservation_id: Mapped[int | None] = mapped_column()
    requested_by: Mapped[str] = mapped_column(String(128))
    fault: Mapped[str | None] = mapped_column(Text)
    # The messages behind its English faults: {text: {"msgid", "params"}} (cloudmgr.stored_messages).
    messages: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ServerSnapshotRecord(Base):
    """A snapshot of one managed server: Nova's createImage makes a Glance image of its root disk
    in the department's project; restoring rebuilds the server from it (the root disk replaced,
    everything else kept).  It counts as one of the department's SNAPSHOTS until deleted."""

    __tablename__ = "server_snapshot_records"
    __table_args__ = (
        UniqueConstraint("tag"),
        enum_check("state", CopyState),
        enum_check("restore_state", RestoreState),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    server_row_id: Mapped[int] = mapped_column(ForeignKey("managed_servers.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    name: Mapped[str] = mapped_column(String(64))
    # The image property it is made with: the same image on every retry.
    tag: Mapped[str] = mapped_column(String(128))
    image_id: Mapped[str | None] = mapped_column(String(64))  # Glance's id
    size_bytes: Mapped[int | None] = mapped_column(BigInteger())
    state: Mapped[CopyState] = mapped_column(StrEnumType(CopyState, 16), default=CopyState.PENDING)
    reservation_id: Mapped[int | None] = mapped_column()
    requested_by: Mapped[str] = mapped_column(String(128))
    fault: Mapped[str | None] = mapped_column(Text)
    # The messages behind its English faults: {text: {"msgid", "params"}} (cloudmgr.stored_messages).
    messages: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    restore_state: Mapped[RestoreState | None] = mapped_column(StrEnumType(RestoreState, 16))
    restore_requested_by: Mapped[str | None] = mapped_column(String(128))
    restore_fault: Mapped[str | None] = mapped_column(Text)
    restored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
