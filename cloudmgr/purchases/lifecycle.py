"""A purchase's life: drafting, attachments, submission, withdrawal, finance's decision and the VM request
draft made from a blocked purchase's cloud offer.  Every transition writes a PurchaseEvent and an audit
event in the caller's unit of work; nothing here reaches a cloud."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.catalog.models import ItemKind
from cloudmgr.catalog.services import offered_items
from cloudmgr.config import Settings
from cloudmgr.db import utcnow
from cloudmgr.organisation import duties
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.purchases.errors import (
    NoCloudOffer,
    PurchaseForbidden,
    PurchaseInvalid,
    PurchaseTransitionInvalid,
)
from cloudmgr.purchases.findings import FindingContext, compute_findings, queue_live_findings
from cloudmgr.purchases.forms import PurchaseForm, _apply_form
from cloudmgr.purchases.models import (
    BlockBasis,
    FindingKind,
    PurchaseAttachment,
    PurchaseEvent,
    PurchaseRequest,
    PurchaseState,
)
from cloudmgr.purchases.reading import get_purchase
from cloudmgr.purchases.rules import (
    DECISIONS,
    MAX_ATTACHMENT_BYTES,
    PURCHASE_MACHINE,
    REASON_MAX,
    SHA256,
    TEXT_MAX,
    _require_author,
    _require_author_or_head,
    _require_department_user,
    may_review_purchases,
)
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.models import ServiceRequest


def _transition(
    session: Session, purchase: PurchaseRequest, action: str, *, actor: Actor, reason: str | None = None
) -> None:
    target = PURCHASE_MACHINE.fire(purchase.state, action)
    _event(session, purchase, action, target.value, actor=actor, reason=reason)
    PURCHASE_MACHINE.apply(purchase, target)
    purchase.state_reason = reason


def _event(
    session: Session, purchase: PurchaseRequest, action: str, to_state: str, *, actor: Actor, reason: str | None = None
) -> None:
    session.add(
        PurchaseEvent(
            purchase_id=purchase.id,
            actor=actor.username,
            action=action,
            from_state=purchase.state,
            to_state=to_state,
            reason=reason,
        )
    )
    audit.record(
        session,
        actor=actor.username,
        action=f"purchase.{action}",
        target_type="purchase_request",
        target_id=purchase.id,
        reason=reason,
        detail={"from": purchase.state, "to": to_state, "amount_yuan": str(purchase.amount_yuan)},
    )


def create_purchase(
    session: Session,
    actor: Actor,
    form: PurchaseForm,
    *,
    submit: bool = False,
    context: FindingContext | None = None,
) -> PurchaseRequest:
    """A department user's new purchase request, as a draft or submitted at once."""
    department_id = _require_department_user(actor)
    purchase = PurchaseRequest(
        department_id=department_id, state=PurchaseState.DRAFT, created_by=actor.username, items=[]
    )
    _apply_form(purchase, form)
    session.add(purchase)
    session.flush()
    _event(session, purchase, "create", PurchaseState.DRAFT, actor=actor)
    if submit:
        submit_purchase(session, actor, purchase.id, context=context or FindingContext())
    return purchase


def update_purchase(session: Session, actor: Actor, purchase_id: int, form: PurchaseForm) -> PurchaseRequest:
    """The department edits a draft, or a purchase returned to it for information."""
    _require_department_user(actor)
    purchase = get_purchase(session, actor, purchase_id, for_update=True)
    _require_author(actor, purchase)
    if not purchase.is_editable:
        raise PurchaseTransitionInvalid(f"a purchase request that is {purchase.state} cannot be changed")
    _apply_form(purchase, form)
    _event(session, purchase, "edit", purchase.state, actor=actor)
    return purchase


def add_attachment(
    session: Session, actor: Actor, purchase_id: int, *, file_name: str, size_bytes: int, sha256: str
) -> PurchaseAttachment:
    """Record an attachment's metadata (name, size, SHA-256); the file is not stored here."""
    _require_department_user(actor)
    purchase = get_purchase(session, actor, purchase_id, for_update=True)
    _require_author_or_head(actor, purchase)
    if not purchase.is_editable:
        raise PurchaseTransitionInvalid(f"a purchase request that is {purchase.state} cannot be changed")
    problems = []
    file_name = (file_name or "").strip()
    if not file_name or len(file_name) > 255 or "/" in file_name or "\\" in file_name:
        problems.append("the file name is required (at most 255 characters, no folders)")
    if isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or not 0 < size_bytes <= MAX_ATTACHMENT_BYTES:
        problems.append(f"the size must be between 1 and {MAX_ATTACHMENT_BYTES} bytes")
    sha = (sha256 or "").strip().lower()
    if not SHA256.match(sha):
        problems.append("the SHA-256 must be 64 hexadecimal characters")
    if problems:
        raise PurchaseInvalid("; ".join(problems))
    attachment = PurchaseAttachment(file_name=file_name, size_bytes=size_bytes, sha256=sha, added_by=actor.username)
    purchase.attachments.append(attachment)
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="purchase.attach",
        target_type="purchase_request",
        target_id=purchase.id,
        detail={"file_name": file_name, "size_bytes": size_bytes, "sha256": sha},
    )
    return attachment


