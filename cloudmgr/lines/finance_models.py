"""A department's request to rent a new dedicated line or renew a line's contract, and finance's
decision on it (issue 19).  ``state`` changes only through :mod:`cloudmgr.lines.finance`."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow
from cloudmgr.lines.models import Carrier, LineType, NetworkLine
from cloudmgr.organisation.models import Department


class RentalKind(enum.StrEnum):
    NEW = "new"  # rent a new line
    RENEWAL = "renewal"  # renew an existing line's contract


class RentalState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"  # waits for finance
    APPROVED = "approved"
    BLOCKED = "blocked"


class BlockBasis(enum.StrEnum):
    EXTRANET_REACHES = "extranet_reaches"  # the extranet already joins both ends
    RETIRE = "retire"  # the rule says the line is to be retired
    OTHER = "other"


KIND_LABELS = {RentalKind.NEW: "新租专线", RentalKind.RENEWAL: "专线续约"}
STATE_LABELS = {
    RentalState.DRAFT: "草稿",
    RentalState.SUBMITTED: "待财务审核",
    RentalState.APPROVED: "已批准",
    RentalState.BLOCKED: "已否决",
}
BASIS_LABELS = {
    BlockBasis.EXTRANET_REACHES: "电子政务外网已覆盖",
    BlockBasis.RETIRE: "按规则应裁撤",
    BlockBasis.OTHER: "其他",
}


class LineRentalRequest(Base):
    """What the department asks to rent (the line's carrier, type, ends, rent and contract) and, for a
    renewal, which line.  A renewal copies the line's ends; its contract and rent are the new ones."""

    __tablename__ = "network_line_rentals"
    __table_args__ = (
        enum_check("kind", RentalKind),
        enum_check("state", RentalState),
        enum_check("carrier", Carrier),
        enum_check("line_type", LineType),
        enum_check("block_basis", BlockBasis),
        CheckConstraint("monthly_rent > 0", name="rent_positive"),
        CheckConstraint("contract_end > contract_start", name="contract_order"),
        Index("ix_network_line_rentals_dept_state", "department_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RentalKind] = mapped_column(StrEnumType(RentalKind, 16))
    state: Mapped[RentalState] = mapped_column(StrEnumType(RentalState, 16), default=RentalState.DRAFT, index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("network_lines.id", ondelete="SET NULL"), index=True)
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
    monthly_rent: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    contract_start: Mapped[date] = mapped_column(Date)
    contract_end: Mapped[date] = mapped_column(Date)
    declared_classified: Mapped[bool] = mapped_column(Boolean, default=False)
    public_facing: Mapped[bool] = mapped_column(Boolean, default=False)
    purpose: Mapped[str] = mapped_column(String(1000), default="")
    # The findings when submitted, and again when decided (what the reviewer saw).
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_by: Mapped[str | None] = mapped_column(String(128))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(String(1000))
    block_basis: Mapped[BlockBasis | None] = mapped_column(StrEnumType(BlockBasis, 32))

    department: Mapped[Department] = relationship()
    line: Mapped[NetworkLine | None] = relationship()

    @property
    def flagged(self) -> bool:
        return any(f.get("severity") == "flag" for f in self.findings or [])
