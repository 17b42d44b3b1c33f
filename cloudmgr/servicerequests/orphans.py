"""Volumes and floating IPs carrying cloudmgr's idempotency tag that no request owns (issue 16).

The reconcile job (:func:`cloudmgr.servicerequests.jobs.find_orphans_and_vanished`) lists
each department project's volumes and floating IPs and hands them to :func:`record_orphans`;
a resource with a provisioning tag (``cm-r<req>-s<idx>-d<n>``, ``cm-r<req>-s<idx>-ip``)
whose ManagedVolume / ManagedAddress row is missing, deleted or released, or names another
cloud id, becomes an open :class:`OrphanResource`; one the cloud no longer has is resolved.

An operator adopts an orphan (it becomes a ManagedVolume / ManagedAddress of the department
whose project holds it, counted in that department's ledger) or deletes it (a volume only
when it is not attached).  :func:`request_orphan_action` decides and queues the work item in
the operator's unit of work; the quota of an adoption is reserved there, so a refusal is
immediate; :mod:`cloudmgr.servicerequests.orphan_work` does the cloud side later.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from cloudmgr.audit import services as audit
from cloudmgr.cloud.types import FloatingIp, Volume
from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow
from cloudmgr.errors import NotFound
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, DepartmentCloud, Role
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.errors import InvalidTransition, NotYourTurn, RequestInvalid
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState
from cloudmgr.workqueue.services import enqueue

#: The tags provisioning gives a server's data volumes and its public address.
VOLUME_TAG = re.compile(r"cm-r\d+-s\d+-d(\d+)")
ADDRESS_TAG = re.compile(r"cm-r\d+-s\d+-ip")

ORPHAN_ACTIONS = ("adopt", "delete")
RECONCILE_ACTOR = "system:requests.reconcile"


class OrphanNotFound(NotFound):
    code = "orphan_not_found"


class OrphanKind(enum.StrEnum):
    VOLUME = "volume"
    ADDRESS = "address"


class OrphanResolution(enum.StrEnum):
    GONE = "gone"  # the cloud no longer has it
    ADOPTED = "adopted"
    DELETED = "deleted"


class OrphanResource(Base):
    """A tagged volume or floating IP on a department's project that no row of ours owns."""

    __tablename__ = "orphan_resources"
    __table_args__ = (
        UniqueConstraint("kind", "cloud_id", "resource_id"),
        enum_check("kind", OrphanKind),
        enum_check("resolution", OrphanResolution),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[OrphanKind] = mapped_column(StrEnumType(OrphanKind, 16))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    resource_id: Mapped[str] = mapped_column(String(64))  # the cloud's id
    name: Mapped[str] = mapped_column(String(255))  # the volume's name, the address itself
    project_id: Mapped[str | None] = mapped_column(String(64))
    tag: Mapped[str] = mapped_column(String(128))
    size_gb: Mapped[int | None] = mapped_column(Integer)  # volumes
    volume_type: Mapped[str | None] = mapped_column(String(255))
    # The cloud server it is attached to / points at, when last seen: a volume is not deleted then.
    attached_to: Mapped[str | None] = mapped_column(String(64))
    found_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[OrphanResolution | None] = mapped_column(StrEnumType(OrphanResolution, 16))
    # The operator's action waiting for its work item (adopt, delete); None when none is.
    pending_action: Mapped[str | None] = mapped_column(String(16))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))  # adopted by
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("quota_reservations.id"))
    fault: Mapped[str | None] = mapped_column(Text)  # why the last action did not happen
    # The messages behind its English fault: {text: {"msgid", "params"}} (cloudmgr.stored_messages).
    messages: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")

    cloud: Mapped[Cloud] = relationship()
    department: Mapped[Department | None] = relationship()

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def deletable(self) -> bool:
        return self.kind == OrphanKind.ADDRESS or self.attached_to is None


# --- found by the reconcile job --------------------------------------------------------------


def _volume_owned(session: Session, volume: Volume) -> bool:
    row = session.scalar(select(ManagedVolume).where(ManagedVolume.idempotency_key == volume.tag))
    return row is not None and row.state != VolumeState.DELETED and row.volume_id in (None, volume.id)


def _address_owned(session: Session, address: FloatingIp) -> bool:
    row = session.scalar(select(ManagedAddress).where(ManagedAddress.idempotency_key == address.idempotency_tag))
    return row is not None and row.state != AddressState.RELEASED and row.floating_ip_id in (None, address.id)


