"""Purchase requests: drafting, submission with automatic findings, finance's decision,
withdrawal, and turning a blocked purchase's cloud offer into a VM request draft.

Every transition writes a PurchaseEvent and an audit event in the caller's unit of work
before anything else; reading a cloud's free capacity for the findings is a read only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, inspect, or_, select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.audit import services as audit
from cloudmgr.catalog.models import ItemKind
from cloudmgr.catalog.services import offered_items
from cloudmgr.config import Settings
from cloudmgr.db import utcnow
from cloudmgr.organisation import duties
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Role
from cloudmgr.purchases.errors import (
    NoCloudOffer,
    PurchaseForbidden,
    PurchaseInvalid,
    PurchaseNotFound,
    PurchaseTransitionInvalid,
)
from cloudmgr.purchases.matching import Specs, match_items, text_similarity
from cloudmgr.purchases.models import (
    PENDING_STATES,
    BlockBasis,
    Category,
    FindingKind,
    PurchaseAttachment,
    PurchaseEvent,
    PurchaseFinding,
    PurchaseItem,
    PurchaseRequest,
    PurchaseState,
    Severity,
)
from cloudmgr.purchases.offers import CapacityReader, Needs, find_offer
from cloudmgr.quotas.files import QuotaDefinitions
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.statemachine import StateMachine
from cloudmgr.workqueue.services import enqueue

MAX_ITEMS = 50
MAX_AMOUNT = Decimal("10000000000")  # ten billion yuan: anything above is a typo
MAX_QUANTITY = 10_000
MAX_VCPUS = 10_000
MAX_RAM_GB = 1_000_000
MAX_DISK_GB = 100_000_000
TITLE_MAX = 200
TEXT_MAX = 4000
REASON_MAX = 2000
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_ATTACHMENT_BYTES = 10 * 1024**3
DUPLICATE_WINDOW_DAYS = 365
CENT = Decimal("0.01")

P = PurchaseState
# Each action takes a purchase from one state to another: (from → to) per action.
PURCHASE_MACHINE: StateMachine[PurchaseState] = StateMachine(
    "a purchase request",
    PurchaseState,
    events={
        "submit": {P.DRAFT: P.SUBMITTED},
        "resubmit": {P.RETURNED: P.RESUBMITTED},
        "approve": {P.SUBMITTED: P.APPROVED, P.RESUBMITTED: P.APPROVED},
        "block": {P.SUBMITTED: P.BLOCKED, P.RESUBMITTED: P.BLOCKED},
        "return": {P.SUBMITTED: P.RETURNED, P.RESUBMITTED: P.RETURNED},
        "withdraw": {
            P.DRAFT: P.WITHDRAWN,
            P.SUBMITTED: P.WITHDRAWN,
            P.RETURNED: P.WITHDRAWN,
            P.RESUBMITTED: P.WITHDRAWN,
        },
    },
    error=PurchaseTransitionInvalid,
    open_states=frozenset(PurchaseState) - {P.APPROVED, P.BLOCKED, P.WITHDRAWN},
)
DECISIONS = ("approve", "block", "return")
# How much each finding weighs in the reviewer's queue.
WEIGHTS = {
    FindingKind.CLOUD_PROVIDES: 40,
    FindingKind.SERVER_ROOM: 40,
    FindingKind.DUPLICATE: 30,
    FindingKind.MIGRATING: 20,
    FindingKind.NO_CLOUD_OFFER: 0,
    FindingKind.CLASSIFIED: 0,
}
HARDWARE = frozenset({Category.SERVER, Category.STORAGE, Category.OTHER})


# --- input ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemInput:
    description: str
    quantity: int
    unit_price: Decimal
    vcpus: int = 0
    ram_gb: int = 0
    disk_gb: int = 0


@dataclass(frozen=True)
class PurchaseForm:
    title: str
    category: str
    amount_yuan: Decimal
    application_system: str
    justification: str
    items: Sequence[ItemInput]
    legacy_hostname: str | None = None
    classified: bool = False


def _money(value: Any, what: str, problems: list[str]) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        problems.append(f"{what} is not an amount of yuan")
        return None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        problems.append(f"{what} must be between 0 and {MAX_AMOUNT} yuan")
        return None
    if amount != amount.quantize(CENT):
        problems.append(f"{what} has more than two decimals")
        return None
    return amount.quantize(CENT)


def validate_form(form: PurchaseForm) -> list[str]:
    """Every problem of ``form`` (empty when it is fine)."""
    problems: list[str] = []
    if not form.title.strip():
        problems.append("a title is required")
    elif len(form.title) > TITLE_MAX:
        problems.append(f"the title is too long (at most {TITLE_MAX} characters)")
    if form.category not in set(Category):
        problems.append(f"the category must be one of {', '.join(Category)}")
    if not form.application_system.strip():
        problems.append("name the application system the purchase serves")
    elif len(form.application_system) > 128:
        problems.append("the application system name is too long (at most 128 characters)")
    if form.legacy_hostname is not None and len(form.legacy_hostname) > 128:
        problems.append("the legacy hostname is too long (at most 128 characters)")
    if not form.justification.strip():
        problems.append("a justification is required")
    elif len(form.justification) > TEXT_MAX:
        problems.append(f"the justification is too long (at most {TEXT_MAX} characters)")
    if not form.items:
        problems.append("add at least one item")
    elif len(form.items) > MAX_ITEMS:
        problems.append(f"at most {MAX_ITEMS} items")
    total = Decimal(0)
    for n, item in enumerate(form.items, start=1):
        if not item.description.strip():
            problems.append(f"item {n}: a description is required")
        elif len(item.description) > 255:
            problems.append(f"item {n}: the description is too long (at most 255 characters)")
        for name, value, maximum in (
            ("quantity", item.quantity, MAX_QUANTITY),
            ("vCPU", item.vcpus, MAX_VCPUS),
            ("RAM (GB)", item.ram_gb, MAX_RAM_GB),
            ("disk (GB)", item.disk_gb, MAX_DISK_GB),
        ):
            low = 1 if name == "quantity" else 0
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= maximum:
                problems.append(f"item {n}: {name} must be a whole number between {low} and {maximum}")
        price = _money(item.unit_price, f"item {n}: the unit price", problems)
        if price is not None and isinstance(item.quantity, int) and 1 <= item.quantity <= MAX_QUANTITY:
            total += price * item.quantity
    amount = _money(form.amount_yuan, "the amount", problems)
    if amount is not None and not problems and amount != total.quantize(CENT):
        problems.append(f"the amount ({amount} yuan) is not the sum of the items ({total.quantize(CENT)} yuan)")
    return problems


# --- reading --------------------------------------------------------------------------------


def _visible(actor: Actor, purchase: PurchaseRequest) -> bool:
    return actor.can_see_department(purchase.department_id)


def get_purchase(session: Session, actor: Actor, purchase_id: int, *, for_update: bool = False) -> PurchaseRequest:
    purchase = session.get(PurchaseRequest, purchase_id, with_for_update=for_update)
    if purchase is None or not _visible(actor, purchase):
        # Another department's purchase does not exist as far as this user can tell.
        raise PurchaseNotFound(f"no purchase request {purchase_id}")
    return purchase


@dataclass(frozen=True)
class PurchaseFilter:
    state: str | None = None
    category: str | None = None
    department_id: int | None = None
    page: int = 1
    per_page: int = 25


def list_purchases(session: Session, actor: Actor, filters: PurchaseFilter) -> tuple[Sequence[PurchaseRequest], int]:
    query = select(PurchaseRequest)
    if actor.is_department:
        query = query.where(PurchaseRequest.department_id == actor.department_id)
    elif filters.department_id is not None:
        query = query.where(PurchaseRequest.department_id == filters.department_id)
    if filters.state:
        query = query.where(PurchaseRequest.state == filters.state)
    if filters.category:
        query = query.where(PurchaseRequest.category == filters.category)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(selectinload(PurchaseRequest.department), selectinload(PurchaseRequest.findings))
        .order_by(PurchaseRequest.id.desc())
        .offset((filters.page - 1) * filters.per_page)
        .limit(filters.per_page)
    ).all()
    return rows, total


QUEUE_SORTS = ("findings", "amount")


def review_queue(session: Session, actor: Actor, *, sort: str = "findings") -> Sequence[PurchaseRequest]:
    """What waits for finance: strongest findings first (then the largest amount), or by amount."""
    if actor.role not in {Role.FINANCE, Role.ADMIN, Role.OPERATOR}:
        raise PurchaseForbidden("only finance reviewers see the review queue")
    order = (
        (PurchaseRequest.amount_yuan.desc(), PurchaseRequest.findings_score.desc())
        if sort == "amount"
        else (PurchaseRequest.findings_score.desc(), PurchaseRequest.amount_yuan.desc())
    )
    return session.scalars(
        select(PurchaseRequest)
        .where(PurchaseRequest.state.in_(PENDING_STATES))
        .options(selectinload(PurchaseRequest.department), selectinload(PurchaseRequest.findings))
        .order_by(*order, PurchaseRequest.id)
    ).all()


# --- transitions ----------------------------------------------------------------------------


def _transition(
    session: Session, purchase: PurchaseRequest, action: str, *, actor: str, reason: str | None = None
) -> None:
    target = PURCHASE_MACHINE.fire(purchase.state, action)
    _event(session, purchase, action, target.value, actor=actor, reason=reason)
    PURCHASE_MACHINE.apply(purchase, target)
    purchase.state_reason = reason


def _event(
    session: Session, purchase: PurchaseRequest, action: str, to_state: str, *, actor: str, reason: str | None = None
) -> None:
    session.add(
        PurchaseEvent(
            purchase_id=purchase.id,
            actor=actor,
            action=action,
            from_state=purchase.state,
            to_state=to_state,
            reason=reason,
        )
    )
    audit.record(
        session,
        actor=actor,
        action=f"purchase.{action}",
        target_type="purchase_request",
        target_id=purchase.id,
        reason=reason,
        detail={"from": purchase.state, "to": to_state, "amount_yuan": str(purchase.amount_yuan)},
    )


def _require_department_user(actor: Actor) -> int:
    if actor.role not in {Role.DEPT_STAFF, Role.DEPT_HEAD} or actor.department_id is None:
        raise PurchaseForbidden("only department users request purchases")
    return actor.department_id


def may_change(actor: Actor, purchase: PurchaseRequest) -> bool:
    """Whether ``actor`` may edit, attach to, submit or withdraw ``purchase``: its author, or the
    head of its department (the rule of VM requests' drafts); a colleague may not."""
    return (
        actor.is_department
        and actor.department_id == purchase.department_id
        and (purchase.created_by == actor.username or actor.role == Role.DEPT_HEAD)
    )


def _require_author_or_head(actor: Actor, purchase: PurchaseRequest) -> None:
    if not may_change(actor, purchase):
        raise PurchaseForbidden(
            f"only the author ({purchase.created_by}) or the department head changes purchase request {purchase.id}"
        )


def may_decide(session: Session, actor: Actor, purchase: PurchaseRequest) -> bool:
    """Whether ``actor`` may decide ``purchase`` now (pages hide the decision form otherwise)."""
    return (
        actor.role == Role.FINANCE
        and purchase.state in PENDING_STATES
        and duties.may_decide_own(session, actor, author=purchase.created_by, department_id=purchase.department_id)
    )


def _apply_form(purchase: PurchaseRequest, form: PurchaseForm) -> None:
    problems = validate_form(form)
    if problems:
        raise PurchaseInvalid("; ".join(problems))
    purchase.title = form.title.strip()
    purchase.category = form.category
    purchase.amount_yuan = Decimal(str(form.amount_yuan)).quantize(CENT)
    purchase.application_system = form.application_system.strip()
    purchase.legacy_hostname = (form.legacy_hostname or "").strip() or None
    purchase.classified = bool(form.classified)
    purchase.justification = form.justification.strip()
    purchase.items.clear()
    for position, item in enumerate(form.items, start=1):
        purchase.items.append(
            PurchaseItem(
                position=position,
                description=item.description.strip(),
                vcpus=item.vcpus,
                ram_gb=item.ram_gb,
                disk_gb=item.disk_gb,
                quantity=item.quantity,
                unit_price=Decimal(str(item.unit_price)).quantize(CENT),
            )
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
    _event(session, purchase, "create", PurchaseState.DRAFT, actor=actor.username)
    if submit:
        submit_purchase(session, actor, purchase.id, context=context or FindingContext())
    return purchase


def update_purchase(session: Session, actor: Actor, purchase_id: int, form: PurchaseForm) -> PurchaseRequest:
    """The department edits a draft, or a purchase returned to it for information."""
    _require_department_user(actor)
    purchase = get_purchase(session, actor, purchase_id, for_update=True)
    _require_author_or_head(actor, purchase)
    if not purchase.is_editable:
        raise PurchaseTransitionInvalid(f"a purchase request that is {purchase.state} cannot be changed")
    _apply_form(purchase, form)
    _event(session, purchase, "edit", purchase.state, actor=actor.username)
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
    _transition(session, purchase, action, actor=actor.username)
    purchase.submitted_at = utcnow()
    purchase.submissions += 1
    purchase.decided_by = purchase.decided_at = None
    purchase.block_basis = None
    purchase.offer = None
    compute_findings(session, purchase, context)
    queue_live_findings(session, purchase)
    return purchase


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


def withdraw_purchase(session: Session, actor: Actor, purchase_id: int, *, reason: str = "") -> PurchaseRequest:
    _require_department_user(actor)
    purchase = get_purchase(session, actor, purchase_id, for_update=True)
    _require_author_or_head(actor, purchase)
    _transition(session, purchase, "withdraw", actor=actor.username, reason=reason.strip()[:REASON_MAX] or None)
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
    if actor.role != Role.FINANCE:
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
    _transition(session, purchase, decision, actor=actor.username, reason=reason or None)
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
    _event(
        session, purchase, "vm_draft", purchase.state, actor=actor.username, reason=f"VM request draft #{request.id}"
    )
    return request


# --- findings -------------------------------------------------------------------------------


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
    findings: list[PurchaseFinding] = []
    legacy = _legacy_system(session, purchase.legacy_hostname, purchase.department_id)
    classified = purchase.classified or bool(legacy and legacy.get("classified"))
    # The classified exception skips the "cloud provides it" finding only when it is the
    # department's recorded declaration on this purchase, and the inventory does not contradict
    # it (a named host of the department's own inventory that is not classified).  Naming a
    # classified host alone does not: the purchase is for new hardware, and finance must still
    # see what the cloud offers, or a department could dodge the finding by naming any host.
    exception = purchase.classified and (legacy is None or bool(legacy.get("classified")))
    if classified:
        findings.append(
            PurchaseFinding(
                kind=FindingKind.CLASSIFIED.value,
                severity=Severity.INFO.value,
                summary=(
                    "classified system on the e-government intranet: the legitimate exception for hardware"
                    if exception
                    else "declared classified, but the inventory records the named host as not classified: "
                    "the cloud's offer is still weighed"
                    if purchase.classified
                    else "names a classified system, but the purchase is not declared classified: "
                    "the cloud's offer is still weighed"
                ),
                evidence={"declared": purchase.classified, "legacy_system": legacy, "exception": exception},
            )
        )
    if purchase.category == Category.SERVER_ROOM:
        findings.append(
            PurchaseFinding(
                kind=FindingKind.SERVER_ROOM.value,
                severity=Severity.BLOCK.value,
                summary="building or renovating a server room is against policy: departments build no new server rooms",
                evidence={"category": purchase.category, "rule": "各级政务部门不再新建实体机房和数据中心"},
            )
        )
    if not exception and purchase.category in HARDWARE:
        needs = needs_of(purchase)
        if not needs.empty:
            offer, rejected = find_offer(
                session,
                department_id=purchase.department_id,
                needs=needs,
                purchase_amount=purchase.amount_yuan,
                capacity=context.capacity,
                definitions=context.definitions,
            )
            if offer is not None:
                findings.append(
                    PurchaseFinding(
                        kind=FindingKind.CLOUD_PROVIDES.value,
                        severity=Severity.BLOCK.value,
                        summary=(
                            f"the cloud provides it: {offer['flavor']} x {offer['count']} on {offer['cloud']} "
                            f"({offer['zone']}), {offer['monthly_cost']} yuan a month instead of "
                            f"{purchase.amount_yuan} yuan"
                        ),
                        evidence=offer,
                    )
                )
            else:
                findings.append(
                    PurchaseFinding(
                        kind=FindingKind.NO_CLOUD_OFFER.value,
                        severity=Severity.INFO.value,
                        summary="no cloud offer fits the quota and the free capacity now",
                        evidence={
                            "needs": {"vcpus": needs.vcpus, "ram_mb": needs.ram_mb, "disk_gb": needs.disk_gb},
                            "clouds": rejected,
                        },
                    )
                )
    duplicate = _duplicates(session, purchase, context.duplicate_window_days)
    if duplicate is not None:
        findings.append(duplicate)
    if not exception:
        migrating = _migrating(session, purchase, legacy)
        if migrating is not None:
            findings.append(migrating)
    for finding in findings:
        purchase.findings.append(finding)
    purchase.findings_score = sum(WEIGHTS[FindingKind(f.kind)] for f in findings)
    session.flush()
    return findings


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
        reasons.append(f"legacy system {legacy['hostname']} is {legacy['state']} in the migration programme")
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
        reasons.append(f"the application system already runs on the cloud ({sum(s['servers'] for s in on_cloud)} VMs)")
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
        reasons.append(f"VM requests for the application system are open ({len(asked)})")
    if not reasons:
        return None
    return PurchaseFinding(
        kind=FindingKind.MIGRATING.value,
        severity=Severity.WARN.value,
        summary="already migrating: " + "; ".join(reasons),
        evidence=evidence,
    )


def _same_system(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower() or text_similarity(a, b) >= 0.8
