"""A submitted purchase's findings (duplicates, a cloud offer, a system being migrated), computed from the
database in the caller's unit of work; the clouds' live capacity is read later by the purchase.findings
work item (:mod:`cloudmgr.purchases.jobs`), queued here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, inspect, or_, select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.config import Settings
from cloudmgr.db import utcnow
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.models import Cloud
from cloudmgr.purchases.matching import Specs, match_items, text_similarity
from cloudmgr.purchases.models import (
    Category,
    FindingKind,
    PurchaseFinding,
    PurchaseRequest,
    PurchaseState,
    Severity,
)
from cloudmgr.purchases.offers import CapacityReader, Needs, find_offer
from cloudmgr.purchases.rules import DUPLICATE_WINDOW_DAYS, HARDWARE, WEIGHTS
from cloudmgr.quotas.files import QuotaDefinitions
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.workqueue.services import enqueue


def _live_findings_key(purchase: PurchaseRequest) -> str:
    return f"purchase-findings:{purchase.id}:{purchase.submissions}"


def live_findings_pending(session: Session, purchase: PurchaseRequest) -> bool:
    """True while the findings of this submission still wait for the clouds' live capacity."""
    from cloudmgr.workqueue.models import WorkItem, WorkState

    return (
        session.scalar(
            select(WorkItem.id).where(
                WorkItem.key == _live_findings_key(purchase),
                WorkItem.state.in_([WorkState.QUEUED.value, WorkState.RUNNING.value]),
            )
        )
        is not None
    )


def queue_live_findings(session: Session, purchase: PurchaseRequest) -> None:
    """The findings again once the clouds' live capacity is read (after this transaction commits)."""
    enqueue(
        session,
        "purchase.findings",
        _live_findings_key(purchase),
        {"purchase_id": purchase.id, "submission": purchase.submissions},
        max_attempts=3,
    )


@dataclass
class FindingContext:
    """What the findings read besides the database: free capacity and the quota sizes.

    Inside a request's transaction the capacity is the latest snapshot's (no cloud call there);
    the purchase-findings job (:mod:`cloudmgr.purchases.jobs`) reads it live first, outside any
    transaction, and computes the findings again with it."""

    definitions: QuotaDefinitions | None = None
    duplicate_window_days: int = DUPLICATE_WINDOW_DAYS
    capacity: CapacityReader = field(default_factory=CapacityReader)


def context_for(settings: Settings | None) -> FindingContext:
    definitions = None
    if settings is not None:
        from cloudmgr.quotas.errors import QuotaFilesInvalid
        from cloudmgr.quotas.files import read_quota_files

        try:
            definitions = read_quota_files(settings.quotas_dir)
        except QuotaFilesInvalid:
            definitions = None  # no standard step then: the headroom alone counts
    return FindingContext(definitions=definitions)


def needs_of(purchase: PurchaseRequest) -> Needs:
    sized = [i for i in purchase.items if i.has_specs]
    return Needs(
        vcpus=sum(i.vcpus * i.quantity for i in sized),
        ram_mb=sum(i.ram_gb * 1024 * i.quantity for i in sized),
        disk_gb=sum(i.disk_gb * i.quantity for i in sized),
        servers=sum(i.quantity for i in sized),
        max_vcpus=max((i.vcpus for i in sized), default=0),
        max_ram_mb=max((i.ram_gb * 1024 for i in sized), default=0),
    )


def compute_findings(session: Session, purchase: PurchaseRequest, context: FindingContext) -> list[PurchaseFinding]:
    """Replace the purchase's findings with those of now; sets the queue score."""
    purchase.findings.clear()
    session.flush()
    legacy = _legacy_system(session, purchase.legacy_hostname, purchase.department_id)
    # The classified exception skips the "cloud provides it" finding only when it is the
    # department's recorded declaration on this purchase, and the inventory does not contradict
    # it (a named host of the department's own inventory that is not classified).  Naming a
    # classified host alone does not: the purchase is for new hardware, and finance must still
    # see what the cloud offers, or a department could dodge the finding by naming any host.
    exception = purchase.classified and (legacy is None or bool(legacy.get("classified")))
    candidates = [
        _classified(purchase, legacy, exception=exception),
        _server_room(purchase),
        None if exception else _cloud_offer(session, purchase, context),
        _duplicates(session, purchase, context.duplicate_window_days),
        None if exception else _migrating(session, purchase, legacy),
    ]
    findings = [finding for finding in candidates if finding is not None]
    for finding in findings:
        purchase.findings.append(finding)
    purchase.findings_score = sum(WEIGHTS[FindingKind(f.kind)] for f in findings)
    session.flush()
    return findings