def submit_purchase(session: Session, actor: Actor, purchase_id: int, *, context: FindingContext) -> PurchaseRequest:
    """Submit a draft (or resubmit a returned purchase).  The findings are computed now from the
    database (capacity from the latest snapshot) and again, with the clouds' live capacity, by a
    work item queued in this transaction: no cloud is called while the purchase is locked."""
    _require_department_user(actor)
    purchase = get_purchase(session, actor, purchase_id, for_update=True)
    _require_author_or_head(actor, purchase)
    action = "resubmit" if purchase.state == PurchaseState.RETURNED else "submit"
    _transition(session, purchase, action, actor=actor)
    purchase.submitted_at = utcnow()
    purchase.submissions += 1
    purchase.decided_by = purchase.decided_at = None
    purchase.block_basis = None
    purchase.offer = None
    compute_findings(session, purchase, context)
    queue_live_findings(session, purchase)
    return purchase


def withdraw_purchase(session: Session, actor: Actor, purchase_id: int, *, reason: str = "") -> PurchaseRequest:
    _require_department_user(actor)
    purchase = get_purchase(session, actor, purchase_id, for_update=True)
    _require_author_or_head(actor, purchase)
    _transition(session, purchase, "withdraw", actor=actor, reason=reason.strip()[:REASON_MAX] or None)
    return purchase


def decide_purchase(
    session: Session,
    actor: Actor,
    purchase_id: int,
    *,
    decision: str,
    reason: str = "",
    basis: str | None = None,
) -> PurchaseRequest:
    """Finance approves, blocks (a reason is required) or returns (for information) a purchase."""
    if not may_review_purchases(actor):
        raise PurchaseForbidden("only finance reviewers decide purchase requests")
    if decision not in DECISIONS:
        raise PurchaseInvalid(f"the decision must be one of {', '.join(DECISIONS)}")
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise PurchaseInvalid(f"the reason is too long (at most {REASON_MAX} characters)")
    if decision in {"block", "return"} and not reason:
        raise PurchaseInvalid("a reason is required to block or return a purchase request")
    purchase = get_purchase(session, actor, purchase_id, for_update=True)
    # Finance decides; whoever wrote the purchase (e.g. a user whose role changed since) does not.
    duties.check_not_own(
        session,
        actor,
        author=purchase.created_by,
        department_id=purchase.department_id,
        what=f"purchase request {purchase.id}",
        target_type="purchase_request",
        target_id=purchase.id,
        audit_action="purchase.self_decided",
        detail={"decision": decision},
    )
    if decision == "block":
        if basis is None:
            basis = _default_basis(purchase)
        if basis not in set(BlockBasis):
            raise PurchaseInvalid(f"the basis must be one of {', '.join(BlockBasis)}")
        if basis == BlockBasis.CLOUD_PROVIDES and purchase.finding(FindingKind.CLOUD_PROVIDES) is None:
            raise PurchaseInvalid("this purchase has no cloud offer to block it on")
    elif basis is not None:
        raise PurchaseInvalid("a basis is given only when blocking")
    _transition(session, purchase, decision, actor=actor, reason=reason or None)
    purchase.decided_by, purchase.decided_at = actor.username, utcnow()
    if decision == "block":
        purchase.block_basis = basis
        finding = purchase.finding(FindingKind.CLOUD_PROVIDES)
        purchase.offer = dict(finding.evidence) if finding is not None and basis == BlockBasis.CLOUD_PROVIDES else None
    return purchase


def _default_basis(purchase: PurchaseRequest) -> str:
    for kind in (FindingKind.SERVER_ROOM, FindingKind.CLOUD_PROVIDES, FindingKind.DUPLICATE, FindingKind.MIGRATING):
        if purchase.finding(kind) is not None:
            return kind.value
    return BlockBasis.OTHER.value


def make_vm_draft(session: Session, actor: Actor, purchase_id: int, *, settings: Settings) -> ServiceRequest:
    """Turn the cloud offer of a purchase blocked because the cloud provides it into a VM request draft.

    Idempotent: a second call returns the draft made by the first."""
    _require_department_user(actor)
    purchase = get_purchase(session, actor, purchase_id, for_update=True)
    if (
        purchase.state != PurchaseState.BLOCKED
        or purchase.block_basis != BlockBasis.CLOUD_PROVIDES
        or not purchase.offer
    ):
        raise NoCloudOffer("only a purchase blocked because the cloud provides it has an offer to request")
    if purchase.service_request_id is not None:
        existing = session.get(ServiceRequest, purchase.service_request_id)
        if existing is not None:
            return existing
    offer = purchase.offer
    cloud = session.scalar(select(Cloud).where(Cloud.key == offer["cloud"]))
    if cloud is None:
        raise NoCloudOffer(f"cloud {offer['cloud']} no longer exists")
    images = offered_items(session, cloud.id, ItemKind.IMAGE)
    if not images:
        raise NoCloudOffer(f"no image is offered on cloud {cloud.key}")
    count = min(int(offer["count"]), sr.MAX_COUNT)
    form = sr.RequestForm(
        cloud_key=cloud.key,
        zone=str(offer["zone"]),
        flavor_item_id=int(offer["flavor_item_id"]),
        image_item_id=images[0].id,
        count=count,
        name_prefix=f"pr{purchase.id}",
        justification=(
            f"代替采购申请 #{purchase.id}（{purchase.title}）：云平台已提供，不再采购。"
            f"Instead of purchase request #{purchase.id}, blocked because the cloud provides it. "
            f"{purchase.justification}"
        )[:TEXT_MAX],
        expires_on=date.today() + timedelta(days=365),
        application_system=purchase.application_system,
    )
    request = sr.create_request(session, actor, form, submit=False, settings=settings)
    purchase.service_request_id = request.id
    _event(session, purchase, "vm_draft", purchase.state, actor=actor, reason=f"VM request draft #{request.id}")
    return request
