"""The quota ledger: per department, cloud and resource, the limit, what is reserved and what is used."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, UTCDateTime, utcnow
from cloudmgr.organisation.models import Cloud, Department


class LimitSource(enum.StrEnum):
    FILE = "file"  # from the quota files (applied by `cloudmgr quotas apply`)
    REQUEST = "request"  # from an approved quota-change request, not yet exported to the files


class QuotaAssignment(Base):
    """What a department has on a cloud: its size and where its limits came from."""

    __tablename__ = "quota_assignments"
    __table_args__ = (UniqueConstraint("department_id", "cloud_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id", ondelete="CASCADE"))
    size: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16), default=LimitSource.FILE.value)
    # The file's limits when they were last applied: a file edited since then wins over an
    # approved request; an unchanged file keeps the request's limits until exported.
    file_limits: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    change_request_id: Mapped[int | None] = mapped_column(ForeignKey("quota_change_requests.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    department: Mapped[Department] = relationship()
    cloud: Mapped[Cloud] = relationship()


class QuotaLedgerRow(Base):
    """One resource of one department on one cloud.

    ``used + reserved <= limit`` always holds: reservations are made by a single
    conditional UPDATE, so concurrent requests cannot overcommit.
    """

    __tablename__ = "quota_ledger"
    __table_args__ = (
        UniqueConstraint("department_id", "cloud_id", "resource"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("used >= 0", name="used_not_negative"),
        CheckConstraint('"limit" >= 0', name="limit_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id", ondelete="CASCADE"))
    resource: Mapped[str] = mapped_column(String(32))
    limit: Mapped[int] = mapped_column("limit", default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    used: Mapped[int] = mapped_column(default=0)
    # Last seen on the cloud by the reconcile job (None: never read).
    cloud_limit: Mapped[int | None] = mapped_column()
    cloud_used: Mapped[int | None] = mapped_column()
    reconciled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    department: Mapped[Department] = relationship()
    cloud: Mapped[Cloud] = relationship()

    @property
    def free(self) -> int:
        return max(self.limit - self.used - self.reserved, 0)

    @property
    def fill_ratio(self) -> float:
        return (self.used + self.reserved) / self.limit if self.limit else (1.0 if self.used + self.reserved else 0.0)


class ReservationState(enum.StrEnum):
    HELD = "held"
    CONSUMED = "consumed"
    RELEASED = "released"


class QuotaReservation(Base):
    """Resources held for an owner (a VM being provisioned) until it succeeds or fails."""

    __tablename__ = "quota_reservations"
    __table_args__ = (Index("ix_quota_reservations_owner", "owner"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    owner: Mapped[str] = mapped_column(String(128))
    amounts: Mapped[dict[str, int]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=ReservationState.HELD.value, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(Text)


class ChangeRequestState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class QuotaChangeRequest(Base):
    __tablename__ = "quota_change_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    target_size: Mapped[str | None] = mapped_column(String(32))
    requested_limits: Mapped[dict[str, int]] = mapped_column(JSON)
    previous_limits: Mapped[dict[str, int]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=ChangeRequestState.PENDING.value, index=True)
    automatic: Mapped[bool] = mapped_column(default=False)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(Text)

    department: Mapped[Department] = relationship()
    cloud: Mapped[Cloud] = relationship()


class QuotaDrift(Base):
    """A cloud limit that differed from the ledger's, found by the reconcile job."""

    __tablename__ = "quota_drifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    resource: Mapped[str] = mapped_column(String(32))
    expected: Mapped[int] = mapped_column()
    found: Mapped[int] = mapped_column()
    action: Mapped[str] = mapped_column(String(16))  # repaired | alerted
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    department: Mapped[Department] = relationship()
    cloud: Mapped[Cloud] = relationship()