def _classified(purchase: PurchaseRequest, legacy: dict[str, Any] | None, *, exception: bool) -> PurchaseFinding | None:
    """The purchase is declared classified, or names a classified system: the exception, or why it is not one."""
    if not (purchase.classified or bool(legacy and legacy.get("classified"))):
        return None
    summary = Message(
        N_("classified system on the e-government intranet: the legitimate exception for hardware")
        if exception
        else N_(
            "declared classified, but the inventory records the named host as not classified: "
            "the cloud's offer is still weighed"
        )
        if purchase.classified
        else N_(
            "names a classified system, but the purchase is not declared classified: the cloud's offer is still weighed"
        )
    )
    return PurchaseFinding(
        kind=FindingKind.CLASSIFIED.value,
        severity=Severity.INFO.value,
        summary=str(summary),
        evidence={
            "declared": purchase.classified,
            "legacy_system": legacy,
            "exception": exception,
            "message": summary.as_dict(),
        },
    )


def _server_room(purchase: PurchaseRequest) -> PurchaseFinding | None:
    """Building or renovating a server room: against policy."""
    if purchase.category != Category.SERVER_ROOM:
        return None
    return PurchaseFinding(
        kind=FindingKind.SERVER_ROOM.value,
        severity=Severity.BLOCK.value,
        summary="building or renovating a server room is against policy: departments build no new server rooms",
        evidence={"category": purchase.category, "rule": "各级政务部门不再新建实体机房和数据中心"},
    )


def _cloud_offer(session: Session, purchase: PurchaseRequest, context: FindingContext) -> PurchaseFinding | None:
    """For hardware: what the department's clouds offer instead (or why none fits now)."""
    if purchase.category not in HARDWARE:
        return None
    needs = needs_of(purchase)
    if needs.empty:
        return None
    offer, rejected = find_offer(
        session,
        department_id=purchase.department_id,
        needs=needs,
        purchase_amount=purchase.amount_yuan,
        capacity=context.capacity,
        definitions=context.definitions,
    )
    if offer is None:
        return PurchaseFinding(
            kind=FindingKind.NO_CLOUD_OFFER.value,
            severity=Severity.INFO.value,
            summary="no cloud offer fits the quota and the free capacity now",
            evidence={
                "needs": {"vcpus": needs.vcpus, "ram_mb": needs.ram_mb, "disk_gb": needs.disk_gb},
                "clouds": rejected,
            },
        )
    return PurchaseFinding(
        kind=FindingKind.CLOUD_PROVIDES.value,
        severity=Severity.BLOCK.value,
        summary=(
            f"the cloud provides it: {offer['flavor']} x {offer['count']} on {offer['cloud']} "
            f"({offer['zone']}), {offer['monthly_cost']} yuan a month instead of "
            f"{purchase.amount_yuan} yuan"
        ),
        evidence=offer,
    )


def _duplicates(session: Session, purchase: PurchaseRequest, window_days: int) -> PurchaseFinding | None:
    since = utcnow() - timedelta(days=window_days)
    others = session.scalars(
        select(PurchaseRequest)
        .where(
            PurchaseRequest.id != purchase.id,
            PurchaseRequest.state.in_(
                [PurchaseState.SUBMITTED, PurchaseState.RESUBMITTED, PurchaseState.RETURNED, PurchaseState.APPROVED]
            ),
            or_(PurchaseRequest.submitted_at >= since, PurchaseRequest.decided_at >= since),
        )
        .options(selectinload(PurchaseRequest.items), selectinload(PurchaseRequest.department))
        .order_by(PurchaseRequest.id)
    ).all()
    matches: list[dict[str, Any]] = []
    for other in others:
        best: dict[str, Any] | None = None
        for mine in purchase.items:
            for theirs in other.items:
                found = match_items(
                    mine.description,
                    Specs(mine.vcpus, mine.ram_gb, mine.disk_gb),
                    theirs.description,
                    Specs(theirs.vcpus, theirs.ram_gb, theirs.disk_gb),
                )
                if found is not None and (best is None or found.score > best["score"]):
                    best = {
                        "score": found.score,
                        "text_similarity": found.text,
                        "spec_similarity": found.spec,
                        "item": mine.description,
                        "other_item": theirs.description,
                        "other_specs": [theirs.vcpus, theirs.ram_gb, theirs.disk_gb, theirs.quantity],
                    }
        if best is not None:
            matches.append(
                {
                    **best,
                    "purchase_id": other.id,
                    "department_id": other.department_id,
                    "department": other.department.key,
                    "department_name_zh": other.department.name_zh,
                    "department_name_en": other.department.name_en,
                    "same_department": other.department_id == purchase.department_id,
                    "state": other.state,
                    "pending": other.state != PurchaseState.APPROVED,
                    "amount_yuan": str(other.amount_yuan),
                }
            )
    if not matches:
        return None
    matches.sort(key=lambda m: (-m["score"], m["purchase_id"]))
    pending = any(m["pending"] for m in matches)
    return PurchaseFinding(
        kind=FindingKind.DUPLICATE.value,
        severity=Severity.WARN.value,
        summary=(
            f"similar items were bought or asked for recently ({len(matches)} request(s))"
            + ("; overlaps a pending request" if pending else "")
        ),
        evidence={"matches": matches[:10], "window_days": window_days},
    )


