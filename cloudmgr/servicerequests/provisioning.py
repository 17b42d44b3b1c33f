"""Work handlers: provisioning, resizing and acting on servers, after the decision committed.

Every step is idempotent.  A server is booted with its idempotency key in the cloud's
metadata; if the worker dies anywhere, the item's lease expires, another worker takes it
over, asks the cloud for the server by key and carries on: never a second server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from cloudmgr.audit import services as audit
from cloudmgr.cloud import (
    CloudBadRequest,
    CloudError,
    CloudNotFound,
    CloudNoValidHost,
    CloudQuotaExceeded,
    CloudTimeout,
    CloudUnavailable,
    Server,
    ServerSpec,
)
from cloudmgr.db import Database, utcnow
from cloudmgr.metrics import PROVISIONING_FAILURES, PROVISIONING_SECONDS
from cloudmgr.organisation.models import Cloud, DepartmentCloud, NetworkZone
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import get_runtime
from cloudmgr.servicerequests.models import ManagedServer, RequestEvent, ServiceRequest
from cloudmgr.servicerequests.states import REQUEST_MACHINE, RequestState, ServerState
from cloudmgr.workqueue.services import ClaimedItem, GiveUp, RetryLater, enqueue, renew

log = logging.getLogger(__name__)

SYSTEM = "system:provisioning"


@dataclass(frozen=True)
class _Target:
    request_id: int
    cloud_key: str
    os_cloud: str
    region: str | None
    project_id: str | None
    network_id: str | None
    flavor_ref: str
    image_ref: str | None
    department_key: str


def _event(session: object, request: ServiceRequest, target: RequestState, action: str, reason: str | None) -> None:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    previous = REQUEST_MACHINE.apply(request, target)
    request.state_reason = reason
    session.add(
        RequestEvent(
            request_id=request.id,
            actor=SYSTEM,
            action=action,
            from_state=previous.value,
            to_state=target.value,
            reason=reason,
        )
    )
    audit.record(
        session,
        actor=SYSTEM,
        action=f"request.{action}",
        target_type="service_request",
        target_id=request.id,
        reason=reason,
        detail={"from": previous.value, "to": target.value},
    )


def _target(db: Database, request_id: int) -> tuple[_Target, list[int]] | None:
    """Move an approved request to provisioning and say what is left to do."""
    with db.unit_of_work() as uow:
        session = uow.session
        request = session.get(ServiceRequest, request_id, with_for_update=True)
        if request is None:
            raise GiveUp(f"request {request_id} does not exist")
        if request.state == RequestState.APPROVED:
            request.provisioning_started_at = utcnow()
            _event(session, request, RequestState.PROVISIONING, "provision", None)
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
            _Target(
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


def _placement_metadata(db: Database, request_id: int) -> tuple[dict[str, str], str | None]:
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
                    actor=SYSTEM,
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


def _fail_server(db: Database, server_id: int, cloud_key: str, error: CloudError | str, *, reason_code: str) -> None:
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
            actor=SYSTEM,
            action="server.failed",
            target_type="managed_server",
            target_id=server.id,
            reason=message,
        )
    PROVISIONING_FAILURES.labels(cloud=cloud_key, reason=reason_code).inc()


def _record_building(db: Database, server_id: int, cloud_server: Server) -> None:
    with db.unit_of_work() as uow:
        server = uow.session.get(ManagedServer, server_id, with_for_update=True)
        if server is not None and server.state == ServerState.PENDING:
            server.state, server.server_id = ServerState.BUILDING, cloud_server.id


def _record_active(db: Database, server_id: int, cloud_server: Server) -> None:
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
            actor=SYSTEM,
            action="server.active",
            target_type="managed_server",
            target_id=server.id,
            detail={"cloud_server_id": cloud_server.id, "host": cloud_server.host},
        )


def _server_rows(db: Database, ids: Sequence[int]) -> list[tuple[int, str, str, str, str | None]]:
    with db.unit_of_work() as uow:
        rows = uow.session.scalars(select(ManagedServer).where(ManagedServer.id.in_(ids)).order_by(ManagedServer.index))
        return [(s.id, s.name, s.idempotency_key, s.state, s.server_id) for s in rows]


def handle_provision(db: Database, item: ClaimedItem) -> None:
    runtime = get_runtime()
    settings = runtime.settings
    found = _target(db, int(item.payload["request_id"]))
    if found is None:
        return
    target, todo = found
    if target.project_id is None or target.network_id is None:
        problem = "the department has no project on this cloud yet, or the zone's network is unknown (run clouds sync)"
        for server_id in todo:
            _fail_server(db, server_id, target.cloud_key, problem, reason_code="not_synced")
        finish_request(db, target.request_id)
        return
    provider = runtime.providers.for_cloud(target.cloud_key, target.os_cloud, target.region)
    batch_size = max(settings.max_concurrent_boots, 1)
    refusal = None
    for start in range(0, len(todo), batch_size):
        # Checked before every batch: a long request must not go on booting a system
        # reclassified meanwhile.  A refusal fails the pending servers (the rows read next).
        placement, refused = _placement_metadata(db, target.request_id)
        refusal = refusal or refused
        batch = _server_rows(db, todo[start : start + batch_size])
        building: list[tuple[int, str]] = []
        for server_id, name, key, state, cloud_server_id in batch:
            if state == ServerState.BUILDING and cloud_server_id:
                building.append((server_id, cloud_server_id))
                continue
            if state != ServerState.PENDING:
                continue
            spec = ServerSpec(
                name=name,
                flavor_id=target.flavor_ref,
                image_id=target.image_ref or "",
                network_id=target.network_id,
                idempotency_key=key,
                metadata={
                    **placement,
                    "cloudmgr_request": str(target.request_id),
                    "cloudmgr_server": str(server_id),
                    "cloudmgr_department": target.department_key,
                },
            )
            try:
                cloud_server = provider.create_server(target.project_id, spec)
            except CloudUnavailable as exc:
                raise RetryLater(f"cloud {target.cloud_key} unreachable: {exc}") from exc
            except CloudError as exc:
                _fail_server(
                    db, server_id, target.cloud_key, exc, reason_code=FAILURE_REASONS.get(type(exc), "cloud_error")
                )
                continue
            _record_building(db, server_id, cloud_server)
            building.append((server_id, cloud_server.id))
        for server_id, cloud_server_id in building:
            try:
                final = provider.wait_for_server(cloud_server_id, {"ACTIVE"}, timeout=settings.boot_timeout_seconds)
            except CloudUnavailable as exc:
                raise RetryLater(f"cloud {target.cloud_key} unreachable: {exc}") from exc
            except CloudError as exc:
                _fail_server(
                    db, server_id, target.cloud_key, exc, reason_code=FAILURE_REASONS.get(type(exc), "cloud_error")
                )
                continue
            _record_active(db, server_id, final)
        renew(db, item, lease=timedelta(seconds=settings.work_lease_seconds))
    finish_request(db, target.request_id, why=refusal)


def _give_up_provision(db: Database, item: ClaimedItem, error: str) -> None:
    request_id = int(item.payload["request_id"])
    with db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        if request is None:
            return
        ids = [s.id for s in request.servers if s.state in {ServerState.PENDING, ServerState.BUILDING}]
        cloud_key = request.cloud.key
    for server_id in ids:
        _fail_server(db, server_id, cloud_key, f"cloud unreachable: {error}", reason_code="cloud_unreachable")
    finish_request(db, request_id)


handle_provision.on_give_up = _give_up_provision  # type: ignore[attr-defined]


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
        _event(session, request, target, "provisioned", reason)
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


def handle_resize(db: Database, item: ClaimedItem) -> None:
    runtime = get_runtime()
    request_id = int(item.payload["request_id"])
    reservation_id = item.payload.get("reservation_id")
    with db.unit_of_work() as uow:
        session = uow.session
        request = session.get(ServiceRequest, request_id, with_for_update=True)
        if request is None:
            raise GiveUp(f"request {request_id} does not exist")
        if request.state == RequestState.APPROVED:
            request.provisioning_started_at = utcnow()
            _event(session, request, RequestState.PROVISIONING, "resize", None)
        elif request.state != RequestState.PROVISIONING:
            return
        server = session.get(ManagedServer, request.target_server_id)
        if server is None or not server.server_id:
            raise GiveUp("the server to resize is gone")
        refusal = _resize_refusal(session, request)
        if refusal is not None:
            if reservation_id:
                ledger.release(session, int(reservation_id), reason="refused: classified_system")
            _event(session, request, RequestState.FAILED, "resize", refusal[:2000])
            request.finished_at = utcnow()
            return
        cloud = server.cloud
        cloud_server_id, new_flavor = server.server_id, request.flavor
        flavor_ref, new_vcpus, new_ram = new_flavor.external_id, new_flavor.vcpus, new_flavor.ram_mb
        old = {Resource.CORES: server.vcpus, Resource.RAM_MB: server.ram_mb}
    provider = runtime.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
    try:
        current = provider.get_server(cloud_server_id)
        if current.flavor_id != flavor_ref:
            if current.status == "VERIFY_RESIZE":
                provider.confirm_resize(cloud_server_id)
            else:
                if current.status == "ACTIVE":
                    provider.resize_server(cloud_server_id, flavor_ref)
                current = provider.wait_for_server(cloud_server_id, {"VERIFY_RESIZE", "ACTIVE"}, timeout=600)
                if current.status == "VERIFY_RESIZE":
                    provider.confirm_resize(cloud_server_id)
        final = provider.wait_for_server(cloud_server_id, {"ACTIVE", "SHUTOFF"}, timeout=600)
        if final.flavor_id != flavor_ref:
            # Nova answers the resize at once and only then finds no host with room: the
            # server stays as it was, and only its flavor tells.
            raise CloudNoValidHost("no compute host has room for the new flavor", final.fault_message or "")
    except CloudUnavailable as exc:
        raise RetryLater(str(exc)) from exc
    except CloudError as exc:
        with db.unit_of_work() as uow:
            request = uow.session.get(ServiceRequest, request_id)
            assert request is not None
            if reservation_id:
                ledger.release(uow.session, int(reservation_id), reason="resize failed")
            _event(uow.session, request, RequestState.FAILED, "resize", str(exc)[:2000])
            request.finished_at = utcnow()
        return
    with db.unit_of_work() as uow:
        session = uow.session
        request = session.get(ServiceRequest, request_id)
        server = session.get(ManagedServer, request.target_server_id) if request else None
        assert request is not None and server is not None
        if reservation_id:
            ledger.consume(session, int(reservation_id), reason="resized")
        shrink = {
            Resource.CORES: max(old[Resource.CORES] - new_vcpus, 0),
            Resource.RAM_MB: max(old[Resource.RAM_MB] - new_ram, 0),
        }
        if any(shrink.values()):
            ledger.give_back_usage(
                session, department_id=server.department_id, cloud_id=server.cloud_id, amounts=shrink
            )
        server.flavor_item_id, server.vcpus, server.ram_mb = request.flavor_item_id, new_vcpus, new_ram
        server.host = final.host
        _event(session, request, RequestState.ACTIVE, "resize", None)
        request.finished_at = utcnow()


def _resize_refusal(session: object, request: ServiceRequest) -> str | None:
    """The classified rule right before the cloud resizes the server (its system may have
    been reclassified after the approval): the refusal's reason, audited, or None."""
    from sqlalchemy.orm import Session

    from cloudmgr.inventory.classification import ClassifiedPlacementRefused
    from cloudmgr.servicerequests.services import check_request_placeable

    assert isinstance(session, Session)
    try:
        check_request_placeable(session, SYSTEM, request, "resize.job")
    except ClassifiedPlacementRefused as refused:
        return str(refused)
    return None


