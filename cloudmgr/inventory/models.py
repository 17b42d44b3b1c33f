"""Server rooms and the legacy systems in them (one row per legacy host)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow
from cloudmgr.organisation.models import Cloud, Department


class Classification(enum.StrEnum):
    CLASSIFIED = "classified"  # 涉密: stays on the e-government intranet, never on these clouds
    NON_CLASSIFIED = "non_classified"


class LegacyNetwork(enum.StrEnum):
    INTERNET = "internet"  # 互联网
    EXTRANET = "extranet"  # 电子政务外网
    INTRANET = "intranet"  # 电子政务内网 (classified business)


class OsFamily(enum.StrEnum):
    LINUX = "linux"
    WINDOWS = "windows"
    OTHER = "other"  # AIX, Solaris, …


class SystemState(enum.StrEnum):
    LEGACY = "legacy"  # imported, in scope, not yet in a wave
    INTRANET = "intranet"  # classified: out of scope, listed separately (terminal for the programme)
    PLANNED = "planned"  # member of a migration wave
    MIGRATING = "migrating"  # its wave is running
    ON_CLOUD = "on_cloud"  # cut over and verified
    ROLLED_BACK = "rolled_back"  # cutover/verify failed, the source still serves
    DECOMMISSIONED = "decommissioned"  # source switched off: counts as done


#: States that count as "done" for the programme.
DONE_STATES: frozenset[SystemState] = frozenset({SystemState.ON_CLOUD, SystemState.DECOMMISSIONED})


class ServerRoom(Base):
    """A department's own server room (机房), which the programme empties and closes."""

    __tablename__ = "server_rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # e.g. "prov-education-room-1"
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    location: Mapped[str] = mapped_column(String(255), default="")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(64))

    department: Mapped[Department] = relationship()
    systems: Mapped[list[LegacySystem]] = relationship(back_populates="server_room", order_by="LegacySystem.hostname")


class LegacySystem(Base):
    """One legacy host of the inventory and where it stands in the cloud programme.

    ``state`` changes only through :func:`cloudmgr.inventory.services.transition_system`.
    """

    __tablename__ = "legacy_systems"
    __table_args__ = (
        enum_check("classification", Classification),
        enum_check("network", LegacyNetwork),
        enum_check("state", SystemState),
        Index("ix_legacy_systems_dept_state", "department_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hostname: Mapped[str] = mapped_column(String(128), unique=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    server_room_id: Mapped[int] = mapped_column(ForeignKey("server_rooms.id"), index=True)
    application_system: Mapped[str] = mapped_column(String(128))
    classification: Mapped[str] = mapped_column(String(16))
    network: Mapped[str] = mapped_column(String(16))
    os_family: Mapped[str] = mapped_column(String(16))
    os_name: Mapped[str] = mapped_column(String(64))
    os_version: Mapped[str] = mapped_column(String(32))
    vcpus: Mapped[int] = mapped_column()
    ram_mb: Mapped[int] = mapped_column()
    disk_gb: Mapped[int] = mapped_column()
    data_gb: Mapped[int] = mapped_column()
    cpu_p95_pct: Mapped[float] = mapped_column()
    ram_p95_pct: Mapped[float] = mapped_column()
    dependencies: Mapped[list[str]] = mapped_column(JSON, default=list)  # hostnames it depends on
    owner_name: Mapped[str] = mapped_column(String(64))
    owner_contact: Mapped[str] = mapped_column(String(128))
    ansible_host: Mapped[str | None] = mapped_column(String(255))  # the address Ansible reaches it on

    state: Mapped[SystemState] = mapped_column(StrEnumType(SystemState, 20), default=SystemState.LEGACY, index=True)
    complexity_score: Mapped[int] = mapped_column(default=0)
    # [{"code": …, "points": …, "detail": …}, …], highest points first
    complexity_reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    due_date: Mapped[date | None] = mapped_column(Date)  # overrides the programme deadline
    target_cloud_id: Mapped[int | None] = mapped_column(ForeignKey("clouds.id"))
    cloud_server_id: Mapped[str | None] = mapped_column(String(64))  # the server that replaced it
    migrated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decommissioned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    department: Mapped[Department] = relationship()
    server_room: Mapped[ServerRoom] = relationship(back_populates="systems")
    target_cloud: Mapped[Cloud | None] = relationship()

    @property
    def is_classified(self) -> bool:
        return self.classification == Classification.CLASSIFIED

    @property
    def in_scope(self) -> bool:
        """In the cloud programme's scope: non-classified and on the internet or the extranet."""
        return not self.is_classified and self.network in {LegacyNetwork.INTERNET, LegacyNetwork.EXTRANET}


class DeclassificationState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class DeclassificationRequest(Base):
    """A request to lower a system's classification (classified → non-classified, or off the
    intranet network), held until an administrator other than the requester decides it.

    Lowering is the dangerous direction: it makes a classified system placeable on the clouds.
    No path (re-import, edit) lowers it directly; it files one of these instead.
    """

    __tablename__ = "declassification_requests"
    __table_args__ = (
        enum_check("state", DeclassificationState),
        # one pending request per system: repeated re-imports do not pile them up
        Index(
            "uq_declassification_pending",
            "system_id",
            unique=True,
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("legacy_systems.id"), index=True)
    from_classification: Mapped[str] = mapped_column(String(16))
    from_network: Mapped[str] = mapped_column(String(16))
    to_classification: Mapped[str] = mapped_column(String(16))
    to_network: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=DeclassificationState.PENDING)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    entry_point: Mapped[str] = mapped_column(String(64))  # "inventory.import.cli", "api", …
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(Text)

    system: Mapped[LegacySystem] = relationship()


class AlertState(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # the servers left the cloud
    ACKNOWLEDGED = "acknowledged"  # an operator closed it with a reason


class ReclassificationAlert(Base):
    """A system became classified while servers for it run on the cloud: they must leave.

    Open until its servers are gone (resolved) or an operator acknowledges it with a reason.
    """

    __tablename__ = "reclassification_alerts"
    __table_args__ = (
        enum_check("state", AlertState),
        Index(
            "uq_reclassification_alert_open",
            "system_id",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("legacy_systems.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=AlertState.OPEN)
    servers: Mapped[list[str]] = mapped_column(JSON, default=list)  # what was on the cloud when raised
    raised_by: Mapped[str] = mapped_column(String(64))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    entry_point: Mapped[str] = mapped_column(String(64))
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    close_reason: Mapped[str | None] = mapped_column(Text)

    system: Mapped[LegacySystem] = relationship()
