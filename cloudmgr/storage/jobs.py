"""The ``storage`` work handler: makes on the cloud the change a storage service decided, between
short units of work of its own (never inside one), and records the outcome.

Every step is idempotent: a volume is created by its tag (a retried or taken-over item finds
the volume an earlier run made), attaching to the same server, detaching what is not attached,
extending to the size it has, deleting what is gone and allocating an address by its tag are
all no-ops the second time.  An unreachable cloud is retried with backoff; any other refusal,
or giving up, marks the change failed with the cloud's reason and gives its reservation back:
a volume that could not be made is ``failed``; one whose attach, detach, extend or delete
failed returns to the state it had, with the reason in its fault.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError, CloudUnavailable
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.db import Database
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import get_runtime
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState, disk_name
from cloudmgr.stored_messages import MAX_TEXT, stored_text
from cloudmgr.workqueue.services import ClaimedItem, GiveUp, RetryLater

log = logging.getLogger(__name__)

SYSTEM = Actor.system("storage")
VOLUME_TIMEOUT = 300.0


@dataclass(frozen=True)
class Target:
    """What one change needs of the database, read before the cloud is asked."""

    cloud_key: str
    os_cloud: str
    region: str | None
    project_id: str | None
    name: str
    size_gb: int
    volume_type: str | None
    idempotency_key: str
    volume_id: str | None
    floating_ip_id: str | None
    server_cloud_id: str | None
    external_network: str | None


class NotNow(Exception):
    """The row is no longer in the state the item was queued for: nothing to do."""


def handle_storage(db: Database, item: ClaimedItem) -> None:
    runtime = get_runtime()
    op = str(item.payload["op"])
    if op not in STEPS:
        raise GiveUp(f"unknown storage change {op!r}")
    try:
        target = _target(db, item.payload)
    except NotNow:
        return
    if target.project_id is None:
        _fail(db, item.payload, Message(NOT_SYNCED))
        return
    provider = runtime.providers.for_cloud(target.cloud_key, target.os_cloud, target.region)
    try:
        STEPS[op](db, provider, target, item.payload)
    except CloudUnavailable as exc:
        raise RetryLater(f"cloud {target.cloud_key} unreachable: {exc}") from exc
    except CloudError as exc:
        _fail(db, item.payload, str(exc))


def _give_up(db: Database, item: ClaimedItem, error: str) -> None:
    _fail(db, item.payload, message(N_("cloud unreachable: %(error)s"), error=error))


handle_storage.on_give_up = _give_up  # type: ignore[attr-defined]


# --- reading what a change needs -------------------------------------------------------------------

# The state each change leaves its row in while it is under way.
UNDER_WAY: dict[str, VolumeState | AddressState] = {
    "create": VolumeState.PENDING,
    "attach": VolumeState.ATTACHING,
    "detach": VolumeState.DETACHING,
    "extend": VolumeState.EXTENDING,
    "delete": VolumeState.DELETING,
    "address": AddressState.PENDING,
    "release": AddressState.RELEASING,
}


def _address_under_way(op: str) -> set[AddressState]:
    # An ask goes through allocated (the cloud holds it) on its way to associated.
    return {AddressState.PENDING, AddressState.ALLOCATED} if op == "address" else {AddressState.RELEASING}


def _target(db: Database, payload: Mapping[str, Any]) -> Target:
    op = str(payload["op"])
    with db.unit_of_work() as uow:
        session = uow.session
        server: ManagedServer | None
        if payload.get("volume_id") is not None:
            volume = session.get(ManagedVolume, int(payload["volume_id"]))
            if volume is None:
                raise GiveUp(f"volume {payload['volume_id']} does not exist")
            under_way = {UNDER_WAY[op]} | ({VolumeState.CREATING} if op == "create" else set())
            if volume.state not in under_way:
                raise NotNow()
            department_id, cloud_id = volume.department_id, volume.cloud_id
            server = session.get(ManagedServer, volume.server_id) if volume.server_id is not None else None
            name, size, volume_type = volume.name or volume.idempotency_key, volume.size_gb, volume.volume_type
            key, volume_id, floating_ip_id = volume.idempotency_key, volume.volume_id, None
        else:
            address = session.get(ManagedAddress, int(payload["address_id"]))
            if address is None or address.server_id is None:
                raise GiveUp(f"address {payload['address_id']} does not exist")
            if address.state not in _address_under_way(op):
                raise NotNow()
            server = session.get(ManagedServer, address.server_id)
            assert server is not None
            department_id, cloud_id = server.department_id, server.cloud_id
            name, size, volume_type, volume_id = address.idempotency_key, 0, None, None
            key, floating_ip_id = address.idempotency_key, address.floating_ip_id
        cloud = session.get(Cloud, cloud_id)
        assert cloud is not None
        link = session.scalar(
            select(DepartmentCloud).where(
                DepartmentCloud.department_id == department_id, DepartmentCloud.cloud_id == cloud_id
            )
        )
        return Target(
            cloud_key=cloud.key,
            os_cloud=cloud.os_cloud,
            region=cloud.region,
            project_id=link.project_id if link is not None else None,
            name=name,
            size_gb=size,
            volume_type=volume_type,
            idempotency_key=key,
            volume_id=volume_id,
            floating_ip_id=floating_ip_id,
            server_cloud_id=server.server_id if server is not None else None,
            external_network=cloud.external_network,
        )


# --- the changes ------------------------------------------------------------------------------------


def _create(db: Database, provider: CloudProvider, target: Target, payload: Mapping[str, Any]) -> None:
    assert target.project_id is not None
    made = provider.create_volume(
        target.project_id, target.name, target.size_gb, target.volume_type, target.idempotency_key
    )
    with db.unit_of_work() as uow:
        volume = uow.session.get_one(ManagedVolume, int(payload["volume_id"]), with_for_update=True)
        if volume.state == VolumeState.PENDING:
            volume.state, volume.volume_id = VolumeState.CREATING, made.id
    made = provider.wait_volume(made.id, {"available"}, timeout=VOLUME_TIMEOUT)
    with db.unit_of_work() as uow:
        session = uow.session
        volume = session.get_one(ManagedVolume, int(payload["volume_id"]), with_for_update=True)
        if volume.state not in {VolumeState.PENDING, VolumeState.CREATING}:
            return
        volume.state, volume.volume_id, volume.fault = VolumeState.AVAILABLE, made.id, None
        if ledger.consume(session, int(payload["reservation_id"]), reason="volume made"):
            volume.quota_counted = True
        _audit(session, "volume.created", "managed_volume", volume.id, {"volume_id": made.id})


def _attach(db: Database, provider: CloudProvider, target: Target, payload: Mapping[str, Any]) -> None:
    if not target.server_cloud_id or not target.volume_id:
        raise CloudError("the server or the volume is not on the cloud")
    provider.attach_volume(target.server_cloud_id, target.volume_id)
    provider.wait_volume(target.volume_id, {"in-use"}, timeout=VOLUME_TIMEOUT)
    with db.unit_of_work() as uow:
        volume = uow.session.get_one(ManagedVolume, int(payload["volume_id"]), with_for_update=True)
        if volume.state == VolumeState.ATTACHING:
            volume.state, volume.fault = VolumeState.ATTACHED, None
            _audit(uow.session, "volume.attached", "managed_volume", volume.id, {"server_id": volume.server_id})


def _detach(db: Database, provider: CloudProvider, target: Target, payload: Mapping[str, Any]) -> None:
    if target.server_cloud_id and target.volume_id:
        provider.detach_volume(target.server_cloud_id, target.volume_id)
        provider.wait_volume(target.volume_id, {"available"}, timeout=VOLUME_TIMEOUT)
    with db.unit_of_work() as uow:
        volume = uow.session.get_one(ManagedVolume, int(payload["volume_id"]), with_for_update=True)
        if volume.state == VolumeState.DETACHING:
            server_id = volume.server_id
            server = uow.session.get(ManagedServer, server_id) if server_id is not None else None
            if volume.name is None and server is not None:  # a request's disk keeps its server's name
                volume.name = disk_name(server.name, volume.index)
            volume.state, volume.server_id, volume.fault = VolumeState.AVAILABLE, None, None
            _audit(uow.session, "volume.detached", "managed_volume", volume.id, {"server_id": server_id})


def _extend(db: Database, provider: CloudProvider, target: Target, payload: Mapping[str, Any]) -> None:
    if not target.volume_id:
        raise CloudError("the volume is not on the cloud")
    new_size = int(payload["size_gb"])
    provider.extend_volume(target.volume_id, new_size)
    grown = provider.wait_volume(target.volume_id, {"available", "in-use"}, timeout=VOLUME_TIMEOUT)
    if grown.size_gb < new_size:
        # Cinder answers the extend at once and may still be at it: a later attempt looks again.
        raise CloudUnavailable(f"the volume is still {grown.size_gb} GB")
    with db.unit_of_work() as uow:
        session = uow.session
        volume = session.get_one(ManagedVolume, int(payload["volume_id"]), with_for_update=True)
        if volume.state != VolumeState.EXTENDING:
            return
        old = volume.size_gb
        volume.state, volume.size_gb, volume.fault = VolumeState(payload["previous"]), new_size, None
        ledger.consume(session, int(payload["reservation_id"]), reason="volume extended")
        _audit(session, "volume.extended", "managed_volume", volume.id, {"from_gb": old, "to_gb": new_size})


def _delete(db: Database, provider: CloudProvider, target: Target, payload: Mapping[str, Any]) -> None:
    if target.volume_id:
        provider.delete_volume(target.volume_id, wait=True, timeout=VOLUME_TIMEOUT)
    with db.unit_of_work() as uow:
        session = uow.session
        volume = session.get_one(ManagedVolume, int(payload["volume_id"]), with_for_update=True)
        if volume.state != VolumeState.DELETING:
            return
        volume.state, volume.fault = VolumeState.DELETED, None
        if volume.quota_counted:
            ledger.give_back_usage(
                session,
                department_id=volume.department_id,
                cloud_id=volume.cloud_id,
                amounts={Resource.VOLUMES: 1, Resource.GIGABYTES: volume.size_gb},
            )
            volume.quota_counted = False
        _audit(session, "volume.deleted", "managed_volume", volume.id, {"volume_id": target.volume_id})


def _address(db: Database, provider: CloudProvider, target: Target, payload: Mapping[str, Any]) -> None:
    assert target.project_id is not None
    if not target.external_network:
        raise CloudError(f"cloud {target.cloud_key} has no external network for public addresses")
    if not target.server_cloud_id:
        raise CloudError("the server is not on the cloud")
    floating_ip = provider.allocate_floating_ip(target.project_id, target.external_network, target.idempotency_key)
    with db.unit_of_work() as uow:
        row = uow.session.get_one(ManagedAddress, int(payload["address_id"]), with_for_update=True)
        if row.state == AddressState.PENDING:
            row.state, row.floating_ip_id, row.address = AddressState.ALLOCATED, floating_ip.id, floating_ip.address
    try:
        floating_ip = provider.associate_floating_ip(floating_ip.id, target.server_cloud_id)
    except CloudUnavailable:
        raise
    except CloudError:
        # Not kept on the project (it is paid for) when it cannot point at the server.
        try:
            provider.release_floating_ip(floating_ip.id)
        except CloudError:
            log.warning("could not release floating IP %s after a failed association", floating_ip.id)
        raise
    with db.unit_of_work() as uow:
        session = uow.session
        row = session.get_one(ManagedAddress, int(payload["address_id"]), with_for_update=True)
        if row.state not in {AddressState.PENDING, AddressState.ALLOCATED}:
            return
        row.state, row.floating_ip_id, row.address, row.fault = (
            AddressState.ASSOCIATED,
            floating_ip.id,
            floating_ip.address,
            None,
        )
        if ledger.consume(session, int(payload["reservation_id"]), reason="address associated"):
            row.quota_counted = True
        server = session.get_one(ManagedServer, row.server_id, with_for_update=True)
        server.addresses = {**(server.addresses or {}), "public": [floating_ip.address]}
        _audit(session, "address.associated", "managed_server", server.id, {"address": floating_ip.address})


def _release(db: Database, provider: CloudProvider, target: Target, payload: Mapping[str, Any]) -> None:
    if target.floating_ip_id:
        provider.release_floating_ip(target.floating_ip_id)
    with db.unit_of_work() as uow:
        session = uow.session
        row = session.get_one(ManagedAddress, int(payload["address_id"]), with_for_update=True)
        if row.state != AddressState.RELEASING:
            return
        released = row.address
        row.state, row.floating_ip_id, row.address, row.fault = AddressState.RELEASED, None, None, None
        server = session.get_one(ManagedServer, row.server_id, with_for_update=True)
        if row.quota_counted:
            ledger.give_back_usage(
                session,
                department_id=server.department_id,
                cloud_id=server.cloud_id,
                amounts={Resource.FLOATING_IPS: 1},
            )
            row.quota_counted = False
        server.addresses = {k: v for k, v in (server.addresses or {}).items() if k != "public"}
        _audit(session, "address.released", "managed_server", server.id, {"address": released})


STEPS = {
    "create": _create,
    "attach": _attach,
    "detach": _detach,
    "extend": _extend,
    "delete": _delete,
    "address": _address,
    "release": _release,
}


# --- failure ----------------------------------------------------------------------------------------


#: A row's fault when a change failed: the change, then why (one sentence per change, as
#: a change's name alone reads differently in other sentences).
OP_FAILED = {
    "create": N_("create: %(error)s"),
    "attach": N_("attach: %(error)s"),
    "detach": N_("detach: %(error)s"),
    "extend": N_("extend: %(error)s"),
    "delete": N_("delete: %(error)s"),
    "address": N_("address: %(error)s"),
    "release": N_("release: %(error)s"),
}
NOT_SYNCED = N_("the department has no project on this cloud yet (run clouds sync)")


def _fail(db: Database, payload: Mapping[str, Any], error: str | Message) -> None:
    """The change failed: the row says why (the change, then the cloud's words or our own
    sentence, a message the row keeps), and back to where it was; its reservation goes back."""
    op = str(payload["op"])
    known = OP_FAILED.get(op)
    sentence = message(known, error=error) if known else message(N_("%(part)s: %(error)s"), part=op, error=error)
    reason = str(sentence)[:MAX_TEXT]
    with db.unit_of_work() as uow:
        session = uow.session
        if payload.get("reservation_id") is not None:
            ledger.release(session, int(payload["reservation_id"]), reason=f"failed: {reason}")
        if payload.get("volume_id") is not None:
            volume = session.get(ManagedVolume, int(payload["volume_id"]), with_for_update=True)
            under_way = {UNDER_WAY[op]} | ({VolumeState.CREATING} if op == "create" else set())
            if volume is None or volume.state not in under_way:
                return
            if op == "create":
                volume.state = VolumeState.FAILED
            elif op == "attach":
                volume.state, volume.server_id = VolumeState.AVAILABLE, None
            elif op == "detach":
                volume.state = VolumeState.ATTACHED
            else:
                volume.state = VolumeState(payload["previous"])
            volume.fault = stored_text(volume, sentence)
            _audit(session, f"volume.{op}_failed", "managed_volume", volume.id, {}, reason=reason)
        else:
            row = session.get(ManagedAddress, int(payload["address_id"]), with_for_update=True)
            if row is None or row.state not in _address_under_way(op):
                return
            row.state = AddressState.FAILED if op == "address" else AddressState(payload["previous"])
            row.fault = stored_text(row, sentence)
            _audit(session, f"address.{op}_failed", "managed_server", row.server_id or 0, {}, reason=reason)


def _audit(
    session: Session,
    action: str,
    target_type: str,
    target_id: int,
    detail: dict[str, Any],
    *,
    reason: str | None = None,
) -> None:
    audit.record(
        session,
        actor=SYSTEM.username,
        action=action,
        target_type=target_type,
        target_id=target_id,
        reason=reason,
        detail=detail,
    )