def record_orphans(
    session: Session, cloud_id: int, volumes: Sequence[Volume], addresses: Sequence[FloatingIp]
) -> list[str]:
    """Record (once, audited) the tagged volumes and addresses nobody owns; resolve the open
    orphans of this cloud that are no longer among them.  Returns what is newly found."""
    found: list[tuple[OrphanKind, str, str, str | None, str, int | None, str | None, str | None]] = []
    for volume in volumes:
        if volume.tag and VOLUME_TAG.fullmatch(volume.tag) and not _volume_owned(session, volume):
            attached = volume.attachments[0].server_id if volume.attachments else None
            found.append(
                (OrphanKind.VOLUME, volume.id, volume.name or volume.id, volume.project_id, volume.tag,
                 volume.size_gb, volume.volume_type, attached)
            )  # fmt: skip
    for address in addresses:
        tag = address.idempotency_tag
        if tag and ADDRESS_TAG.fullmatch(tag) and not _address_owned(session, address):
            found.append(
                (OrphanKind.ADDRESS, address.id, address.address, address.project_id, tag, None, None,
                 address.server_id)
            )  # fmt: skip
    new: list[str] = []
    present = {(kind, resource_id) for kind, resource_id, *_ in found}
    for kind, resource_id, name, project_id, tag, size_gb, volume_type, attached in found:
        orphan = session.scalar(
            select(OrphanResource).where(
                OrphanResource.kind == kind,
                OrphanResource.cloud_id == cloud_id,
                OrphanResource.resource_id == resource_id,
            )
        )
        if orphan is not None and orphan.is_open:
            orphan.attached_to, orphan.size_gb = attached, size_gb
            continue
        if orphan is None:
            orphan = OrphanResource(kind=kind, cloud_id=cloud_id, resource_id=resource_id)
            session.add(orphan)
        # New, or found again after it was adopted and its row deleted: open (again).
        orphan.name, orphan.project_id, orphan.tag = name, project_id, tag
        orphan.size_gb, orphan.volume_type, orphan.attached_to = size_gb, volume_type, attached
        orphan.found_at, orphan.resolved_at, orphan.resolution = utcnow(), None, None
        orphan.pending_action, orphan.department_id, orphan.reservation_id, orphan.fault = None, None, None, None
        session.flush()
        new.append(f"{kind} {name} ({resource_id})")
        audit.record(
            session,
            actor=RECONCILE_ACTOR,
            action=f"{kind}.orphan",
            target_type="orphan_resource",
            target_id=orphan.id,
            detail={"resource_id": resource_id, "tag": tag, "project": project_id},
        )
    for orphan in session.scalars(
        select(OrphanResource).where(OrphanResource.cloud_id == cloud_id, OrphanResource.resolved_at.is_(None))
    ):
        if (orphan.kind, orphan.resource_id) not in present:
            resolve(session, orphan, OrphanResolution.GONE)
    return new


def resolve(session: Session, orphan: OrphanResource, resolution: OrphanResolution) -> None:
    """Close the orphan; a quota still held for an adoption that did not happen goes back."""
    if orphan.reservation_id is not None and resolution != OrphanResolution.ADOPTED:
        ledger.release(session, orphan.reservation_id, reason=f"orphan {orphan.kind} {orphan.resource_id} {resolution}")
        orphan.reservation_id = None
    orphan.resolved_at, orphan.resolution, orphan.pending_action = utcnow(), resolution, None


# --- the operator's actions ------------------------------------------------------------------


def list_orphan_resources(session: Session, *, include_resolved: bool = False) -> Sequence[OrphanResource]:
    query = select(OrphanResource).order_by(OrphanResource.id.desc())
    if not include_resolved:
        query = query.where(OrphanResource.resolved_at.is_(None))
    return session.scalars(query).all()


def may_act_on_orphans(actor: Actor) -> bool:
    return actor.role == Role.OPERATOR


def adoption_needs(orphan: OrphanResource) -> dict[Resource, int]:
    if orphan.kind == OrphanKind.VOLUME:
        return {Resource.VOLUMES: 1, Resource.GIGABYTES: orphan.size_gb or 0}
    return {Resource.FLOATING_IPS: 1}


