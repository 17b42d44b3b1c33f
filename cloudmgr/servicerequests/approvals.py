"""The approval chain: whose step a submitted request waits for, separation of duties (the author
never decides their own request, unless the department's audited exception allows it), approving
(the last step holds the quota again and queues provisioning) and rejecting."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, object_session

from cloudmgr.db import utcnow
from cloudmgr.messages import N_, Message, message
from cloudmgr.metrics import APPROVAL_WAIT_SECONDS
from cloudmgr.organisation import duties
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.files import APPROVAL_ROLES
from cloudmgr.organisation.models import Role
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests import texts
from cloudmgr.servicerequests.errors import (
    InvalidTransition,
    NotYourDepartment,
    NotYourTurn,
    RequestInvalid,
)
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.placement import check_request_placeable
from cloudmgr.servicerequests.reading import get_request
from cloudmgr.servicerequests.states import RequestState
from cloudmgr.servicerequests.transitions import notify, record_transition, release_all, reserve_servers
from cloudmgr.workqueue.services import enqueue


def _step_for(request: ServiceRequest, actor: Actor) -> str:
    step = request.next_role
    if request.state != RequestState.SUBMITTED or step is None:
        raise InvalidTransition(message(N_("request %(id)s is not waiting for approval"), id=request.id))
    if actor.role.value != step:
        # The step's role stays out of the sentence: it is a key, not words (the request page names it).
        raise NotYourTurn(
            message(N_("request %(id)s waits for someone else's approval step, not yours"), id=request.id)
        )
    if step == Role.DEPT_HEAD.value and actor.department_id != request.department_id:
        raise NotYourDepartment(Message(N_("a department head approves only their own department's requests")))
    return step


def _check_step(request: ServiceRequest, actor: Actor, *, decision: str = "approve") -> str:
    """The step ``actor`` may take now; the author never takes one (separation of duties),
    unless the department's configured exception allows it, audited as request.self_approved
    (or request.self_rejected)."""
    step = _step_for(request, actor)
    session = object_session(request)
    assert session is not None
    duties.check_not_own(
        session,
        actor,
        author=request.created_by,
        department_id=request.department_id,
        what=f"request {request.id}",
        target_type="service_request",
        target_id=request.id,
        audit_action="request.self_approved" if decision == "approve" else "request.self_rejected",
        detail={"step": step, "decision": decision},
    )
    return step


def may_approve_any(actor: Actor) -> bool:
    """Whether ``actor`` takes approval steps at all: a role an approval chain may name (a department
    head, an operator, finance), never department staff.  Pages show the approvals queue, its count
    and the decision form only to them; each decision is still checked by :func:`may_decide`'s rules."""
    return actor.role.value in APPROVAL_ROLES


def may_decide(session: Session, actor: Actor, request: ServiceRequest) -> bool:
    """Whether ``actor`` may approve or reject ``request``'s current step now (pages hide the buttons)."""
    try:
        _step_for(request, actor)
    except (InvalidTransition, NotYourTurn, NotYourDepartment):
        return False
    return duties.may_decide_own(session, actor, author=request.created_by, department_id=request.department_id)


def approve_request(session: Session, actor: Actor, request_id: int, *, reason: str = "") -> ServiceRequest:
    """Approve the current step.  The last approval re-checks the quota reservation and queues provisioning."""
    request = get_request(session, actor, request_id, for_update=True)
    step = _check_step(request, actor)
    # Every step, not only the last: the system may have been reclassified since the
    # submission, and an approval must never carry a classified system further.
    check_request_placeable(session, actor, request, f"approve.{step}")
    if request.current_step + 1 < len(request.approval_steps):
        record_transition(
            session,
            request,
            RequestState.SUBMITTED,
            actor=actor,
            action="approve",
            step=step,
            reason=reason or None,
        )
        request.current_step += 1
        notify(session, "approval_needed", request)
        return request
    # The final approval: any reservation that lapsed while waiting is taken again, atomically.
    reserve_servers(session, request)
    payload: dict[str, Any] = {"request_id": request.id}
    if request.kind == "resize":
        payload["reservation_id"] = _reserve_resize(session, request)
    request.current_step += 1
    request.approved_at = utcnow()
    record_transition(
        session,
        request,
        RequestState.APPROVED,
        actor=actor,
        action="approve",
        step=step,
        reason=reason or None,
    )
    if request.submitted_at is not None:
        APPROVAL_WAIT_SECONDS.labels(cloud=request.cloud.key).observe(
            (request.approved_at - request.submitted_at).total_seconds()
        )
    kind = "resize" if request.kind == "resize" else "provision"
    enqueue(session, kind, f"{kind}:{request.id}", payload)
    notify(session, "approved", request)
    return request


def _reserve_resize(session: Session, request: ServiceRequest) -> int | None:
    """Hold the growth of a resize (a smaller flavor holds nothing; usage drops once done)."""
    server = session.get(ManagedServer, request.target_server_id)
    if server is None:
        raise RequestInvalid("the server to resize no longer exists")
    delta = {
        Resource.CORES: max(request.flavor.vcpus - server.vcpus, 0),
        Resource.RAM_MB: max(request.flavor.ram_mb - server.ram_mb, 0),
    }
    if not any(delta.values()):
        return None
    reservation = ledger.reserve(
        session,
        department_id=request.department_id,
        cloud_id=request.cloud_id,
        amounts=delta,
        owner=f"resize:{request.id}",
    )
    return reservation.id


def reject_request(session: Session, actor: Actor, request_id: int, *, reason: str) -> ServiceRequest:
    if not reason.strip():
        raise RequestInvalid("a reason is required to reject")
    request = get_request(session, actor, request_id, for_update=True)
    step = _check_step(request, actor, decision="reject")
    record_transition(session, request, RequestState.REJECTED, actor=actor, action="reject", step=step, reason=reason)
    release_all(session, request, texts.rejected(reason))
    request.finished_at = utcnow()
    notify(session, "rejected", request)
    return request
