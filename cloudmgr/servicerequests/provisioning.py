"""The steps of provisioning, resizing and acting on servers, after the decision committed:
each opens its own short unit of work; the work handlers of :mod:`cloudmgr.servicerequests.jobs`
call the cloud between them.

Every step is idempotent.  A server is booted with its idempotency key in the cloud's
metadata; if the worker dies anywhere, the item's lease expires, another worker takes it
over, asks the cloud for the server by key and carries on: never a second server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
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
from cloudmgr.db import Database, utcnow
from cloudmgr.metrics import PROVISIONING_FAILURES, PROVISIONING_SECONDS
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud, NetworkZone
from cloudmgr.quotas import ledger
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.states import RequestState, ServerState
from cloudmgr.servicerequests.transitions import record_transition
from cloudmgr.workqueue.services import GiveUp, enqueue

log = logging.getLogger(__name__)

SYSTEM = Actor.system("provisioning")


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


def record_event(
    session: Session, request: ServiceRequest, target: RequestState, action: str, reason: str | None
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


def placement_metadata(db: Database, request_id: int) -> tuple[dict[str, str], str | None]:
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
            reason = str(refused)
            for server in request.servers:
                if server.state != ServerState.PENDING:
                    continue  # a server already asked of the cloud is waited for as before
                server.state, server.fault = ServerState.ERROR, reason[:2000]
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


def fail_server(db: Database, server_id: int, cloud_key: str, error: CloudError | str, *, reason_code: str) -> None:
    message = str(error)
    if isinstance(error, CloudQuotaExceeded):
        message = f"quota exceeded in the cloud: {error}"
    elif isinstance(error, CloudNoValidHost):
        message = f"no valid host: {error}"
    elif isinstance(error, CloudNotFound):
        message = f"image or flavor missing on the cloud: {error}"
    elif isinstance(error, CloudBadRequest):
        message = f"the cloud refused the request (is the image or flavor still there?): {error}"
    with db.unit_of_work() as uow:
        server = uow.session.get(ManagedServer, server_id, with_for_update=True)
        if server is None or server.state not in {ServerState.PENDING, ServerState.BUILDING}:
            return
        server.state, server.fault = ServerState.ERROR, message[:2000]
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


def record_building(db: Database, server_id: int, cloud_server: Server) -> None:
    with db.unit_of_work() as uow:
        server = uow.session.get(ManagedServer, server_id, with_for_update=True)
        if server is not None and server.state == ServerState.PENDING:
            server.state, server.server_id = ServerState.BUILDING, cloud_server.id


def record_active(db: Database, server_id: int, cloud_server: Server) -> None:
    with db.unit_of_work() as uow:
        server = uow.session.get(ManagedServer, server_id, with_for_update=True)
        if server is None or server.state not in {ServerState.PENDING, ServerState.BUILDING}:
            return
        server.state, server.server_id = ServerState.ACTIVE, cloud_server.id
        server.host = cloud_server.host
        server.addresses = {k: list(v) for k, v in cloud_server.addresses.items()}
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


def server_rows(db: Database, ids: Sequence[int]) -> list[tuple[int, str, str, str, str | None]]:
    with db.unit_of_work() as uow:
        rows = uow.session.scalars(select(ManagedServer).where(ManagedServer.id.in_(ids)).order_by(ManagedServer.index))
        return [(s.id, s.name, s.idempotency_key, s.state, s.server_id) for s in rows]


def finish_request(db: Database, request_id: int, *, why: str | None = None) -> None:
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
        reason = f"{running} active, {failed} failed" if failed else None
        if reason and why:
            reason = f"{reason}: {why}"
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


def resize_refusal(session: Session, request: ServiceRequest) -> str | None:
    """The classified rule right before the cloud resizes the server (its system may have
    been reclassified after the approval): the refusal's reason, audited, or None."""
    from cloudmgr.inventory.classification import ClassifiedPlacementRefused
    from cloudmgr.servicerequests.services import check_request_placeable

    try:
        check_request_placeable(session, SYSTEM, request, "resize.job")
    except ClassifiedPlacementRefused as refused:
        return str(refused)
    return None


# --- stop, start, delete ------------------------------------------------------------------------------


def retire_if_done(session: Session, request_id: int) -> None:
    request = session.get(ServiceRequest, request_id)
    if request is None:
        return
    if request.state in {
        RequestState.ACTIVE,
        RequestState.PARTIALLY_ACTIVE,
        RequestState.FAILED,
    } and all(s.state in {ServerState.DELETED, ServerState.CANCELLED, ServerState.ERROR} for s in request.servers):
        record_event(session, request, RequestState.RETIRED, "retire", "every server deleted")