def request_orphan_action(session: Session, actor: Actor, orphan_id: int, action: str) -> OrphanResource:
    """Adopt or delete an open orphan: checked and audited now, done on the cloud by a work item.

    Adoption reserves the department's quota here (QuotaExceeded names what does not fit);
    deleting a volume attached to a server is refused."""
    if not may_act_on_orphans(actor):
        raise NotYourTurn(Message(N_("only an operator adopts or deletes an orphaned volume or address")))
    if action not in ORPHAN_ACTIONS:
        raise RequestInvalid(message(N_("unknown action %(action)s"), action=action))
    orphan = session.get(OrphanResource, orphan_id, with_for_update=True)
    if orphan is None:
        raise OrphanNotFound(message(N_("no orphaned resource %(id)s"), id=orphan_id))
    if not orphan.is_open:
        if orphan.kind == OrphanKind.VOLUME:
            raise InvalidTransition(message(N_("volume %(name)s is already resolved"), name=orphan.name))
        raise InvalidTransition(message(N_("floating IP %(name)s is already resolved"), name=orphan.name))
    if orphan.pending_action is not None:
        if orphan.pending_action == "adopt":
            raise InvalidTransition(message(N_("%(name)s: its adoption is already queued"), name=orphan.name))
        raise InvalidTransition(message(N_("%(name)s: its deletion is already queued"), name=orphan.name))
    if action == "delete" and not orphan.deletable:
        raise InvalidTransition(
            message(
                N_("volume %(name)s is attached to server %(server)s: detach it before deleting it"),
                name=orphan.name,
                server=orphan.attached_to,
            )
        )
    if action == "adopt":
        link = session.scalar(
            select(DepartmentCloud).where(
                DepartmentCloud.cloud_id == orphan.cloud_id, DepartmentCloud.project_id == orphan.project_id
            )
        )
        if link is None:
            raise InvalidTransition(
                message(N_("no department holds project %(project)s on this cloud"), project=orphan.project_id)
            )
        reservation = ledger.reserve(
            session,
            department_id=link.department_id,
            cloud_id=orphan.cloud_id,
            amounts=adoption_needs(orphan),
            owner=f"orphan:{orphan.id}",
        )
        orphan.department_id, orphan.reservation_id = link.department_id, reservation.id
    orphan.pending_action, orphan.fault = action, None
    audit.record(
        session,
        actor=actor.username,
        action=f"{orphan.kind}.orphan.{action}",
        target_type="orphan_resource",
        target_id=orphan.id,
        detail={"resource_id": orphan.resource_id, "tag": orphan.tag},
    )
    enqueue(session, "orphan_action", f"orphan:{orphan.id}:{action}", {"orphan_id": orphan.id})
    return orphan


def adopt(session: Session, orphan: OrphanResource, *, volume: Volume | None, address: FloatingIp | None) -> None:
    """The cloud still has it: make it the department's (the row the tag names, revived if it
    was deleted or released) and turn the reserved quota into usage."""
    assert orphan.department_id is not None
    if volume is not None:
        row = session.scalar(select(ManagedVolume).where(ManagedVolume.idempotency_key == orphan.tag))
        if row is None:
            match = VOLUME_TAG.fullmatch(orphan.tag)
            row = ManagedVolume(idempotency_key=orphan.tag, index=int(match.group(1)) if match else 1)
            session.add(row)
        row.server_id = None  # the department's volume now, not a part of the server it was made for
        row.department_id, row.cloud_id = orphan.department_id, orphan.cloud_id
        row.size_gb, row.volume_type, row.volume_id = volume.size_gb, volume.volume_type, volume.id
        row.state = VolumeState.ATTACHED if volume.attachments else VolumeState.AVAILABLE
        row.fault = None
    elif address is not None:
        addr = session.scalar(select(ManagedAddress).where(ManagedAddress.idempotency_key == orphan.tag))
        if addr is None:
            addr = ManagedAddress(idempotency_key=orphan.tag)
            session.add(addr)
        addr.server_id = None
        addr.department_id, addr.cloud_id = orphan.department_id, orphan.cloud_id
        addr.floating_ip_id, addr.address = address.id, address.address
        addr.state = AddressState.ASSOCIATED if address.server_id else AddressState.ALLOCATED
        addr.fault = None
    if orphan.reservation_id is not None:
        ledger.consume(session, orphan.reservation_id, reason=f"adopted orphan {orphan.kind} {orphan.resource_id}")
    resolve(session, orphan, OrphanResolution.ADOPTED)
