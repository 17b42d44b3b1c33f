"""The steps every transition of a request shares: the state change with its RequestEvent and audit
event, the notification work item, and holding or releasing the servers' quota."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.firewall import services as firewall
from cloudmgr.firewall.services import FirewallPlan
from cloudmgr.messages import Message
from cloudmgr.organisation.actor import Actor
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.models import QuotaReservation, ReservationState
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import RequestEvent, ServiceRequest
from cloudmgr.servicerequests.quoting import firewall_needs, server_needs
from cloudmgr.servicerequests.states import REQUEST_MACHINE, RequestState, ServerState
from cloudmgr.stored_messages import stored_text
from cloudmgr.workqueue.services import enqueue


def record_transition(
    session: Session,
    request: ServiceRequest,
    target: RequestState,
    *,
    actor: Actor,
    action: str,
    reason: str | Message | None = None,
    step: str | None = None,
) -> None:
    """Check and store one transition of ``request`` with its event and audit record.  A
    ``reason`` the system writes is a Message: the request and its event store its English
    text, the request keeps its message (:func:`cloudmgr.stored_messages.stored_text`)."""
    previous = REQUEST_MACHINE.apply(request, target)
    sentence = reason
    reason = stored_text(request, reason)
    request.state_reason = reason
    session.add(
        RequestEvent(
            request_id=request.id,
            actor=actor.username,
            action=action,
            step=step,
            from_state=previous.value,
            to_state=target.value,
            reason=reason,
        )
    )
    audit.record(
        session,
        actor=actor.username,
        action=f"request.{action}",
        target_type="service_request",
        target_id=request.id,
        reason=sentence if isinstance(sentence, Message) and str(sentence) == reason else reason,
        detail={"from": previous.value, "to": target.value, "step": step},
    )


def notify(session: Session, event: str, request: ServiceRequest, **extra: Any) -> None:
    enqueue(
        session,
        "notify",
        f"notify:{event}:{request.id}:{request.current_step}:{extra.get('server_id', '')}",
        {"event": event, "request_id": request.id, **extra},
        max_attempts=5,
    )


def reserve_servers(session: Session, request: ServiceRequest, plan: FirewallPlan | None = None) -> None:
    """Hold quota for every server of the request that holds none (atomic: all or none).

    The request's firewall group is held once, by its first server (index 1), as the quote
    counts it (:func:`cloudmgr.servicerequests.quoting.firewall_needs`); ``plan`` is the
    request's firewall plan when the caller has it (else read when the first server needs it)."""
    to_reserve = []
    for server in request.servers:
        if server.state != ServerState.PENDING:
            continue
        held = (
            server.reservation_id is not None
            and session.scalar(select(QuotaReservation.state).where(QuotaReservation.id == server.reservation_id))
            == ReservationState.HELD.value
        )
        if not held:
            to_reserve.append(server)
    disk_sizes = [int(disk["size_gb"]) for disk in request.data_disks or []]
    per_server = {
        server.id: server_needs(server.vcpus, server.ram_mb, disk_sizes, request.public_address)
        for server in to_reserve
    }
    first = next((server for server in to_reserve if server.index == 1), None)
    if first is not None and request.kind == "create":
        if plan is None:
            plan = firewall.request_plan(session, request.id, request.department, request.zone)
        per_server[first.id] = {**per_server[first.id], **firewall_needs(plan)}
    wanted: dict[Resource, int] = {}
    for amounts in per_server.values():
        for resource, n in amounts.items():
            wanted[resource] = wanted.get(resource, 0) + n
    taken = dict.fromkeys(wanted, 0)
    for server in to_reserve:
        amounts = per_server[server.id]
        try:
            reservation = ledger.reserve(
                session,
                department_id=request.department_id,
                cloud_id=request.cloud_id,
                amounts=amounts,
                owner=f"server:{server.id}",
            )
        except QuotaExceeded as exc:
            # Say it for the whole request, not for the server the ledger stopped at.
            resource = Resource(exc.resource)
            raise QuotaExceeded(
                department=exc.department,
                cloud=exc.cloud,
                resource=exc.resource,
                limit=exc.limit,
                free=exc.free + taken[resource],
                asked=wanted[resource],
            ) from exc
        for resource, n in amounts.items():
            taken[resource] += n
        server.reservation_id = reservation.id


def release_all(session: Session, request: ServiceRequest, reason: str | Message) -> None:
    for server in request.servers:
        if server.state == ServerState.PENDING:
            if server.reservation_id is not None:
                ledger.release(session, server.reservation_id, reason=str(reason))
            server.state = ServerState.CANCELLED
            server.fault = stored_text(request, reason)
