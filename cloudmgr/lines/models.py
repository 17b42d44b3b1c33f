"""A department's dedicated line (专线) rented from a carrier, what it carries and where it goes."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Column, Date, ForeignKey, Index, Integer, Numeric, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow
from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.organisation.models import Department

#: The audit log's target type of a line (every path that changes one records under it).
AUDIT_TARGET = "network_line"


class Carrier(enum.StrEnum):
    TELECOM = "telecom"
    UNICOM = "unicom"
    MOBILE = "mobile"
    BROADNET = "broadnet"
    OTHER = "other"


CARRIER_LABELS: dict[Carrier, str] = {
    Carrier.TELECOM: "中国电信",
    Carrier.UNICOM: "中国联通",
    Carrier.MOBILE: "中国移动",
    Carrier.BROADNET: "中国广电",
    Carrier.OTHER: "其他",
}


class LineType(enum.StrEnum):
    MSTP = "mstp"
    SDH = "sdh"
    MPLS_VPN = "mpls_vpn"
    LEASED_FIBRE = "leased_fibre"
    INTERNET = "internet"


LINE_TYPE_LABELS: dict[LineType, str] = {
    LineType.MSTP: "MSTP",
    LineType.SDH: "SDH",
    LineType.MPLS_VPN: "MPLS VPN",
    LineType.LEASED_FIBRE: "裸光纤",
    LineType.INTERNET: "互联网专线",
}


class LineTarget(enum.StrEnum):
    INTRANET = "intranet"  # 电子政务内网: classified business, and only there
    EXTRANET = "extranet"  # 电子政务外网: non-classified business
    INTERNET = "internet"  # 互联网: public services
    RETIRE = "retire"  # 裁撤: nothing left to carry


TARGET_LABELS: dict[LineTarget, str] = {
    LineTarget.INTRANET: "电子政务内网",
    LineTarget.EXTRANET: "电子政务外网",
    LineTarget.INTERNET: "互联网",
    LineTarget.RETIRE: "裁撤",
}


class LineState(enum.StrEnum):
    IN_SERVICE = "in_service"  # 在用, no cut-over planned
    PLANNED = "planned"  # 计划割接: a target chosen
    CUT_OVER = "cut_over"  # 已割接
    RETIRED = "retired"  # 已裁撤


STATE_LABELS: dict[LineState, str] = {
    LineState.IN_SERVICE: "在用",
    LineState.PLANNED: "计划割接",
    LineState.CUT_OVER: "已割接",
    LineState.RETIRED: "已裁撤",
}


network_line_systems = Table(
    "network_line_systems",
    Base.metadata,
    Column("line_id", Integer, ForeignKey("network_lines.id", ondelete="CASCADE"), primary_key=True),
    Column("system_id", Integer, ForeignKey("legacy_systems.id", ondelete="CASCADE"), primary_key=True, index=True),
)

network_line_rooms = Table(
    "network_line_rooms",
    Base.metadata,
    Column("line_id", Integer, ForeignKey("network_lines.id", ondelete="CASCADE"), primary_key=True),
    Column("room_id", Integer, ForeignKey("server_rooms.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class NetworkLine(Base):
    """One dedicated line between two sites.

    ``target`` is the planned target (None until planned) and changes only through
    :func:`cloudmgr.lines.services.plan_line`; the target by rule is
    :func:`cloudmgr.lines.rules.proposed_target`.
    """

    __tablename__ = "network_lines"
    __table_args__ = (
        enum_check("carrier", Carrier),
        enum_check("line_type", LineType),
        enum_check("target", LineTarget),
        enum_check("state", LineState),
        Index("ix_network_lines_dept_state", "department_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # the carrier circuit number or the department's own
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    carrier: Mapped[Carrier] = mapped_column(StrEnumType(Carrier, 16))
    line_type: Mapped[LineType] = mapped_column(StrEnumType(LineType, 16))
    bandwidth_mbps: Mapped[int] = mapped_column()
    a_site: Mapped[str] = mapped_column(String(128))
    a_city: Mapped[str] = mapped_column(String(64))
    a_county: Mapped[str] = mapped_column(String(64), default="")
    a_township: Mapped[str] = mapped_column(String(64), default="")
    b_site: Mapped[str] = mapped_column(String(128))
    b_city: Mapped[str] = mapped_column(String(64))
    b_county: Mapped[str] = mapped_column(String(64), default="")
    b_township: Mapped[str] = mapped_column(String(64), default="")
    monthly_rent: Mapped[Decimal] = mapped_column(Numeric(12, 2))  # yuan
    contract_start: Mapped[date] = mapped_column(Date)
    contract_end: Mapped[date] = mapped_column(Date)
    declared_classified: Mapped[bool] = mapped_column(Boolean, default=False)
    public_facing: Mapped[bool] = mapped_column(Boolean, default=False)
    target: Mapped[LineTarget | None] = mapped_column(StrEnumType(LineTarget, 16))
    state: Mapped[LineState] = mapped_column(StrEnumType(LineState, 16), default=LineState.IN_SERVICE, index=True)
    cutover_date: Mapped[date | None] = mapped_column(Date)  # the planned cut-over (or retirement) date
    cut_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # recorded cut over or retired
    planned_by: Mapped[str | None] = mapped_column(String(128))
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    department: Mapped[Department] = relationship()
    systems: Mapped[list[LegacySystem]] = relationship(secondary=network_line_systems, order_by="LegacySystem.hostname")
    rooms: Mapped[list[ServerRoom]] = relationship(secondary=network_line_rooms, order_by="ServerRoom.code")
