"""Capacity snapshots over time, per data-centre base and per OpenStack endpoint."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, UTCDateTime, utcnow
from cloudmgr.organisation.models import Cloud


class CapacitySnapshot(Base):
    """What one source had at one time : an OpenStack endpoint read through Placement, or
    capacity outside OpenStack imported from CSV."""

    __tablename__ = "capacity_snapshots"
    __table_args__ = (Index("ix_capacity_snapshots_base_taken", "base", "taken_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    base: Mapped[str] = mapped_column(String(64))  # data-centre base key
    source: Mapped[str] = mapped_column(String(16))  # placement | csv
    # The endpoint read ("<clouds.yaml entry>/<region>"), or the CSV file's label.
    endpoint: Mapped[str] = mapped_column(String(255))
    clouds: Mapped[str] = mapped_column(String(1024), default="")  # the cloud keys it serves, comma-separated
    physical_servers: Mapped[int] = mapped_column(BigInteger, default=0)
    vcpus_total: Mapped[int] = mapped_column(BigInteger, default=0)
    vcpus_used: Mapped[int] = mapped_column(BigInteger, default=0)
    ram_mb_total: Mapped[int] = mapped_column(BigInteger, default=0)
    ram_mb_used: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_gb_total: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_gb_used: Mapped[int] = mapped_column(BigInteger, default=0)

    hosts: Mapped[list[HostCapacity]] = relationship(
        back_populates="snapshot", cascade="all, delete-orphan", order_by="HostCapacity.name"
    )


class HostCapacity(Base):
    """One compute host (Placement resource provider) in a snapshot."""

    __tablename__ = "host_capacities"

    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("capacity_snapshots.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(32), default="up")
    vcpus_total: Mapped[int] = mapped_column(BigInteger, default=0)
    vcpus_used: Mapped[int] = mapped_column(BigInteger, default=0)
    ram_mb_total: Mapped[int] = mapped_column(BigInteger, default=0)
    ram_mb_used: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_gb_total: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_gb_used: Mapped[int] = mapped_column(BigInteger, default=0)

    snapshot: Mapped[CapacitySnapshot] = relationship(back_populates="hosts")


class RunState(enum.StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    DONE = "done"
    FAILED = "failed"


class ConsolidationRun(Base):
    __tablename__ = "consolidation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    state: Mapped[str] = mapped_column(String(16), default=RunState.PLANNED.value)
    # {"waves": [[{"server_id", "vm", "from", "to"}, …], …], "emptied": […], "summary": {…}}
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    next_wave: Mapped[int] = mapped_column(default=0)
    moves_done: Mapped[int] = mapped_column(default=0)
    moves_failed: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_by: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stop_requested_by: Mapped[str | None] = mapped_column(String(64))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)

    cloud: Mapped[Cloud] = relationship()
