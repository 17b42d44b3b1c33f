from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.catalog.models import CatalogItem
from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow
from cloudmgr.organisation.models import Cloud, Department
from cloudmgr.servicerequests.states import RequestState, ServerState


class ServiceRequest(Base):
    """A department's request for VMs (or for a change to one of its VMs)."""

    __tablename__ = "service_requests"
    __table_args__ = (
        enum_check("state", RequestState),
        Index("ix_service_requests_dept_state", "department_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="create")  # create | resize
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    zone: Mapped[str] = mapped_column(String(16))
    flavor_item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"))
    image_item_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_items.id"))
    count: Mapped[int] = mapped_column(default=1)
    name_prefix: Mapped[str] = mapped_column(String(40))
    application_system: Mapped[str | None] = mapped_column(String(128))
    justification: Mapped[str] = mapped_column(Text)
    expires_on: Mapped[date] = mapped_column(Date)
    monthly_cost: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    # For a resize: the server it changes.
    target_server_id: Mapped[int | None] = mapped_column(ForeignKey("managed_servers.id", use_alter=True))
    # The legacy system the VMs replace, if any (the classified rule refuses a classified one).
    legacy_system_id: Mapped[int | None] = mapped_column(ForeignKey("legacy_systems.id"))
    # The SSH key chosen, copied when the request is made: the user may delete the key later,
    # provisioning injects this copy (issue 16).
    ssh_key_name: Mapped[str | None] = mapped_column(String(64))
    ssh_public_key: Mapped[str | None] = mapped_column(Text)
    ssh_key_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # cloud-init user data, as the user wrote it (at most USER_DATA_MAX_BYTES in UTF-8).
    user_data: Mapped[str | None] = mapped_column(Text)
    # Each VM's data disks: [{"size_gb": 100, "volume_type": "ssd", "volume_type_item_id": 7}, ...]
    data_disks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")
    # Each VM gets a public (floating) address; only in the internet zone.
    public_address: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    state: Mapped[RequestState] = mapped_column(StrEnumType(RequestState, 20), default=RequestState.DRAFT, index=True)
    # The approval chain fixed at submission, e.g. ["dept_head", "operator", "finance"].
    approval_steps: Mapped[list[str]] = mapped_column(JSON, default=list)
    current_step: Mapped[int] = mapped_column(default=0)
    state_reason: Mapped[str | None] = mapped_column(Text)
    # The messages behind the English texts the system stored on the request, its events and
    # its servers: {english text: {"msgid", "params"}} (cloudmgr.servicerequests.texts).
    messages: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")

    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provisioning_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    department: Mapped[Department] = relationship()
    cloud: Mapped[Cloud] = relationship()
    flavor: Mapped[CatalogItem] = relationship(foreign_keys=[flavor_item_id])
    image: Mapped[CatalogItem | None] = relationship(foreign_keys=[image_item_id])
    servers: Mapped[list[ManagedServer]] = relationship(
        back_populates="request", foreign_keys="ManagedServer.request_id", order_by="ManagedServer.index"
    )
    events: Mapped[list[RequestEvent]] = relationship(back_populates="request", order_by="RequestEvent.id")

    @property
    def next_role(self) -> str | None:
        if self.state != RequestState.SUBMITTED or self.current_step >= len(self.approval_steps):
            return None
        return self.approval_steps[self.current_step]


class RequestEvent(Base):
    """One transition of a request: who, when, from, to, why.  Written before any side effect."""

    __tablename__ = "request_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))  # submit, approve, reject, cancel, provision, …
    step: Mapped[str | None] = mapped_column(String(16))  # the approval step acted on
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)

    request: Mapped[ServiceRequest] = relationship(back_populates="events")


class ManagedServer(Base):
    """A server cloudmgr provisions (or provisioned) for a department."""

    __tablename__ = "managed_servers"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        enum_check("state", ServerState),
        Index("ix_managed_servers_dept_state", "department_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    index: Mapped[int] = mapped_column()  # 1..count within its request
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    zone: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    flavor_item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"))
    vcpus: Mapped[int] = mapped_column()
    ram_mb: Mapped[int] = mapped_column()
    # Stored in the server's metadata: a retry or a restart finds the server instead of booting another.
    idempotency_key: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(default=1)
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("quota_reservations.id"))
    state: Mapped[ServerState] = mapped_column(StrEnumType(ServerState, 16), default=ServerState.PENDING)
    server_id: Mapped[str | None] = mapped_column(String(64), index=True)  # the cloud's id
    host: Mapped[str | None] = mapped_column(String(255))
    addresses: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fault: Mapped[str | None] = mapped_column(Text)
    expires_on: Mapped[date] = mapped_column(Date)
    reminded_on: Mapped[date | None] = mapped_column(Date)
    stopped_for_expiry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    active_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    request: Mapped[ServiceRequest] = relationship(back_populates="servers", foreign_keys=[request_id])
    department: Mapped[Department] = relationship()
    cloud: Mapped[Cloud] = relationship()
    flavor: Mapped[CatalogItem] = relationship()


class OrphanServer(Base):
    """A server carrying cloudmgr's metadata that no request owns, found by the reconcile job."""

    __tablename__ = "orphan_servers"
    __table_args__ = (UniqueConstraint("cloud_id", "server_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    server_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    found_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    cloud: Mapped[Cloud] = relationship()
