"""The steps of provisioning, resizing and acting on servers, after the decision committed:
each opens its own short unit of work; the work handlers of :mod:`cloudmgr.servicerequests.jobs`
call the cloud between them.

Every step is idempotent.  A server is booted with its idempotency key in the cloud's
metadata; if the worker dies anywhere, the item's lease expires, another worker takes it
over, asks the cloud for the server by key and carries on: never a second server.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.cloud import (
    CloudBadRequest,
    CloudError,
    CloudNotFound,
    CloudNoValidHost,
    CloudQuotaExceeded,
    CloudTimeout,
    Server,
)
from cloudmgr.cloud.types import FloatingIp, SecurityRule
from cloudmgr.db import Database, utcnow
from cloudmgr.firewall import services as firewall
from cloudmgr.firewall.errors import AdminNetworkUnset, WorldOpenOnClosedZone
from cloudmgr.firewall.rules import Direction, Protocol
from cloudmgr.messages import Message
from cloudmgr.metrics import PROVISIONING_FAILURES, PROVISIONING_SECONDS
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud, NetworkZone
from cloudmgr.quotas import ledger
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState, disk_name
from cloudmgr.servicerequests.states import RequestState, ServerState
from cloudmgr.servicerequests.texts import cloud_fault, part_failed, servers_failed
from cloudmgr.servicerequests.transitions import record_transition
from cloudmgr.stored_messages import stored_text
from cloudmgr.workqueue.services import GiveUp, enqueue

log = logging.getLogger(__name__)

SYSTEM = Actor.system("provisioning")


@dataclass(frozen=True)
class FirewallGroups:
    """The security groups a request's servers boot in (from its firewall plan): the request's
    own group with its rules, and the department's group the "department_only" rules name."""

    group_name: str
    department_group: str
    rules: tuple[firewall.ResolvedRule, ...]


@dataclass(frozen=True)
class ProvisioningTarget:
    request_id: int
    cloud_key: str
    os_cloud: str
    region: str | None
    project_id: str | None
    network_id: str | None
    flavor_ref: str
    image_ref: str | None
    department_key: str
    # What makes the servers usable (issue 16): the keypair put in them (its name on the cloud and
    # the public key copied at submission), cloud-init data, their firewall, and where the
    # public addresses come from.
    key_name: str | None = None
    public_key: str | None = None
    user_data: str | None = None
    firewall: FirewallGroups | None = None
    external_network: str | None = None
    # Why the firewall cannot be planned now (e.g. the admin network was cleared since approval).
    firewall_problem: str | Message | None = None


def cloud_keypair_name(request: ServiceRequest) -> str | None:
    """The keypair's name on the cloud: the user's name for the key (cleaned to what Nova takes)
    and a digest of its fingerprint, so two users' keys both called "laptop" never collide (the
    provider refuses a name holding another key) and the same key is found again."""
    if not request.ssh_key_name or not request.ssh_public_key:
        return None
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", request.ssh_key_name).strip("-")[:40] or "key"
    digest = hashlib.sha256((request.ssh_key_fingerprint or request.ssh_public_key).encode()).hexdigest()[:10]
    return f"cm-{label}-{digest}"


def volume_key(request_id: int, server_index: int, disk_index: int) -> str:
    """A data volume's tag: the same for every attempt of the server, so a retry finds it."""
    return f"cm-r{request_id}-s{server_index}-d{disk_index}"


def address_key(request_id: int, server_index: int) -> str:
    return f"cm-r{request_id}-s{server_index}-ip"


