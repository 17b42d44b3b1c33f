"""Quota-change requests: a department asks for other limits, an operator (or the
one-size-up rule) decides.  Session-only: an approval queues the cloud push as a work item
in the caller's transaction (:mod:`cloudmgr.quotas.jobs` runs it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.audit import services as audit
from cloudmgr.db import utcnow
from cloudmgr.errors import PermissionDenied
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud, Role
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaBelowUsage, QuotaChangeInvalid, QuotaChangeNotFound
from cloudmgr.quotas.files import QuotaDefinitions
from cloudmgr.quotas.models import (
    ChangeRequestState,
    LimitSource,
    QuotaAssignment,
    QuotaChangeRequest,
    QuotaLedgerRow,
)
from cloudmgr.quotas.resources import Limits, Resource, limits_from_json, limits_to_json

AUTO_APPROVAL_WINDOW = timedelta(days=30)
AUTO_APPROVER = Actor.system("auto-approval")


def _link(session: Session, department_id: int, cloud_key: str) -> DepartmentCloud:
    link = session.scalar(
        select(DepartmentCloud)
        .join(Cloud, Cloud.id == DepartmentCloud.cloud_id)
        .where(DepartmentCloud.department_id == department_id, Cloud.key == cloud_key)
    )
    if link is None:
        raise QuotaChangeInvalid(message(N_("the department may not use cloud %(cloud)s"), cloud=repr(cloud_key)))
    return link


def _requested_limits(
    definitions: QuotaDefinitions, current: Limits, target_size: str | None, limits: Limits | None
) -> Limits:
    if target_size is not None:
        size = definitions.sizes.get(target_size)
        if size is None:
            raise QuotaChangeInvalid(
                message(
                    N_("unknown size %(size)s (sizes: %(sizes)s)"),
                    size=repr(target_size),
                    sizes=", ".join(definitions.sizes),
                )
            )
        return dict(size.limits)
    assert limits is not None
    if any(v < 0 for v in limits.values()):
        raise QuotaChangeInvalid(Message(N_("limits must not be negative")))
    return {**current, **limits}


def may_request_change(actor: Actor) -> bool:
    """Only a department's own users ask for other limits for it."""
    return actor.is_department and actor.department_id is not None


def request_change(
    session: Session,
    actor: Actor,
    definitions: QuotaDefinitions,
    *,
    cloud_key: str,
    reason: str,
    target_size: str | None = None,
    limits: Limits | None = None,
) -> QuotaChangeRequest:
    """The actor's department asks for other limits.  One size up, at most once in 30 days, is
    approved at once; anything else waits for an operator."""
    if not may_request_change(actor):
        raise PermissionDenied(Message(N_("only department users ask for other quotas")))
    assert actor.department_id is not None
    department_id = actor.department_id
    reason = reason.strip()
    if not reason:
        raise QuotaChangeInvalid(Message(N_("a reason is required")))
    if (target_size is None) == (limits is None):
        raise QuotaChangeInvalid(Message(N_("ask for either a size or explicit limits")))
    link = _link(session, department_id, cloud_key)
    rows = ledger.ensure_rows(session, department_id, link.cloud_id)
    current = {r: row.limit for r, row in rows.items()}
    requested = _requested_limits(definitions, current, target_size, limits)
    _refuse_below_usage(rows, requested)
    if requested == current:
        raise QuotaChangeInvalid(Message(N_("the requested limits are the current ones")))
    assignment = session.scalar(
        select(QuotaAssignment).where(
            QuotaAssignment.department_id == department_id, QuotaAssignment.cloud_id == link.cloud_id
        )
    )
    change = QuotaChangeRequest(
        department_id=department_id,
        cloud_id=link.cloud_id,
        target_size=target_size,
        requested_limits=limits_to_json(requested),
        previous_limits=limits_to_json(current),
        reason=reason,
        requested_by=actor.username,
        state=ChangeRequestState.PENDING.value,
    )
    session.add(change)
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="quota.change.request",
        target_type="quota_change",
        target_id=change.id,
        reason=reason,
        detail={"cloud": cloud_key, "size": target_size, "limits": change.requested_limits},
    )
    if _pre_approved(session, definitions, assignment, change):
        entry = definitions.entries.get((link.department.key, cloud_key))
        _approve(
            session,
            change,
            actor=AUTO_APPROVER,
            reason="one size up, pre-approved",
            automatic=True,
            file_limits=entry.limits if entry else None,
        )
    return change


def _refuse_below_usage(rows: dict[Resource, QuotaLedgerRow], requested: Limits) -> None:
    """A quota is never lowered below what the department already uses or has reserved."""
    for resource, value in requested.items():
        taken = rows[resource].used + rows[resource].reserved
        if value < taken:
            raise QuotaBelowUsage(
                f"{resource.value} cannot be set to {value}: {taken} already used or reserved (a quota is never "
                "lowered below what is in use)"
            )


