"""Legacy systems: the state machine, and reading them.

Everybody changes a system's state ONLY through :func:`transition_system`: it enforces the
allowed transitions, stamps the timestamps and writes the audit event (the system's page
shows its history from the audit log) in the caller's unit of work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from cloudmgr.audit import services as audit
from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import utcnow
from cloudmgr.inventory.errors import InvalidSystemTransition, SystemNotFound
from cloudmgr.inventory.models import DONE_STATES, LegacySystem, SystemState
from cloudmgr.messages import Message
from cloudmgr.organisation import reading as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.paging import search
from cloudmgr.statemachine import StateMachine

S = SystemState

#: Allowed transitions: from state → the states it may go to.
TRANSITIONS: Mapping[SystemState, frozenset[SystemState]] = {
    # imported; classified (or intranet) systems go out of scope, the others into waves
    S.LEGACY: frozenset({S.PLANNED, S.INTRANET}),
    # out of scope; only a re-import that declassifies it brings it back
    S.INTRANET: frozenset({S.LEGACY}),
    # in a wave: leaves it (back to legacy), its wave starts, or it is reclassified
    S.PLANNED: frozenset({S.LEGACY, S.MIGRATING, S.INTRANET}),
    # its runbook cuts over (on_cloud), fails and rolls back, or its wave is cancelled
    S.MIGRATING: frozenset({S.ON_CLOUD, S.ROLLED_BACK, S.LEGACY}),
    # the source still serves: try again in a wave, retry at once, or give up for now
    S.ROLLED_BACK: frozenset({S.PLANNED, S.MIGRATING, S.LEGACY, S.INTRANET}),
    # verified on the cloud: the source is switched off, or a late failure rolls it back
    S.ON_CLOUD: frozenset({S.DECOMMISSIONED, S.ROLLED_BACK}),
    S.DECOMMISSIONED: frozenset(),
}

SYSTEM_MACHINE: StateMachine[SystemState] = StateMachine(
    "system",
    SystemState,
    transitions=TRANSITIONS,
    error=InvalidSystemTransition,
    message="system {hostname} cannot go from {current} to {target}",
    unknown_message="unknown system state {state!r}",
    open_states=frozenset(SystemState) - DONE_STATES - {S.INTRANET},
    stamps={S.ON_CLOUD: "migrated_at", S.DECOMMISSIONED: "decommissioned_at"},
)

AUDIT_TARGET = "legacy_system"
TRANSITION_ACTION = "legacy_system.transition"


def transition_system(
    session: Session, system: LegacySystem, to_state: str, *, actor: Actor, reason: str | Message | None
) -> bool:
    """Move ``system`` to ``to_state``: checked, stamped and audited.

    Returns True when the state changed; a transition to the state the system is already in
    is a no-op returning False (so retried jobs are harmless).  Raises
    InvalidSystemTransition for a transition the state machine does not allow.
    """
    target = SYSTEM_MACHINE.coerce(to_state)
    if system.state == target:
        return False
    now = utcnow()
    current = SYSTEM_MACHINE.apply(system, target, now=now, hostname=system.hostname)
    system.updated_at = now
    if target == S.ROLLED_BACK:
        system.migrated_at = None
    audit.record(
        session,
        actor=actor.username,
        action=TRANSITION_ACTION,
        target_type=AUDIT_TARGET,
        target_id=system.id,
        reason=reason,
        detail={"hostname": system.hostname, "from": current.value, "to": target.value},
    )
    return True


def get_system(session: Session, system_id: int, *, actor: Actor | None = None) -> LegacySystem:
    """The system; a department user only sees its own department's (others are "not found")."""
    system = session.get(LegacySystem, system_id, options=[joinedload(LegacySystem.department)])
    if system is None or (actor is not None and not actor.can_see_department(system.department_id)):
        raise SystemNotFound(f"no legacy system {system_id}")
    return system