def _ensure_parts(session: Session, request: ServiceRequest) -> None:
    """The request's data disks and public address as rows of each server still to provision,
    written once (a rerun finds them)."""
    for server in request.servers:
        if server.state not in {ServerState.PENDING, ServerState.BUILDING}:
            continue
        have = set(session.scalars(select(ManagedVolume.index).where(ManagedVolume.server_id == server.id)))
        for index, disk in enumerate(request.data_disks or [], start=1):
            if index in have:
                continue
            session.add(
                ManagedVolume(
                    server_id=server.id,
                    request_id=request.id,
                    department_id=server.department_id,
                    cloud_id=server.cloud_id,
                    index=index,
                    size_gb=int(disk["size_gb"]),
                    volume_type=disk.get("volume_type"),
                    idempotency_key=volume_key(request.id, server.index, index),
                )
            )
        if request.public_address and (
            session.scalar(select(ManagedAddress.id).where(ManagedAddress.server_id == server.id)) is None
        ):
            session.add(
                ManagedAddress(
                    server_id=server.id,
                    department_id=server.department_id,
                    cloud_id=server.cloud_id,
                    idempotency_key=address_key(request.id, server.index),
                )
            )
    session.flush()


def _firewall_groups(session: Session, request: ServiceRequest) -> tuple[FirewallGroups | None, str | Message | None]:
    try:
        plan = firewall.request_plan(session, request.id, request.department, request.zone)
    except (AdminNetworkUnset, WorldOpenOnClosedZone) as exc:
        return None, exc.translatable or str(exc)
    if not plan.rules:
        return None, None  # no firewall asked for: the project's default group
    return FirewallGroups(plan.group_name, plan.department_group, plan.rules), None


def record_event(
    session: Session, request: ServiceRequest, target: RequestState, action: str, reason: str | Message | None
) -> None:
    """A transition the provisioning job makes: the one transition writer, acting as the system."""
    record_transition(session, request, target, actor=SYSTEM, action=action, reason=reason)


def start_provisioning(db: Database, request_id: int) -> tuple[ProvisioningTarget, list[int]] | None:
    """Move an approved request to provisioning and say what is left to do."""
    with db.unit_of_work() as uow:
        session = uow.session
        request = session.get(ServiceRequest, request_id, with_for_update=True)
        if request is None:
            raise GiveUp(f"request {request_id} does not exist")
        if request.state == RequestState.APPROVED:
            request.provisioning_started_at = utcnow()
            record_event(session, request, RequestState.PROVISIONING, "provision", None)
        elif request.state != RequestState.PROVISIONING:
            return None  # cancelled, or already finished by an earlier run
        cloud = session.get(Cloud, request.cloud_id)
        assert cloud is not None
        link = session.scalar(
            select(DepartmentCloud).where(
                DepartmentCloud.department_id == request.department_id, DepartmentCloud.cloud_id == request.cloud_id
            )
        )
        zone = session.scalar(
            select(NetworkZone).where(NetworkZone.cloud_id == request.cloud_id, NetworkZone.zone == request.zone)
        )
        todo = [s.id for s in request.servers if s.state in {ServerState.PENDING, ServerState.BUILDING}]
        _ensure_parts(session, request)
        groups, firewall_problem = _firewall_groups(session, request)
        return (
            ProvisioningTarget(
                request_id=request.id,
                cloud_key=cloud.key,
                os_cloud=cloud.os_cloud,
                region=cloud.region,
                project_id=link.project_id if link else None,
                network_id=zone.network_id if zone else None,
                flavor_ref=request.flavor.external_id,
                image_ref=request.image.external_id if request.image else None,
                department_key=request.department.key,
                key_name=cloud_keypair_name(request),
                public_key=request.ssh_public_key,
                user_data=request.user_data,
                firewall=groups,
                external_network=cloud.external_network,
                firewall_problem=firewall_problem,
            ),
            todo,
        )


FAILURE_REASONS = {
    CloudBadRequest: "cloud_refused",
    CloudQuotaExceeded: "cloud_quota_exceeded",
    CloudNoValidHost: "no_valid_host",
    CloudNotFound: "image_or_flavor_missing",
    CloudTimeout: "timeout",
}


