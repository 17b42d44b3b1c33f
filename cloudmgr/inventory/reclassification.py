"""Who may change a system's classification, and what happens when it changes (issue 14).

Two directions, two rules, decided here and reached from every path (inventory import through
the CLI, the page and the API; the approval page, API and CLI):

* **Raising** (non-classified → classified, or onto the intranet network) is the safe direction
  and takes effect at once.  When servers for the system already run on the cloud (the system's
  own ``cloud_server_id``, or self-service servers whose request names the system), they must
  leave: a :class:`ReclassificationAlert` is raised for the operators (``/ops/systems``, the
  system's page, ``GET /api/v1/systems/alerts``), audited as ``legacy_system.reclassified_on_cloud``
  and counted in ``cloudmgr_reclassification_alerts_total``.  It stays open until the servers
  are gone or an operator acknowledges it with a reason.
* **Lowering** (classified → non-classified, or off the intranet network) makes a classified
  system placeable on the clouds, so no path applies it directly: it files a
  :class:`DeclassificationRequest` (who, when, why, from which path), audited as
  ``legacy_system.declassification_requested``.  An administrator other than the requester
  approves it (``…_approved``, the change applies) or rejects it (``…_rejected``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from cloudmgr.audit import services as audit
from cloudmgr.db import utcnow
from cloudmgr.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cloudmgr.inventory.models import (
    AlertState,
    Classification,
    DeclassificationRequest,
    DeclassificationState,
    LegacyNetwork,
    LegacySystem,
    ReclassificationAlert,
    SystemState,
)
from cloudmgr.inventory.services import AUDIT_TARGET, transition_system
from cloudmgr.metrics import REGISTRY
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role

log = logging.getLogger(__name__)

REQUESTED_ACTION = "legacy_system.declassification_requested"
APPROVED_ACTION = "legacy_system.declassification_approved"
REJECTED_ACTION = "legacy_system.declassification_rejected"
RECLASSIFIED_ON_CLOUD_ACTION = "legacy_system.reclassified_on_cloud"
ALERT_CLOSED_ACTION = "legacy_system.reclassification_alert_closed"
MAX_REASON = 2000
#: Who closes the alerts whose servers have all left the cloud (the programme's daily job).
CLEARING_ACTOR = Actor.system("reclassification")
#: Servers in these states are no longer on the cloud.
GONE_SERVER_STATES = frozenset({"deleted", "cancelled"})

RECLASSIFICATION_ALERTS = Counter(
    "cloudmgr_reclassification_alerts",
    "Systems reclassified while servers for them ran on the cloud (each must leave the cloud)",
    registry=REGISTRY,
)
DECLASSIFICATIONS_HELD = Counter(
    "cloudmgr_declassifications_held",
    "Declassifications held for an administrator's approval instead of applied",
    ["entry_point"],
    registry=REGISTRY,
)


class DeclassificationNotFound(NotFound):
    code = "declassification_not_found"


class DeclassificationDecided(Conflict):
    code = "declassification_decided"


class SelfApprovalRefused(PermissionDenied):
    """The person who asked for a declassification cannot approve it: it needs a second person."""

    code = "declassification_self_approval"


class AdministratorRequired(PermissionDenied):
    code = "administrator_required"


class AlertNotFound(NotFound):
    code = "reclassification_alert_not_found"


class ReasonRequired(ValidationFailed):
    code = "reason_required"


def _reason(reason: str | None, *, required: bool) -> str:
    text = (reason or "").strip()
    if "\x00" in text:
        raise ReasonRequired("the reason contains a NUL character")
    if required and not text:
        raise ReasonRequired("give a reason")
    if len(text) > MAX_REASON:
        raise ReasonRequired(f"the reason is longer than {MAX_REASON} characters")
    return text


def _protected(classification: str, network: str) -> tuple[bool, bool]:
    return classification == Classification.CLASSIFIED, network == LegacyNetwork.INTRANET


def is_lowering(from_classification: str, from_network: str, to_classification: str, to_network: str) -> bool:
    """True when the change removes a protection: classified → not, or intranet → not."""
    was_classified, was_intranet = _protected(from_classification, from_network)
    now_classified, now_intranet = _protected(to_classification, to_network)
    return (was_classified and not now_classified) or (was_intranet and not now_intranet)


def is_raising(from_classification: str, from_network: str, to_classification: str, to_network: str) -> bool:
    was_classified, was_intranet = _protected(from_classification, from_network)
    now_classified, now_intranet = _protected(to_classification, to_network)
    return (now_classified and not was_classified) or (now_intranet and not was_intranet)


# --- servers on the cloud ---------------------------------------------------------------------------


def servers_on_cloud(session: Session, system: LegacySystem) -> list[str]:
    """What runs on the cloud for the system: its migrated server, and self-service servers
    whose request names it (not deleted or cancelled)."""
    from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest

    found: list[str] = []
    if system.cloud_server_id:
        found.append(f"migrated server {system.cloud_server_id}")
    rows = session.execute(
        select(ManagedServer.name, ManagedServer.server_id, ManagedServer.state, ServiceRequest.id)
        .join(ServiceRequest, ServiceRequest.id == ManagedServer.request_id)
        .where(ServiceRequest.legacy_system_id == system.id, ManagedServer.state.not_in(GONE_SERVER_STATES))
        .order_by(ManagedServer.id)
    )
    for name, server_id, state, request_id in rows:
        found.append(f"{name} ({server_id or 'no id yet'}, {state}) of request #{request_id}")
    return found


def open_alert_of(session: Session, system_id: int) -> ReclassificationAlert | None:
    return session.scalar(
        select(ReclassificationAlert).where(
            ReclassificationAlert.system_id == system_id, ReclassificationAlert.state == AlertState.OPEN
        )
    )


def alert_if_on_cloud(
    session: Session, system: LegacySystem, *, actor: Actor, entry_point: str
) -> ReclassificationAlert | None:
    """After ``system`` became classified: raise (once) the alert that its servers must leave."""
    if not system.is_classified and system.network != LegacyNetwork.INTRANET:
        return None
    servers = servers_on_cloud(session, system)
    if not servers:
        return None
    existing = open_alert_of(session, system.id)
    if existing is not None:
        existing.servers = servers
        return existing
    username = actor.username
    alert = ReclassificationAlert(
        system_id=system.id,
        state=AlertState.OPEN.value,
        servers=servers,
        raised_by=username,
        raised_at=utcnow(),
        entry_point=entry_point[:64],
    )
    session.add(alert)
    session.flush()
    audit.record(
        session,
        actor=username,
        action=RECLASSIFIED_ON_CLOUD_ACTION,
        target_type=AUDIT_TARGET,
        target_id=system.id,
        reason=f"{system.hostname} is now {system.classification} on the {system.network}: "
        "its servers must leave the cloud",
        detail={"hostname": system.hostname, "servers": servers, "entry_point": entry_point, "alert_id": alert.id},
    )
    RECLASSIFICATION_ALERTS.inc()
    log.warning("system %s reclassified with %d server(s) on the cloud", system.hostname, len(servers))
    return alert


@dataclass(frozen=True)
class AlertView:
    alert: ReclassificationAlert
    servers_now: list[str]  # what is still on the cloud, read now


def open_alerts(session: Session, *, system_id: int | None = None) -> list[AlertView]:
    query = (
        select(ReclassificationAlert)
        .where(ReclassificationAlert.state == AlertState.OPEN)
        .options(joinedload(ReclassificationAlert.system).joinedload(LegacySystem.department))
        .order_by(ReclassificationAlert.id)
    )
    if system_id is not None:
        query = query.where(ReclassificationAlert.system_id == system_id)
    return [AlertView(a, servers_on_cloud(session, a.system)) for a in session.scalars(query).unique()]


def close_alert(session: Session, alert_id: int, *, actor: Actor, reason: str | None) -> ReclassificationAlert:
    """Close an open alert: "resolved" when nothing is left on the cloud, otherwise
    "acknowledged", which needs a reason (who decided to leave servers there, and why)."""
    alert = session.get(ReclassificationAlert, alert_id)
    if alert is None:
        raise AlertNotFound(f"no reclassification alert {alert_id}")
    if alert.state != AlertState.OPEN:
        raise Conflict(f"alert {alert_id} is already {alert.state}")
    remaining = servers_on_cloud(session, alert.system)
    text = _reason(reason, required=bool(remaining))
    alert.state = (AlertState.ACKNOWLEDGED if remaining else AlertState.RESOLVED).value
    alert.closed_by, alert.closed_at, alert.close_reason = actor.username, utcnow(), text or None
    audit.record(
        session,
        actor=actor.username,
        action=ALERT_CLOSED_ACTION,
        target_type=AUDIT_TARGET,
        target_id=alert.system_id,
        reason=text or None,
        detail={"alert_id": alert.id, "state": alert.state, "servers_remaining": remaining},
    )
    return alert


def resolve_cleared_alerts(session: Session, *, actor: Actor = CLEARING_ACTOR) -> int:
    """Close, as resolved, every open alert whose servers have all left the cloud."""
    closed = 0
    for view in open_alerts(session):
        if not view.servers_now:
            close_alert(session, view.alert.id, actor=actor, reason="the servers left the cloud")
            closed += 1
    return closed


# --- declassification: held for a second person ---------------------------------------------------


def pending_request_of(session: Session, system_id: int) -> DeclassificationRequest | None:
    return session.scalar(
        select(DeclassificationRequest).where(
            DeclassificationRequest.system_id == system_id,
            DeclassificationRequest.state == DeclassificationState.PENDING,
        )
    )


def request_declassification(
    session: Session,
    system: LegacySystem,
    *,
    to_classification: str,
    to_network: str,
    actor: Actor,
    entry_point: str,
    reason: str | None,
) -> tuple[DeclassificationRequest, bool]:
    """File (or find) the pending request to lower ``system``; the system itself is unchanged.

    Returns the request and whether it is new.  A system has at most one pending request: a
    second lowering (a re-import at every start) finds the first instead of piling up."""
    existing = pending_request_of(session, system.id)
    if existing is not None:
        return existing, False
    username = actor.username
    text = _reason(reason, required=False)
    request = DeclassificationRequest(
        system_id=system.id,
        from_classification=system.classification,
        from_network=system.network,
        to_classification=to_classification,
        to_network=to_network,
        state=DeclassificationState.PENDING.value,
        requested_by=username,
        requested_at=utcnow(),
        entry_point=entry_point[:64],
        reason=text,
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        actor=username,
        action=REQUESTED_ACTION,
        target_type=AUDIT_TARGET,
        target_id=system.id,
        reason=text or None,
        detail={
            "hostname": system.hostname,
            "request_id": request.id,
            "entry_point": entry_point,
            "from": {"classification": system.classification, "network": system.network},
            "to": {"classification": to_classification, "network": to_network},
        },
    )
    DECLASSIFICATIONS_HELD.labels(entry_point=entry_point.split(".", 1)[0][:32]).inc()
    return request, True


def list_requests(
    session: Session, *, state: str | None = None, system_id: int | None = None, limit: int = 500
) -> Sequence[DeclassificationRequest]:
    query = select(DeclassificationRequest).options(
        joinedload(DeclassificationRequest.system).joinedload(LegacySystem.department)
    )
    if state:
        query = query.where(DeclassificationRequest.state == state)
    if system_id is not None:
        query = query.where(DeclassificationRequest.system_id == system_id)
    return session.scalars(query.order_by(DeclassificationRequest.id.desc()).limit(limit)).unique().all()


def get_request(session: Session, request_id: int, *, for_update: bool = False) -> DeclassificationRequest:
    query = select(DeclassificationRequest).where(DeclassificationRequest.id == request_id)
    if for_update:
        query = query.with_for_update()
    request = session.scalar(query)
    if request is None:
        raise DeclassificationNotFound(f"no declassification request {request_id}")
    return request


def may_decide_declassification(actor: Actor, request: DeclassificationRequest) -> bool:
    """Who decides a declassification: an administrator, while the request is pending (approve or reject)."""
    return actor.role == Role.ADMIN and request.state == DeclassificationState.PENDING


def may_approve_declassification(actor: Actor, request: DeclassificationRequest) -> bool:
    """Approving needs a second person: an administrator who may decide it and did not ask for it."""
    return may_decide_declassification(actor, request) and actor.username != request.requested_by


def _decider(request: DeclassificationRequest, actor: Actor) -> None:
    """Raise the reason :func:`may_decide_declassification` says no (the role first, then the state)."""
    if may_decide_declassification(actor, request):
        return
    if actor.role != Role.ADMIN:
        raise AdministratorRequired("only an administrator decides a declassification")
    if request.state != DeclassificationState.PENDING:
        raise DeclassificationDecided(f"declassification request {request.id} is already {request.state}")


def approve(session: Session, request_id: int, *, actor: Actor, reason: str | None) -> DeclassificationRequest:
    """An administrator other than the requester approves: the system is lowered now."""
    request = get_request(session, request_id, for_update=True)
    _decider(request, actor)
    if not may_approve_declassification(actor, request):
        raise SelfApprovalRefused(
            f"{actor.username} asked for this declassification: another administrator must approve it"
        )
    text = _reason(reason, required=False)
    system = request.system
    if (system.classification, system.network) != (request.from_classification, request.from_network):
        raise DeclassificationDecided(
            f"{system.hostname} changed since the request ({system.classification} on the {system.network}): "
            "reject it and ask again"
        )
    system.classification, system.network = request.to_classification, request.to_network
    system.updated_at = utcnow()
    request.state = DeclassificationState.APPROVED.value
    request.decided_by, request.decided_at, request.decision_reason = actor.username, utcnow(), text or None
    if system.in_scope and system.state == SystemState.INTRANET:
        transition_system(
            session, system, SystemState.LEGACY, actor=actor, reason=f"declassification #{request.id} approved"
        )
    audit.record(
        session,
        actor=actor.username,
        action=APPROVED_ACTION,
        target_type=AUDIT_TARGET,
        target_id=system.id,
        reason=text or None,
        detail={
            "hostname": system.hostname,
            "request_id": request.id,
            "requested_by": request.requested_by,
            "to": {"classification": request.to_classification, "network": request.to_network},
        },
    )
    session.flush()
    from cloudmgr.inventory.assessment import assess_all

    assess_all(session)
    return request


def reject(session: Session, request_id: int, *, actor: Actor, reason: str | None) -> DeclassificationRequest:
    """An administrator rejects: the system stays as it is."""
    request = get_request(session, request_id, for_update=True)
    _decider(request, actor)
    text = _reason(reason, required=True)
    request.state = DeclassificationState.REJECTED.value
    request.decided_by, request.decided_at, request.decision_reason = actor.username, utcnow(), text
    audit.record(
        session,
        actor=actor.username,
        action=REJECTED_ACTION,
        target_type=AUDIT_TARGET,
        target_id=request.system_id,
        reason=text,
        detail={"hostname": request.system.hostname, "request_id": request.id, "requested_by": request.requested_by},
    )
    return request
