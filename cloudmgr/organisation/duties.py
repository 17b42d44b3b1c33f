"""Separation of duties: no one decides what they wrote.

The author of a VM request or a purchase request (its ``created_by``) never approves, rejects
or decides it, at any step.  The one exception is configured per department
(``CLOUDMGR_SELF_APPROVAL_DEPARTMENTS=dept-key:role,...``) for small departments where a
single person holds a role: there, that role may decide its holder's own requests, and each
such decision is audited under its own action so that it stands out in the audit log.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.config import Settings
from cloudmgr.errors import PermissionDenied
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Department


class OwnDecisionRefused(PermissionDenied):
    code = "own_decision_refused"


def _settings(settings: Settings | None) -> Settings | None:
    if settings is not None:
        return settings
    from cloudmgr.runtime import installed_settings

    return installed_settings()


def _department_key(session: Session, department_id: int) -> str | None:
    return session.scalar(select(Department.key).where(Department.id == department_id))


def self_decision_allowed(
    session: Session, actor: Actor, department_id: int, *, settings: Settings | None = None
) -> bool:
    """True when the configured exception lets ``actor`` decide their own work in that department.

    Without an installed runtime (or with the setting empty) the answer is no: strict by default."""
    config = _settings(settings)
    if config is None or not config.self_approval or actor.department_id != department_id:
        return False
    key = _department_key(session, department_id)
    return key is not None and config.self_approval.get(key) == actor.role.value


def is_own(actor: Actor, author: str | None) -> bool:
    return author is not None and author == actor.username


def may_decide_own(
    session: Session, actor: Actor, *, author: str | None, department_id: int, settings: Settings | None = None
) -> bool:
    """Whether separation of duties lets ``actor`` decide work written by ``author`` (no audit)."""
    return not is_own(actor, author) or self_decision_allowed(session, actor, department_id, settings=settings)


def check_not_own(
    session: Session,
    actor: Actor,
    *,
    author: str | None,
    department_id: int,
    what: str,
    target_type: str,
    target_id: int,
    audit_action: str,
    detail: dict[str, object] | None = None,
    settings: Settings | None = None,
) -> bool:
    """Refuse ``actor`` deciding ``what`` they wrote; return True when the exception allowed it
    (then the decision is audited as ``audit_action``), False when it is not their own."""
    if not is_own(actor, author):
        return False
    if not self_decision_allowed(session, actor, department_id, settings=settings):
        raise OwnDecisionRefused(f"you wrote {what}: someone else must decide it (separation of duties)")
    audit.record(
        session,
        actor=actor.username,
        action=audit_action,
        target_type=target_type,
        target_id=target_id,
        reason="self-approval allowed for this department and role by CLOUDMGR_SELF_APPROVAL_DEPARTMENTS",
        detail={"role": actor.role.value, **(detail or {})},
    )
    return True