def get_system_by_hostname(session: Session, hostname: str) -> LegacySystem:
    system = session.scalars(select(LegacySystem).where(LegacySystem.hostname == hostname)).one_or_none()
    if system is None:
        raise SystemNotFound(f"no legacy system {hostname!r}")
    return system


@dataclass(frozen=True)
class SystemFilter:
    department_id: int | None = None
    #: a department named by its key (the API's filter): narrows the list like ``department_id``; ignored
    #: for a department user (their list is always their own department's), :class:`UnknownDepartment`
    #: for anyone else when there is none
    department_key: str | None = None
    state: str | None = None
    #: "in": non-classified internet/extranet; "out": the others (classified, intranet)
    scope: str | None = None
    classification: str | None = None
    #: words searched in the hostname, application system, operating system, owner and address
    q: str | None = None


def _filtered(query, flt: SystemFilter, actor: Actor | None):  # type: ignore[no-untyped-def]
    if actor is not None and actor.is_department:
        query = query.where(LegacySystem.department_id == actor.department_id)
    if flt.department_id is not None:
        query = query.where(LegacySystem.department_id == flt.department_id)
    if flt.state:
        query = query.where(LegacySystem.state == flt.state)
    if flt.classification:
        query = query.where(LegacySystem.classification == flt.classification)
    if flt.scope == "in":
        query = query.where(LegacySystem.classification == "non_classified", LegacySystem.network != "intranet")
    elif flt.scope == "out":
        query = query.where((LegacySystem.classification == "classified") | (LegacySystem.network == "intranet"))
    return search(
        query,
        flt.q,
        LegacySystem.hostname,
        LegacySystem.application_system,
        LegacySystem.os_name,
        LegacySystem.owner_name,
        LegacySystem.ansible_host,
    )


def list_systems(
    session: Session,
    flt: SystemFilter | None = None,
    *,
    actor: Actor | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[Sequence[LegacySystem], int]:
    """Systems matching ``flt`` from easy to hard (complexity, then hostname), and their total."""
    flt = flt or SystemFilter()
    named_department_id = org.named_department_id(session, actor, flt.department_key)
    if named_department_id is not None:
        flt = replace(flt, department_id=named_department_id)
    query = _filtered(select(LegacySystem), flt, actor).options(
        joinedload(LegacySystem.department), joinedload(LegacySystem.server_room)
    )
    query = query.order_by(LegacySystem.complexity_score, LegacySystem.hostname).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    total = session.scalar(_filtered(select(func.count(LegacySystem.id)), flt, actor)) or 0
    return session.scalars(query).unique().all(), total


@dataclass(frozen=True, slots=True)
class SystemChoice:
    """A department's legacy system as an option of the VM request form."""

    id: int
    hostname: str
    application_system: str
    classified: bool


def department_system_choices(session: Session, department_id: int) -> list[SystemChoice]:
    rows = session.execute(
        select(LegacySystem.id, LegacySystem.hostname, LegacySystem.application_system, LegacySystem.classification)
        .where(LegacySystem.department_id == department_id)
        .order_by(LegacySystem.hostname)
    )
    return [
        SystemChoice(row.id, row.hostname, row.application_system, row.classification == "classified") for row in rows
    ]


def state_history(session: Session, system: LegacySystem) -> Sequence[AuditEvent]:
    """Every audit event about the system, oldest first (transitions, refusals, imports)."""
    return session.scalars(
        select(AuditEvent)
        .where(AuditEvent.target_type == AUDIT_TARGET, AuditEvent.target_id == str(system.id))
        .order_by(AuditEvent.id)
    ).all()


def dependants(session: Session, system: LegacySystem) -> list[str]:
    """Hostnames of the systems that depend on ``system``."""
    rows = session.execute(select(LegacySystem.hostname, LegacySystem.dependencies)).all()
    return sorted(host for host, deps in rows if system.hostname in (deps or []))