def placement_metadata(db: Database, request_id: int) -> tuple[dict[str, str], str | Message | None]:
    """The classified rule right before a batch boots: the request's legacy system is read
    as it is NOW (it may have been reclassified after the approval).

    Returns the metadata every server of the request carries (the system's hostname and
    classification, or an explicit non-classified claim: see
    :func:`cloudmgr.inventory.classification.server_metadata`) and, when the system is
    classified, the refusal: then every server not yet asked of the cloud is failed with
    the reason and its reservation released, and the refusal is audited (entry point
    "provisioning"), all in this one unit of work.  Nothing is booted.
    """
    from cloudmgr.inventory.classification import ClassifiedPlacementRefused, server_metadata
    from cloudmgr.inventory.models import LegacySystem
    from cloudmgr.servicerequests.services import check_request_placeable

    with db.unit_of_work() as uow:
        session = uow.session
        request = session.get(ServiceRequest, request_id, with_for_update=True)
        if request is None:
            raise GiveUp(f"request {request_id} does not exist")
        system = session.get(LegacySystem, request.legacy_system_id) if request.legacy_system_id else None
        metadata = server_metadata(system)
        try:
            check_request_placeable(session, SYSTEM, request, "provisioning")
        except ClassifiedPlacementRefused as refused:
            reason: str | Message = refused.translatable or str(refused)
            for server in request.servers:
                if server.state != ServerState.PENDING:
                    continue  # a server already asked of the cloud is waited for as before
                server.state, server.fault = ServerState.ERROR, stored_text(request, reason)
                if server.reservation_id is not None:
                    ledger.release(session, server.reservation_id, reason="refused: classified_system")
                audit.record(
                    session,
                    actor=SYSTEM.username,
                    action="server.failed",
                    target_type="managed_server",
                    target_id=server.id,
                    reason=reason,
                    detail={"code": "classified_system", "entry_point": "provisioning"},
                )
            cloud_key = request.cloud.key
        else:
            return metadata, None
    PROVISIONING_FAILURES.labels(cloud=cloud_key, reason="classified_system").inc()
    return metadata, reason


def fail_server(
    db: Database, server_id: int, cloud_key: str, error: CloudError | Message | str, *, reason_code: str
) -> None:
    """The server failed: its fault says why (a sentence of ours with the cloud's words in it,
    kept as a message on its request, or the cloud's words alone)."""
    message: str | Message = error if isinstance(error, Message) else str(error)
    if isinstance(error, CloudError) and type(error) in FAILURE_REASONS:
        message = cloud_fault(FAILURE_REASONS[type(error)], error)
    with db.unit_of_work() as uow:
        request = _locked_request_of(uow.session, server_id)
        server = uow.session.get(ManagedServer, server_id, with_for_update=True)
        if request is None or server is None or server.state not in {ServerState.PENDING, ServerState.BUILDING}:
            return
        server.state, server.fault = ServerState.ERROR, stored_text(request, message)
        if server.reservation_id is not None:
            ledger.release(uow.session, server.reservation_id, reason=f"failed: {reason_code}")
        audit.record(
            uow.session,
            actor=SYSTEM.username,
            action="server.failed",
            target_type="managed_server",
            target_id=server.id,
            reason=message,
        )
    PROVISIONING_FAILURES.labels(cloud=cloud_key, reason=reason_code).inc()


def claim_first_boots(db: Database, server_ids: Sequence[int]) -> set[int]:
    """Before a batch boots: its PENDING servers become BUILDING with no cloud id yet ("asked
    of the cloud"), in one transaction, and their ids are returned.  No earlier boot with
    their keys can have reached the cloud, so theirs skips the look-up by key.  A server found
    BUILDING with no cloud id was asked by a run that stopped before it recorded the answer: it
    is not returned, and its boot looks up first."""
    if not server_ids:
        return set()
    with db.unit_of_work() as uow:
        return claim_rows(uow.session, ManagedServer, server_ids, ServerState.PENDING, ServerState.BUILDING)