def _legacy_system(session: Session, hostname: str | None, department_id: int) -> dict[str, Any] | None:
    """The purchasing department's legacy system of that hostname, when the inventory exists here.

    Only the department's own systems: another department's host does not exist as far as the
    purchase can tell (its department, application, state and classification stay hidden)."""
    if not hostname:
        return None
    try:
        from cloudmgr.inventory.models import LegacySystem
    except ImportError:  # pragma: no cover - the inventory is another issue's package
        return None
    # Inspect through the session's own connection: a second connection would wait for
    # the write lock this unit of work holds on SQLite.
    if not inspect(session.connection()).has_table(LegacySystem.__tablename__):
        return None
    system = session.scalar(
        select(LegacySystem).where(LegacySystem.hostname == hostname, LegacySystem.department_id == department_id)
    )
    if system is None:
        return None
    return {
        "hostname": system.hostname,
        "department_id": system.department_id,
        "application_system": system.application_system,
        "state": system.state,
        "classified": system.is_classified,
        "in_scope": system.in_scope,
        "network": system.network,
    }


def _migrating(session: Session, purchase: PurchaseRequest, legacy: dict[str, Any] | None) -> PurchaseFinding | None:
    evidence: dict[str, Any] = {}
    reasons = []
    if legacy is not None and legacy.get("in_scope"):
        evidence["legacy_system"] = legacy
        reasons.append(
            message(
                N_("legacy system %(host)s is %(state)s in the migration programme"),
                host=legacy["hostname"],
                state=Message(SYSTEM_STATE_WORDS.get(str(legacy["state"]), str(legacy["state"]))),
            )
        )
    name = purchase.application_system
    servers = session.execute(
        select(ServiceRequest.application_system, ServiceRequest.id, Cloud.key, func.count(ManagedServer.id))
        .join(ManagedServer, ManagedServer.request_id == ServiceRequest.id)
        .join(Cloud, Cloud.id == ServiceRequest.cloud_id)
        .where(
            ServiceRequest.department_id == purchase.department_id,
            ServiceRequest.application_system.is_not(None),
            ManagedServer.state.in_(["active", "stopped", "building", "pending"]),
        )
        .group_by(ServiceRequest.application_system, ServiceRequest.id, Cloud.key)
    ).all()
    on_cloud = [
        {"request_id": rid, "cloud": cloud, "servers": count, "application_system": app}
        for app, rid, cloud, count in servers
        if app and _same_system(app, name)
    ]
    if on_cloud:
        evidence["on_cloud"] = on_cloud
        reasons.append(
            message(
                N_("the application system already runs on the cloud (%(count)s VMs)"),
                count=sum(s["servers"] for s in on_cloud),
            )
        )
    requested = session.execute(
        select(ServiceRequest.id, ServiceRequest.application_system, ServiceRequest.state).where(
            ServiceRequest.department_id == purchase.department_id,
            ServiceRequest.application_system.is_not(None),
            ServiceRequest.state.in_(["draft", "submitted", "approved", "provisioning"]),
        )
    ).all()
    asked = [
        {"request_id": rid, "state": state, "application_system": app}
        for rid, app, state in requested
        if app and _same_system(app, name)
    ]
    if asked:
        evidence["requests"] = asked
        reasons.append(message(N_("VM requests for the application system are open (%(count)s)"), count=len(asked)))
    if not reasons:
        return None
    summary = message(N_("already migrating: %(reasons)s"), reasons="; ".join(str(r) for r in reasons))
    evidence["message"] = summary.as_dict()
    evidence["reasons"] = [r.as_dict() for r in reasons]
    return PurchaseFinding(
        kind=FindingKind.MIGRATING.value,
        severity=Severity.WARN.value,
        summary=str(summary),
        evidence=evidence,
    )


# A legacy system's state as a word in a sentence (cloudmgr.inventory's states).
SYSTEM_STATE_WORDS: dict[str, str] = {
    "legacy": N_("still in its server room"),
    "intranet": N_("on the e-government intranet"),
    "planned": N_("planned in a wave"),
    "migrating": N_("migrating"),
    "on_cloud": N_("on the cloud"),
    "rolled_back": N_("rolled back"),
    "decommissioned": N_("decommissioned"),
}


def _same_system(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower() or text_similarity(a, b) >= 0.8
