"""The parts of a provisioned server beyond the VM itself (issue 16): its data volumes and its
public address.  Written by :func:`cloudmgr.servicerequests.provisioning.start_provisioning`
from the request's choices, and later by :mod:`cloudmgr.storage` (a department's own volumes
and addresses); each part is made on the cloud by its idempotency key (a Cinder metadata tag,
a floating IP tag), so a retried or taken-over work item finds what an earlier run made
instead of making a second one.

A volume belongs to its department on its cloud (``department_id`` + ``cloud_id``), with or
without a server: ``server_id`` NULL and state ``available`` is a department's unattached
volume (made on the storage page, detached, or kept when its server was deleted).
``quota_counted`` says whether the part is in the ledger's ``used`` (1 volume + its GB, or 1
floating IP): whoever deletes or releases it gives that back exactly when it is set, and
clears it, so nothing is given back twice or for a part whose reservation was released."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow


class VolumeState(enum.StrEnum):
    PENDING = "pending"  # not yet asked of the cloud
    # Asked of the cloud: volume_id once it answered.  Without volume_id, the answer was lost
    # (the run stopped): the next run looks for the volume by its tag before creating it.
    CREATING = "creating"
    ATTACHED = "attached"
    AVAILABLE = "available"  # exists, not attached: kept when its server was deleted
    DELETED = "deleted"
    FAILED = "failed"  # the fault says why; an operator's retry continues from here
    # A change asked for and queued (cloudmgr.storage): one at a time per volume.
    ATTACHING = "attaching"
    DETACHING = "detaching"
    EXTENDING = "extending"
    DELETING = "deleting"


class AddressState(enum.StrEnum):
    PENDING = "pending"
    # Asked of the cloud, not yet on the server: the project holds it once floating_ip_id is
    # known; without it the answer was lost, and the next run looks for it by its tag first.
    ALLOCATED = "allocated"
    ASSOCIATED = "associated"
    RELEASED = "released"
    FAILED = "failed"
    RELEASING = "releasing"  # its release is queued (cloudmgr.storage)


def disk_name(server_name: str, index: int) -> str:
    """A request's data disk is named after its server (web-01-data1), on the cloud and here."""
    return f"{server_name}-data{index}"[:64]


class ManagedVolume(Base):
    """One data volume of a managed server (the request's ``data_disks[index - 1]``), or of the
    department alone (no server) when an operator adopted an orphaned volume."""

    __tablename__ = "managed_volumes"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        UniqueConstraint("server_id", "index"),
        enum_check("state", VolumeState),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None once the server is deleted and the volume kept: it is then the department's (still
    # on its project and in its ledger), no server's.
    server_id: Mapped[int | None] = mapped_column(ForeignKey("managed_servers.id"), index=True)
    # None for a volume made on its own (cloudmgr.storage), not by a request.
    request_id: Mapped[int | None] = mapped_column(ForeignKey("service_requests.id"), index=True)
    # What the department called it; None for a request's disk while on its server (named after
    # it, :func:`disk_name`), given that name when it is detached, so a kept volume keeps it.
    name: Mapped[str | None] = mapped_column(String(64))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    index: Mapped[int] = mapped_column()  # 1.. within its server (kept after a detach)
    size_gb: Mapped[int] = mapped_column()
    volume_type: Mapped[str | None] = mapped_column(String(255))  # the cloud's name; None: its default
    # The Cinder metadata tag the volume is created with: the same volume on every retry.
    idempotency_key: Mapped[str] = mapped_column(String(128))
    volume_id: Mapped[str | None] = mapped_column(String(64))  # the cloud's id
    state: Mapped[VolumeState] = mapped_column(StrEnumType(VolumeState, 16), default=VolumeState.PENDING)
    fault: Mapped[str | None] = mapped_column(Text)
    # The messages behind its English fault: {text: {"msgid", "params"}} (cloudmgr.stored_messages).
    messages: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    # In the ledger's used (see the module docstring); a request's disks are, from the server's start.
    quota_counted: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ManagedAddress(Base):
    """The public (floating) address of a managed server, or of the department alone (no
    server) when an operator adopted an orphaned address."""

    __tablename__ = "managed_addresses"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        UniqueConstraint("server_id"),
        enum_check("state", AddressState),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int | None] = mapped_column(ForeignKey("managed_servers.id"))
    # Whose it is: filled for every address since revision 0023 (before, the server said).
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    cloud_id: Mapped[int | None] = mapped_column(ForeignKey("clouds.id"))
    # The floating IP's tag on the cloud: the same address on every retry.
    idempotency_key: Mapped[str] = mapped_column(String(128))
    floating_ip_id: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[AddressState] = mapped_column(StrEnumType(AddressState, 16), default=AddressState.PENDING)
    fault: Mapped[str | None] = mapped_column(Text)
    # The messages behind its English fault: {text: {"msgid", "params"}} (cloudmgr.stored_messages).
    messages: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    quota_counted: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