def claim_rows(session: Session, model: type[Any], ids: Sequence[int], pending: str, asked: str) -> set[int]:
    """Move each of ``ids`` from ``pending`` to ``asked`` by a conditional UPDATE, so that of
    two runs at once only one claims a row (on SQLite as on PostgreSQL); the claimed ids."""
    claimed = set()
    for row_id in ids:
        moved = session.execute(
            update(model)
            .where(model.id == row_id, model.state == pending)
            .values(state=asked)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            claimed.add(row_id)
    return claimed


def record_building(db: Database, booted: Sequence[tuple[int, str]]) -> None:
    """The cloud's ids of a batch's booted servers (row id, cloud id), in one transaction."""
    if not booted:
        return
    with db.unit_of_work() as uow:
        for server_id, cloud_server_id in booted:
            server = uow.session.get(ManagedServer, server_id, with_for_update=True)
            if server is None or server.server_id or server.state not in {ServerState.PENDING, ServerState.BUILDING}:
                continue
            server.state, server.server_id = ServerState.BUILDING, cloud_server_id


def record_active(db: Database, server_id: int, cloud_server: Server) -> None:
    with db.unit_of_work() as uow:
        server = uow.session.get(ManagedServer, server_id, with_for_update=True)
        if server is None or server.state not in {ServerState.PENDING, ServerState.BUILDING}:
            return
        # With parts still to make (volumes, an address) it stays BUILDING: a server is ready, and
        # ACTIVE, only with all its parts (record_ready).
        waiting = _parts_pending(uow.session, server.id)
        server.state = ServerState.BUILDING if waiting else ServerState.ACTIVE
        server.server_id = cloud_server.id
        server.host = cloud_server.host
        public = server.addresses.get("public") if server.addresses else None
        server.addresses = {k: list(v) for k, v in cloud_server.addresses.items()}
        if public:
            server.addresses["public"] = list(public)
        if server.active_at is not None:
            return  # recorded by an earlier run: the parts are what is left
        server.active_at = utcnow()
        if server.reservation_id is not None:
            ledger.consume(uow.session, server.reservation_id)
        audit.record(
            uow.session,
            actor=SYSTEM.username,
            action="server.active",
            target_type="managed_server",
            target_id=server.id,
            detail={"cloud_server_id": cloud_server.id, "host": cloud_server.host},
        )


def _parts_pending(session: Session, server_id: int) -> bool:
    volumes = session.scalar(
        select(ManagedVolume.id).where(
            ManagedVolume.server_id == server_id, ManagedVolume.state != VolumeState.ATTACHED
        )
    )
    address = session.scalar(
        select(ManagedAddress.id).where(
            ManagedAddress.server_id == server_id, ManagedAddress.state != AddressState.ASSOCIATED
        )
    )
    return volumes is not None or address is not None


# --- the parts of a server (issue 16) -------------------------------------------------------------


def security_rules(groups: FirewallGroups, department_group_id: str) -> list[SecurityRule]:
    """The request's group's rules as the cloud takes them: "department_only" names the
    department's group by its id; egress stays open (Neutron's default) unless the plan says
    otherwise, since outbound connections (package mirrors, time) are not what a template asks."""
    rules: dict[SecurityRule, None] = {}
    for rule in groups.rules:
        protocol = None if rule.protocol is Protocol.ANY else rule.protocol.value
        remote_group = department_group_id if rule.remote_group is not None else None
        rules.setdefault(
            SecurityRule(rule.direction.value, protocol, rule.port_min, rule.port_max, rule.remote_cidr, remote_group)
        )
    if not any(rule.direction is Direction.EGRESS for rule in groups.rules):
        rules.setdefault(SecurityRule("egress", remote_cidr="0.0.0.0/0"))
        rules.setdefault(SecurityRule("egress", remote_cidr="::/0"))
    return list(rules)


@dataclass(frozen=True)
class VolumePart:
    id: int
    index: int
    name: str
    size_gb: int
    volume_type: str | None
    idempotency_key: str
    volume_id: str | None
    state: VolumeState


@dataclass(frozen=True)
class AddressPart:
    id: int
    idempotency_key: str
    floating_ip_id: str | None
    state: AddressState


def server_parts(db: Database, server_id: int) -> tuple[list[VolumePart], AddressPart | None]:
    """The parts of the server not yet done (failed ones included: a retry continues them)."""
    with db.unit_of_work() as uow:
        session = uow.session
        server = session.get(ManagedServer, server_id)
        assert server is not None
        volumes = [
            VolumePart(
                v.id,
                v.index,
                disk_name(server.name, v.index),
                v.size_gb,
                v.volume_type,
                v.idempotency_key,
                v.volume_id,
                v.state,
            )
            for v in session.scalars(
                select(ManagedVolume)
                .where(ManagedVolume.server_id == server_id, ManagedVolume.state != VolumeState.ATTACHED)
                .order_by(ManagedVolume.index)
            )
        ]
        row = session.scalar(
            select(ManagedAddress).where(
                ManagedAddress.server_id == server_id, ManagedAddress.state != AddressState.ASSOCIATED
            )
        )
        address = AddressPart(row.id, row.idempotency_key, row.floating_ip_id, row.state) if row else None
        return volumes, address


def record_volumes(db: Database, made: Sequence[tuple[int, str]], *, state: VolumeState) -> None:
    """What the cloud answered for a phase's volumes (part row id, the cloud's volume id), in
    one transaction."""
    if not made:
        return
    with db.unit_of_work() as uow:
        for volume_row_id, volume_id in made:
            volume = uow.session.get(ManagedVolume, volume_row_id, with_for_update=True)
            if volume is None or volume.server_id is None:
                continue  # kept when its server was deleted: no longer provisioning's
            volume.volume_id, volume.state, volume.fault = volume_id, state, None
            if state == VolumeState.ATTACHED:
                audit.record(
                    uow.session,
                    actor=SYSTEM.username,
                    action="volume.attached",
                    target_type="managed_server",
                    target_id=volume.server_id,
                    detail={"volume_id": volume_id, "index": volume.index, "size_gb": volume.size_gb},
                )


def record_addresses(db: Database, made: Sequence[tuple[int, FloatingIp]], *, state: AddressState) -> None:
    """What the cloud answered for a phase's addresses (part row id, the floating IP), in one
    transaction."""
    if not made:
        return
    with db.unit_of_work() as uow:
        session = uow.session
        for address_row_id, floating_ip in made:
            address = session.get(ManagedAddress, address_row_id, with_for_update=True)
            if address is None:
                continue
            address.floating_ip_id, address.address, address.state, address.fault = (
                floating_ip.id,
                floating_ip.address,
                state,
                None,
            )
            if state != AddressState.ASSOCIATED:
                continue
            server = session.get(ManagedServer, address.server_id, with_for_update=True)
            assert server is not None
            server.addresses = {**(server.addresses or {}), "public": [floating_ip.address]}
            audit.record(
                session,
                actor=SYSTEM.username,
                action="address.associated",
                target_type="managed_server",
                target_id=server.id,
                detail={"floating_ip_id": floating_ip.id, "address": floating_ip.address},
            )


def _locked_request_of(session: Session, server_id: int) -> ServiceRequest | None:
    """The request of the server, locked (before the server: the order of every writer), as it
    keeps the messages of its servers' faults."""
    request_id = session.scalar(select(ManagedServer.request_id).where(ManagedServer.id == server_id))
    return None if request_id is None else session.get(ServiceRequest, request_id, with_for_update=True)


def _words(error: CloudError | Message | str) -> Message | str:
    """A failure as a row keeps it: our own sentence as a message, the cloud's words as text."""
    return error if isinstance(error, Message) else str(error)


def fail_part(
    db: Database, server_id: int, cloud_key: str, part: Message, error: CloudError | Message | str, **row: int
) -> None:
    """A part (``part`` names it: "data disk 1", "public address", "keypair", "firewall", see
    cloudmgr.servicerequests.texts) could not be made: the server fails with the part named in
    its fault.  The VM and the parts made so far stay: an operator's retry continues from here
    (everything goes by tags).  ``row`` (volume_row_id= or address_row_id=) marks the part's own
    row failed too."""
    sentence = part_failed(part, error)
    with db.unit_of_work() as uow:
        session = uow.session
        request = _locked_request_of(session, server_id)
        if "volume_row_id" in row:
            volume = session.get(ManagedVolume, row["volume_row_id"], with_for_update=True)
            if volume is not None:
                volume.state, volume.fault = VolumeState.FAILED, stored_text(volume, _words(error))
        if "address_row_id" in row:
            address = session.get(ManagedAddress, row["address_row_id"], with_for_update=True)
            if address is not None:
                address.state, address.fault = AddressState.FAILED, stored_text(address, _words(error))
        server = session.get(ManagedServer, server_id, with_for_update=True)
        if request is None or server is None or server.state not in {ServerState.PENDING, ServerState.BUILDING}:
            return
        message = stored_text(request, sentence)
        server.state, server.fault = ServerState.ERROR, message
        if server.active_at is None and server.reservation_id is not None:
            # Nothing was booted (a keypair or the firewall failed first): the quota goes back.
            ledger.release(session, server.reservation_id, reason=f"failed: {part}")
        audit.record(
            session,
            actor=SYSTEM.username,
            action="server.failed",
            target_type="managed_server",
            target_id=server.id,
            reason=sentence,
            detail={"part": str(part)},
        )
    PROVISIONING_FAILURES.labels(cloud=cloud_key, reason="part_failed").inc()


def record_ready(db: Database, server_ids: Sequence[int]) -> None:
    """Every part made: the servers are ready (ACTIVE), in one transaction."""
    with db.unit_of_work() as uow:
        session = uow.session
        for server_id in server_ids:
            server = session.get(ManagedServer, server_id, with_for_update=True)
            if server is None or server.state != ServerState.BUILDING or server.active_at is None:
                continue
            if _parts_pending(session, server_id):
                continue
            server.state, server.fault = ServerState.ACTIVE, None
            audit.record(
                session, actor=SYSTEM.username, action="server.ready", target_type="managed_server", target_id=server.id
            )


def server_rows(db: Database, ids: Sequence[int]) -> list[tuple[int, str, str, str, str | None]]:
    with db.unit_of_work() as uow:
        rows = uow.session.scalars(select(ManagedServer).where(ManagedServer.id.in_(ids)).order_by(ManagedServer.index))
        return [(s.id, s.name, s.idempotency_key, s.state, s.server_id) for s in rows]


def finish_request(db: Database, request_id: int, *, why: str | Message | None = None) -> None:
    """Set the request's final state from its servers', once none is still on its way
    (``why``: what failed them, e.g. the classified rule's refusal, said on the request)."""
    with db.unit_of_work() as uow:
        session = uow.session
        request = session.get(ServiceRequest, request_id, with_for_update=True)
        if request is None or request.state != RequestState.PROVISIONING:
            return
        states = [s.state for s in request.servers if s.state != ServerState.CANCELLED]
        if any(s in {ServerState.PENDING, ServerState.BUILDING} for s in states):
            return
        running = sum(s in {ServerState.ACTIVE, ServerState.STOPPED} for s in states)
        failed = sum(s == ServerState.ERROR for s in states)
        if failed == 0:
            target = RequestState.ACTIVE
        elif running:
            target = RequestState.PARTIALLY_ACTIVE
        else:
            target = RequestState.FAILED
        reason = servers_failed(running, failed, why) if failed else None
        record_event(session, request, target, "provisioned", reason)
        request.finished_at = utcnow()
        if request.provisioning_started_at is not None:
            PROVISIONING_SECONDS.labels(cloud=request.cloud.key).observe(
                (request.finished_at - request.provisioning_started_at).total_seconds()
            )
        event = "provisioned" if failed == 0 else "provisioning_failed"
        enqueue(
            session,
            "notify",
            f"notify:{event}:{request.id}:{request.finished_at.timestamp()}",
            {"event": event, "request_id": request.id},
            max_attempts=5,
        )


# --- resize ------------------------------------------------------------------------------------


def resize_refusal(session: Session, request: ServiceRequest) -> str | Message | None:
    """The classified rule right before the cloud resizes the server (its system may have
    been reclassified after the approval): the refusal's reason, audited, or None."""
    from cloudmgr.inventory.classification import ClassifiedPlacementRefused
    from cloudmgr.servicerequests.services import check_request_placeable

    try:
        check_request_placeable(session, SYSTEM, request, "resize.job")
    except ClassifiedPlacementRefused as refused:
        return refused.translatable or str(refused)
    return None
