"""Writing and reading the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit.errors import AuditLogIsAppendOnly
from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import add_surviving_rollback
from cloudmgr.messages import Message
from cloudmgr.paging import Page, PageRequest, paginate, search

__all__ = ["AuditLogIsAppendOnly", "recent", "record", "record_surviving_rollback"]


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int,
    reason: str | Message | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the current unit of work (it commits with the change it describes).

    A ``reason`` the system writes is a Message: the event keeps its English text as ``reason``
    and the message in ``detail["reason_message"]``, shown in the reader's language."""
    if isinstance(reason, Message):
        detail = {**(detail or {}), "reason_message": reason.as_dict()}
        reason = str(reason)
    audit_event = AuditEvent(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        reason=reason,
        detail=detail or {},
    )
    session.add(audit_event)
    return audit_event


def record_surviving_rollback(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int,
    reason: str | Message | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Like :func:`record`, for the record of a refusal: it is kept even when the refused
    action's transaction rolls back (see :func:`cloudmgr.db.add_surviving_rollback`)."""
    if isinstance(reason, Message):
        detail = {**(detail or {}), "reason_message": reason.as_dict()}
        reason = str(reason)
    values = {
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "reason": reason,
        "detail": detail or {},
    }
    return add_surviving_rollback(session, AuditEvent, values)


def recent(
    session: Session,
    *,
    limit: int = 100,
    target_type: str | None = None,
    target_id: str | None = None,
    action: str | None = None,
) -> Sequence[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if target_type:
        query = query.where(AuditEvent.target_type == target_type)
    if target_id:
        query = query.where(AuditEvent.target_id == target_id)
    if action:
        query = query.where(AuditEvent.action == action)
    return session.scalars(query).all()


def events_page(
    session: Session,
    params: PageRequest,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    action: str | None = None,
) -> Page[AuditEvent]:
    """A page of the log, newest first: exact filters, and ``params.q`` searched in the actor, the
    action, the target and the reason."""
    query = select(AuditEvent)
    if target_type:
        query = query.where(AuditEvent.target_type == target_type)
    if target_id:
        query = query.where(AuditEvent.target_id == target_id)
    if action:
        query = query.where(AuditEvent.action == action)
    query = search(
        query,
        params.q,
        AuditEvent.actor,
        AuditEvent.action,
        AuditEvent.target_type,
        AuditEvent.target_id,
        AuditEvent.reason,
    )
    return paginate(session, query, params, AuditEvent.id.desc())
