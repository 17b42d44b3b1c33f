"""Purchase requests, their items, attachments (metadata only), findings and history."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow
from cloudmgr.organisation.models import Department


class Category(enum.StrEnum):
    SERVER = "server"
    STORAGE = "storage"
    NETWORK = "network"
    SERVER_ROOM = "server_room"  # building or renovating a server room: against policy
    SOFTWARE = "software"
    OTHER = "other"


class PurchaseState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    RETURNED = "returned"  # returned to the department for information
    RESUBMITTED = "resubmitted"
    APPROVED = "approved"
    BLOCKED = "blocked"
    WITHDRAWN = "withdrawn"


#: States that wait for a finance decision.
PENDING_STATES: frozenset[PurchaseState] = frozenset({PurchaseState.SUBMITTED, PurchaseState.RESUBMITTED})
#: States the department may still edit.
EDITABLE_STATES: frozenset[PurchaseState] = frozenset({PurchaseState.DRAFT, PurchaseState.RETURNED})


class FindingKind(enum.StrEnum):
    CLOUD_PROVIDES = "cloud_provides"
    NO_CLOUD_OFFER = "no_cloud_offer"  # checked: no offer fits (the reasons are the evidence)
    SERVER_ROOM = "server_room"
    DUPLICATE = "duplicate"
    MIGRATING = "migrating"
    CLASSIFIED = "classified"


class Severity(enum.StrEnum):
    BLOCK = "block"  # the policy says finance should not fund it
    WARN = "warn"
    INFO = "info"


class BlockBasis(enum.StrEnum):
    CLOUD_PROVIDES = "cloud_provides"
    SERVER_ROOM = "server_room"
    DUPLICATE = "duplicate"
    MIGRATING = "migrating"
    OTHER = "other"


class PurchaseRequest(Base):
    """A department's request to buy hardware or software, and finance's decision on it.

    ``state`` changes only through :mod:`cloudmgr.purchases.services` (who, when and why are
    stored in :class:`PurchaseEvent` and the audit log).
    """

    __tablename__ = "purchase_requests"
    __table_args__ = (
        enum_check("category", Category),
        enum_check("state", PurchaseState),
        CheckConstraint("amount_yuan >= 0", name="amount_not_negative"),
        Index("ix_purchase_requests_dept_state", "department_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(16))
    amount_yuan: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    application_system: Mapped[str] = mapped_column(String(128))
    # A legacy host of the inventory (cloudmgr.inventory) the purchase is for, by hostname.
    legacy_hostname: Mapped[str | None] = mapped_column(String(128))
    # The department declares the system classified (涉密, e-government intranet).
    classified: Mapped[bool] = mapped_column(Boolean, default=False)
    justification: Mapped[str] = mapped_column(Text)

    state: Mapped[PurchaseState] = mapped_column(
        StrEnumType(PurchaseState, 16), default=PurchaseState.DRAFT, index=True
    )
    state_reason: Mapped[str | None] = mapped_column(Text)
    block_basis: Mapped[str | None] = mapped_column(String(16))
    # The cloud offer the decision refers to (a copy of the finding's evidence).
    offer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Sum of the findings' weights: the reviewer's queue puts the strongest cases first.
    findings_score: Mapped[int] = mapped_column(default=0)
    submissions: Mapped[int] = mapped_column(default=0)
    # The VM request draft the department made from the offer.
    service_request_id: Mapped[int | None] = mapped_column(ForeignKey("service_requests.id"))

    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    department: Mapped[Department] = relationship()
    items: Mapped[list[PurchaseItem]] = relationship(
        back_populates="purchase", cascade="all, delete-orphan", order_by="PurchaseItem.position"
    )
    attachments: Mapped[list[PurchaseAttachment]] = relationship(
        back_populates="purchase", cascade="all, delete-orphan", order_by="PurchaseAttachment.id"
    )
    findings: Mapped[list[PurchaseFinding]] = relationship(
        back_populates="purchase", cascade="all, delete-orphan", order_by="PurchaseFinding.id"
    )
    events: Mapped[list[PurchaseEvent]] = relationship(
        back_populates="purchase", cascade="all, delete-orphan", order_by="PurchaseEvent.id"
    )

    @property
    def is_pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def is_editable(self) -> bool:
        return self.state in EDITABLE_STATES

    def finding(self, kind: FindingKind | str) -> PurchaseFinding | None:
        return next((f for f in self.findings if f.kind == str(kind)), None)


class PurchaseItem(Base):
    __tablename__ = "purchase_items"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("vcpus >= 0 AND ram_gb >= 0 AND disk_gb >= 0", name="specs_not_negative"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchase_requests.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column()
    description: Mapped[str] = mapped_column(String(255))
    vcpus: Mapped[int] = mapped_column(default=0)
    ram_gb: Mapped[int] = mapped_column(default=0)
    disk_gb: Mapped[int] = mapped_column(default=0)
    quantity: Mapped[int] = mapped_column(default=1)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 2))

    purchase: Mapped[PurchaseRequest] = relationship(back_populates="items")

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity

    @property
    def has_specs(self) -> bool:
        return bool(self.vcpus or self.ram_gb or self.disk_gb)


class PurchaseAttachment(Base):
    """An attachment's metadata (the file itself stays in the department's document system)."""

    __tablename__ = "purchase_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchase_requests.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    purchase: Mapped[PurchaseRequest] = relationship(back_populates="attachments")


class PurchaseFinding(Base):
    """An automatic finding of the last submission, with the evidence it rests on."""

    __tablename__ = "purchase_findings"
    __table_args__ = (enum_check("kind", FindingKind), enum_check("severity", Severity))

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchase_requests.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(8))
    summary: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    purchase: Mapped[PurchaseRequest] = relationship(back_populates="findings")


class PurchaseEvent(Base):
    """One transition: who, when, from, to, why (written before anything else happens)."""

    __tablename__ = "purchase_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchase_requests.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # create, edit, submit, resubmit, approve, block, return, …
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)

    purchase: Mapped[PurchaseRequest] = relationship(back_populates="events")