# --- stop, start, delete ------------------------------------------------------------------------------


def handle_server_action(db: Database, item: ClaimedItem) -> None:
    runtime = get_runtime()
    action = str(item.payload["action"])
    with db.unit_of_work() as uow:
        server = uow.session.get(ManagedServer, int(item.payload["server_id"]))
        if server is None:
            raise GiveUp("no such server")
        cloud = server.cloud
        cloud_server_id = item.payload.get("cloud_server_id") or server.server_id
        server_id = server.id
    provider = runtime.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
    try:
        if action == "delete_cloud_server":  # the failed attempt a retry replaces
            if cloud_server_id:
                provider.delete_server(cloud_server_id)
            return
        if not cloud_server_id:
            raise GiveUp(f"server {server_id} has no cloud server")
        if action == "stop":
            provider.stop_server(cloud_server_id)
            provider.wait_for_server(cloud_server_id, {"SHUTOFF"}, timeout=300)
            new_state = ServerState.STOPPED
        elif action == "start":
            provider.start_server(cloud_server_id)
            provider.wait_for_server(cloud_server_id, {"ACTIVE"}, timeout=300)
            new_state = ServerState.ACTIVE
        elif action == "delete":
            provider.delete_server(cloud_server_id, wait=True)
            new_state = ServerState.DELETED
        else:
            raise GiveUp(f"unknown action {action}")
    except CloudUnavailable as exc:
        raise RetryLater(str(exc)) from exc
    except CloudError as exc:
        raise GiveUp(f"{action} failed: {exc}") from exc
    with db.unit_of_work() as uow:
        session = uow.session
        server = session.get(ManagedServer, server_id, with_for_update=True)
        assert server is not None
        previous = server.state
        server.state = new_state
        if new_state == ServerState.DELETED and previous != ServerState.DELETED:
            ledger.give_back_usage(
                session,
                department_id=server.department_id,
                cloud_id=server.cloud_id,
                amounts={Resource.CORES: server.vcpus, Resource.RAM_MB: server.ram_mb, Resource.INSTANCES: 1},
            )
            _retire_if_done(session, server.request_id)
        audit.record(
            session,
            actor="system:server_action",
            action=f"server.{action}.done",
            target_type="managed_server",
            target_id=server.id,
        )


def _retire_if_done(session: object, request_id: int) -> None:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    request = session.get(ServiceRequest, request_id)
    if request is None:
        return
    if request.state in {
        RequestState.ACTIVE,
        RequestState.PARTIALLY_ACTIVE,
        RequestState.FAILED,
    } and all(s.state in {ServerState.DELETED, ServerState.CANCELLED, ServerState.ERROR} for s in request.servers):
        _event(session, request, RequestState.RETIRED, "retire", "every server deleted")