def _pre_approved(
    session: Session, definitions: QuotaDefinitions, assignment: QuotaAssignment | None, change: QuotaChangeRequest
) -> bool:
    """Whether ``change`` is approved at once: it asks for the size one step above the
    department's current one, and no change for this department and cloud was approved
    automatically within the last AUTO_APPROVAL_WINDOW."""
    one_step_up = definitions.size_above(assignment.size if assignment else None)
    recent_auto = session.scalar(
        select(func.count()).where(
            QuotaChangeRequest.department_id == change.department_id,
            QuotaChangeRequest.cloud_id == change.cloud_id,
            QuotaChangeRequest.automatic.is_(True),
            QuotaChangeRequest.decided_at >= utcnow() - AUTO_APPROVAL_WINDOW,
        )
    )
    target_size = change.target_size
    return target_size is not None and one_step_up is not None and one_step_up.name == target_size and not recent_auto


def _approve(
    session: Session,
    change: QuotaChangeRequest,
    *,
    actor: Actor,
    reason: str,
    automatic: bool,
    file_limits: Limits | None = None,
) -> None:
    requested = limits_from_json(change.requested_limits)
    ledger.set_limits(session, change.department_id, change.cloud_id, requested)
    assignment = session.scalar(
        select(QuotaAssignment).where(
            QuotaAssignment.department_id == change.department_id, QuotaAssignment.cloud_id == change.cloud_id
        )
    )
    if assignment is None:
        assignment = QuotaAssignment(
            department_id=change.department_id, cloud_id=change.cloud_id, file_limits=limits_to_json(file_limits or {})
        )
        session.add(assignment)
    assignment.source = LimitSource.REQUEST.value
    assignment.change_request_id = change.id
    assignment.size = change.target_size
    change.state = ChangeRequestState.APPROVED.value
    change.automatic = automatic
    change.decided_by, change.decided_at, change.decision_reason = actor.username, utcnow(), reason
    session.flush()
    queue_cloud_push(session, change, actor=actor)
    audit.record(
        session,
        actor=actor.username,
        action="quota.change.approve",
        target_type="quota_change",
        target_id=change.id,
        reason=reason,
        detail={"automatic": automatic, "limits": change.requested_limits},
    )


def queue_cloud_push(session: Session, change: QuotaChangeRequest, *, actor: Actor) -> None:
    """The approved limits reach the cloud through the work queue, after this transaction
    commits (:mod:`cloudmgr.quotas.jobs`): whichever path approved them, retried until the
    cloud takes them.  The payload names who approved: the push is audited as theirs."""
    from cloudmgr.workqueue.services import enqueue

    enqueue(session, "quota.push", f"quota-push:{change.id}", {"change_id": change.id, "actor": actor.username})


def may_decide_change(actor: Actor, change: QuotaChangeRequest | None = None) -> bool:
    """Cloud operators decide quota changes, and only pending ones."""
    if actor.role != Role.OPERATOR:
        return False
    return change is None or change.state == ChangeRequestState.PENDING.value


def get_change(session: Session, change_id: int, *, for_update: bool = False) -> QuotaChangeRequest:
    change = session.get(QuotaChangeRequest, change_id, with_for_update=for_update)
    if change is None:
        raise QuotaChangeNotFound(message(N_("no quota-change request %(id)s"), id=change_id))
    return change


def decide_change(
    session: Session,
    actor: Actor,
    change_id: int,
    *,
    approve: bool,
    reason: str,
    definitions: QuotaDefinitions | None = None,
) -> QuotaChangeRequest:
    """An operator approves (the ledger now, the cloud through the work queue) or rejects (with a reason)."""
    if not may_decide_change(actor):
        raise PermissionDenied(Message(N_("only cloud operators decide quota changes")))
    change = get_change(session, change_id, for_update=True)
    if change.state != ChangeRequestState.PENDING.value:
        raise QuotaChangeInvalid(message(N_("quota-change request %(id)s is already decided"), id=change_id))
    if approve:
        entry = definitions.entries.get((change.department.key, change.cloud.key)) if definitions else None
        _approve(
            session,
            change,
            actor=actor,
            reason=reason or "approved",
            automatic=False,
            file_limits=entry.limits if entry else None,
        )
    else:
        if not reason.strip():
            raise QuotaChangeInvalid(Message(N_("a reason is required to reject")))
        change.state = ChangeRequestState.REJECTED.value
        change.decided_by, change.decided_at, change.decision_reason = actor.username, utcnow(), reason
        audit.record(
            session,
            actor=actor.username,
            action="quota.change.reject",
            target_type="quota_change",
            target_id=change.id,
            reason=reason,
        )
    return change


def change_requests(
    session: Session, actor: Actor, *, department_id: int | None = None, state: str | None = None
) -> Sequence[QuotaChangeRequest]:
    """Newest first; a department user sees only their department's (whatever ``department_id`` says)."""
    if actor.is_department:
        department_id = actor.department_id if actor.department_id is not None else -1
    query = (
        select(QuotaChangeRequest)
        .options(selectinload(QuotaChangeRequest.department), selectinload(QuotaChangeRequest.cloud))
        .order_by(QuotaChangeRequest.id.desc())
    )
    if department_id is not None:
        query = query.where(QuotaChangeRequest.department_id == department_id)
    if state is not None:
        query = query.where(QuotaChangeRequest.state == state)
    return session.scalars(query).all()
