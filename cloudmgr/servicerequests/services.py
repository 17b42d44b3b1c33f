"""The self-service journey: quote, draft, submit, approve, reject, cancel, retry, lifecycle actions.

Every transition writes a RequestEvent and an audit event in the caller's unit of work,
and queues its side effects (provisioning, cloud actions, notifications) as work items in
that same transaction: nothing reaches the cloud before the decision is committed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, joinedload, object_session, selectinload

from cloudmgr.audit import services as audit
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.config import Settings
from cloudmgr.db import utcnow
from cloudmgr.metrics import APPROVAL_WAIT_SECONDS
from cloudmgr.organisation import duties
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud, NetworkZone, Role
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import NoQuota, QuotaExceeded
from cloudmgr.quotas.models import QuotaReservation, ReservationState
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.errors import (
    InvalidTransition,
    NotYourDepartment,
    NotYourTurn,
    RequestInvalid,
    RequestNotFound,
    ServerNotFound,
)
from cloudmgr.servicerequests.models import ManagedServer, RequestEvent, ServiceRequest
from cloudmgr.servicerequests.states import REQUEST_MACHINE, RequestState, ServerState
from cloudmgr.workqueue.services import enqueue

NAME_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
MAX_COUNT = 20
MAX_EXPIRY_DAYS = 3 * 365


# --- reading --------------------------------------------------------------------------------


def get_request(session: Session, actor: Actor, request_id: int, *, for_update: bool = False) -> ServiceRequest:
    request = session.get(ServiceRequest, request_id, with_for_update=for_update)
    if request is None:
        raise RequestNotFound(f"no request {request_id}")
    if not actor.can_see_department(request.department_id):
        # Other departments' requests do not exist as far as this user can tell.
        raise RequestNotFound(f"no request {request_id}")
    return request


@dataclass(frozen=True)
class RequestFilter:
    state: str | None = None
    cloud_key: str | None = None
    department_id: int | None = None
    page: int = 1
    per_page: int = 25


def _filtered_requests(actor: Actor, filters: RequestFilter) -> Select[tuple[ServiceRequest]]:
    query = select(ServiceRequest)
    if actor.is_department:
        query = query.where(ServiceRequest.department_id == actor.department_id)
    elif filters.department_id is not None:
        query = query.where(ServiceRequest.department_id == filters.department_id)
    if filters.state:
        query = query.where(ServiceRequest.state == filters.state)
    if filters.cloud_key:
        query = query.join(Cloud, Cloud.id == ServiceRequest.cloud_id).where(Cloud.key == filters.cloud_key)
    return query


def _window(query: Select[Any], filters: RequestFilter) -> Select[Any]:
    return (
        query.order_by(ServiceRequest.id.desc())
        .offset((max(filters.page, 1) - 1) * filters.per_page)
        .limit(filters.per_page)
    )


def list_requests(session: Session, actor: Actor, filters: RequestFilter) -> tuple[Sequence[ServiceRequest], int]:
    query = _filtered_requests(actor, filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        # Many-to-one: joined into the one query that reads the page.
        _window(query, filters).options(
            joinedload(ServiceRequest.cloud),
            joinedload(ServiceRequest.department),
            joinedload(ServiceRequest.flavor),
            joinedload(ServiceRequest.image),
        )
    ).all()
    return rows, total


@dataclass(frozen=True, slots=True)
class PageVersion:
    """What a page of the request list shows, in brief: the total and each row's id and
    ``updated_at`` (every change of a request moves its ``updated_at``).  Two equal versions
    mean the same rows in the same states, so a rendered page can be reused."""

    total: int
    rows: tuple[tuple[int, datetime], ...]


def request_page_version(session: Session, actor: Actor, filters: RequestFilter) -> PageVersion:
    query = _filtered_requests(actor, filters)
    # The total rides along with the page's rows (a window over the whole filtered set): one
    # round trip, not two.  Only a page past the end, which has no row to carry it, counts apart.
    window = _window(
        query.with_only_columns(ServiceRequest.id, ServiceRequest.updated_at, func.count().over().label("total")),
        filters,
    )
    rows = session.execute(window).all()
    total = int(rows[0].total) if rows else session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return PageVersion(total, tuple((row.id, row.updated_at) for row in rows))


def requests_by_ids(session: Session, ids: Sequence[int]) -> Sequence[ServiceRequest]:
    """The requests of a page (see :func:`request_page_version`), newest first."""
    if not ids:
        return []
    return session.scalars(
        select(ServiceRequest)
        .where(ServiceRequest.id.in_(ids))
        .options(
            joinedload(ServiceRequest.cloud),
            joinedload(ServiceRequest.department),
            joinedload(ServiceRequest.flavor),
            joinedload(ServiceRequest.image),
        )
        .order_by(ServiceRequest.id.desc())
    ).all()


def awaiting(session: Session, actor: Actor) -> Sequence[ServiceRequest]:
    """Requests whose next approval step is this actor's to take."""
    query = select(ServiceRequest).where(ServiceRequest.state == RequestState.SUBMITTED)
    if actor.is_department:
        query = query.where(ServiceRequest.department_id == actor.department_id)
    rows = session.scalars(query.order_by(ServiceRequest.submitted_at)).all()
    # The author's own requests wait for someone else (separation of duties).
    return [
        r
        for r in rows
        if r.next_role == actor.role.value
        and duties.may_decide_own(session, actor, author=r.created_by, department_id=r.department_id)
    ]


def list_servers(
    session: Session, actor: Actor, *, state: str | None = None, request_id: int | None = None, limit: int = 200
) -> Sequence[ManagedServer]:
    query = select(ManagedServer).options(selectinload(ManagedServer.cloud), selectinload(ManagedServer.flavor))
    if actor.is_department:
        query = query.where(ManagedServer.department_id == actor.department_id)
    if state:
        query = query.where(ManagedServer.state == state)
    if request_id is not None:
        query = query.where(ManagedServer.request_id == request_id)
    return session.scalars(query.order_by(ManagedServer.id.desc()).limit(limit)).all()


def get_server(session: Session, actor: Actor, server_id: int) -> ManagedServer:
    server = session.get(ManagedServer, server_id)
    if server is None or not actor.can_see_department(server.department_id):
        raise ServerNotFound(f"no server {server_id}")
    return server


# --- quoting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestForm:
    cloud_key: str
    zone: str
    flavor_item_id: int
    image_item_id: int
    count: int
    name_prefix: str
    justification: str
    expires_on: date
    application_system: str | None = None
    # The legacy system the VMs replace (issue 6); a classified one is refused and audited.
    legacy_system_id: int | None = None


@dataclass(frozen=True)
class Quote:
    monthly_cost: Decimal
    needs: dict[Resource, int]
    free: dict[Resource, int]
    limits: dict[Resource, int]
    fits: bool
    approval_steps: list[str]


def _needs(flavor: CatalogItem, count: int) -> dict[Resource, int]:
    return {Resource.CORES: flavor.vcpus * count, Resource.RAM_MB: flavor.ram_mb * count, Resource.INSTANCES: count}


def approval_steps(cloud: Cloud, monthly_cost: Decimal) -> list[str]:
    policy = cloud.approval_policy or {}
    steps = list(policy.get("steps") or ["dept_head", "operator"])
    threshold = policy.get("finance_above_yuan")
    if threshold is not None and monthly_cost > Decimal(str(threshold)) and "finance" not in steps:
        steps.append("finance")
    return steps


def _validated(
    session: Session, actor: Actor, form: RequestForm, today: date
) -> tuple[Cloud, CatalogItem, CatalogItem]:
    if actor.department_id is None:
        raise RequestInvalid("only department users request VMs")
    problems = []
    cloud = session.scalar(select(Cloud).where(Cloud.key == form.cloud_key))
    link = None
    if cloud is not None:
        link = session.scalar(
            select(DepartmentCloud).where(
                DepartmentCloud.department_id == actor.department_id, DepartmentCloud.cloud_id == cloud.id
            )
        )
    if cloud is None or link is None or not cloud.enabled:
        raise RequestInvalid(f"your department may not use cloud {form.cloud_key!r}")
    zone = session.scalar(select(NetworkZone).where(NetworkZone.cloud_id == cloud.id, NetworkZone.zone == form.zone))
    if zone is None:
        problems.append(f"cloud {cloud.key} has no {form.zone!r} zone")
    flavor = session.get(CatalogItem, form.flavor_item_id)
    if flavor is None or flavor.cloud_id != cloud.id or flavor.kind != ItemKind.FLAVOR.value or not flavor.offered:
        problems.append("choose a flavor offered on this cloud")
    image = session.get(CatalogItem, form.image_item_id)
    if image is None or image.cloud_id != cloud.id or image.kind != ItemKind.IMAGE.value or not image.offered:
        problems.append("choose an image offered on this cloud")
    if not 1 <= form.count <= MAX_COUNT:
        problems.append(f"count must be between 1 and {MAX_COUNT}")
    if not NAME_PREFIX.match(form.name_prefix or ""):
        problems.append("name prefix: 2-31 lower-case letters, digits or '-', starting with a letter")
    if not (form.justification or "").strip():
        problems.append("a justification is required")
    elif len(form.justification) > 4000:
        problems.append("the justification is too long (at most 4000 characters)")
    if form.application_system and len(form.application_system) > 128:
        problems.append("the application system name is too long (at most 128 characters)")
    if form.expires_on <= today:
        problems.append("the expiry date must be in the future")
    elif form.expires_on > today + timedelta(days=MAX_EXPIRY_DAYS):
        problems.append(f"the expiry date must be within {MAX_EXPIRY_DAYS // 365} years")
    if problems:
        raise RequestInvalid("; ".join(problems))
    assert flavor is not None and image is not None
    return cloud, flavor, image


def quote(
    session: Session, actor: Actor, form: RequestForm, *, today: date | None = None, entry_point: str = "quote"
) -> Quote:
    """What a request would cost per month, what it needs, and what quota is left (before submitting).

    The legacy system is checked exactly as :func:`create_request` checks it: another
    department's is not found (404) and a classified one is refused (409
    ``classified_system``, audited under ``entry_point``, e.g. "portal.quote"): a quote never
    says "fits" for a request that would be refused."""
    cloud, flavor, _image = _validated(session, actor, form, today or date.today())
    _check_legacy_system(session, actor, form.legacy_system_id, entry_point)
    assert actor.department_id is not None
    needs = _needs(flavor, form.count)
    try:
        balance = ledger.balance(session, actor.department_id, cloud.id)
        free = {r: b.free for r, b in balance.resources.items()}
        limits = {r: b.limit for r, b in balance.resources.items()}
    except NoQuota:
        free = {r: 0 for r in needs}
        limits = dict(free)
    cost = (flavor.monthly_price * form.count).quantize(Decimal("0.01"))
    return Quote(cost, needs, free, limits, all(needs[r] <= free.get(r, 0) for r in needs), approval_steps(cloud, cost))


# --- transitions ------------------------------------------------------------------------------


def _transition(
    session: Session,
    request: ServiceRequest,
    target: RequestState,
    *,
    actor: str,
    action: str,
    reason: str | None = None,
    step: str | None = None,
) -> None:
    previous = REQUEST_MACHINE.apply(request, target)
    request.state_reason = reason
    session.add(
        RequestEvent(
            request_id=request.id,
            actor=actor,
            action=action,
            step=step,
            from_state=previous.value,
            to_state=target.value,
            reason=reason,
        )
    )
    audit.record(
        session,
        actor=actor,
        action=f"request.{action}",
        target_type="service_request",
        target_id=request.id,
        reason=reason,
        detail={"from": previous.value, "to": target.value, "step": step},
    )


def _notify(session: Session, event: str, request: ServiceRequest, **extra: Any) -> None:
    enqueue(
        session,
        "notify",
        f"notify:{event}:{request.id}:{request.current_step}:{extra.get('server_id', '')}",
        {"event": event, "request_id": request.id, **extra},
        max_attempts=5,
    )


def _check_legacy_system(
    session: Session, actor: Actor, system_id: int | None, entry_point: str, *, request_id: int | None = None
) -> None:
    """The named legacy system must be the department's own, and not classified (refused + audited)."""
    if system_id is None:
        return
    from cloudmgr.inventory.classification import ensure_placeable
    from cloudmgr.inventory.services import get_system

    system = get_system(session, system_id, actor=actor)  # another department's: not found
    context = {"request_id": request_id} if request_id is not None else None
    ensure_placeable(session, system, actor=actor, entry_point=entry_point, context=context)


def check_request_placeable(session: Session, actor: Actor | str, request: ServiceRequest, entry_point: str) -> None:
    """The classified rule for a stored request, at every step after its creation (each
    approval step, provisioning, a resize): its legacy system may have been reclassified
    since.  A new-server request is checked through the system it names; a resize through
    every system its server is tied to (its own request's, or a system whose server it is)."""
    from cloudmgr.inventory.classification import ensure_placeable, ensure_server_placeable

    context: dict[str, Any] = {"request_id": request.id}
    if request.kind == "resize" and request.target_server_id is not None:
        server = session.get(ManagedServer, request.target_server_id)
        context["server_id"] = request.target_server_id
        ensure_server_placeable(
            session,
            actor=actor,
            entry_point=entry_point,
            managed_server_id=request.target_server_id,
            cloud_server_id=server.server_id if server is not None else None,
            server_name=server.name if server is not None else "",
            context=context,
        )
    elif request.legacy_system_id is not None:
        ensure_placeable(session, request.legacy_system_id, actor=actor, entry_point=entry_point, context=context)


def create_request(
    session: Session,
    actor: Actor,
    form: RequestForm,
    *,
    submit: bool,
    settings: Settings,
    today: date | None = None,
    entry_point: str = "request",
) -> ServiceRequest:
    """A department user's new request, as a draft or submitted at once.  ``entry_point``
    ("portal.request", "api.request") names the path in the classified rule's audit."""
    if actor.role not in {Role.DEPT_STAFF, Role.DEPT_HEAD}:
        raise RequestInvalid("only department users request VMs")
    cloud, flavor, image = _validated(session, actor, form, today or date.today())
    _check_legacy_system(session, actor, form.legacy_system_id, entry_point)
    assert actor.department_id is not None
    cost = (flavor.monthly_price * form.count).quantize(Decimal("0.01"))
    request = ServiceRequest(
        kind="create",
        department_id=actor.department_id,
        cloud_id=cloud.id,
        zone=form.zone,
        flavor_item_id=flavor.id,
        image_item_id=image.id,
        count=form.count,
        name_prefix=form.name_prefix,
        application_system=(form.application_system or "").strip() or None,
        legacy_system_id=form.legacy_system_id,
        justification=form.justification.strip(),
        expires_on=form.expires_on,
        monthly_cost=cost,
        state=RequestState.DRAFT,
        created_by=actor.username,
    )
    session.add(request)
    session.flush()
    session.add(
        RequestEvent(request_id=request.id, actor=actor.username, action="create", from_state="draft", to_state="draft")
    )
    if submit:
        submit_request(session, actor, request.id, settings=settings, entry_point=entry_point)
    return request


def _reserve_servers(session: Session, request: ServiceRequest) -> None:
    """Hold quota for every server of the request that holds none (atomic: all or none)."""
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
    wanted = {
        Resource.CORES: sum(s.vcpus for s in to_reserve),
        Resource.RAM_MB: sum(s.ram_mb for s in to_reserve),
        Resource.INSTANCES: len(to_reserve),
    }
    taken = dict.fromkeys(wanted, 0)
    for server in to_reserve:
        amounts = {Resource.CORES: server.vcpus, Resource.RAM_MB: server.ram_mb, Resource.INSTANCES: 1}
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


def _may_submit_as(actor: Actor, request: ServiceRequest) -> bool:
    return request.created_by == actor.username or actor.role == Role.DEPT_HEAD


def may_submit(actor: Actor, request: ServiceRequest) -> bool:
    """Whether ``actor`` may submit ``request`` now: a draft, by its author or the department head."""
    return request.state == RequestState.DRAFT and _may_submit_as(actor, request)


def submit_request(
    session: Session, actor: Actor, request_id: int, *, settings: Settings, entry_point: str = "request"
) -> ServiceRequest:
    request = get_request(session, actor, request_id, for_update=True)
    if not _may_submit_as(actor, request):
        raise NotYourTurn("only the author or the department head submits a draft")
    if request.state != RequestState.DRAFT:
        # SUBMITTED -> SUBMITTED is an approval step, not a second submission (a double click):
        # submitting again would add the servers twice.
        raise InvalidTransition(f"request {request.id} is {request.state}: only a draft can be submitted")
    REQUEST_MACHINE.check(request.state, RequestState.SUBMITTED)
    # A draft's system may have been reclassified since: check again at submission.
    _check_legacy_system(session, actor, request.legacy_system_id, entry_point, request_id=request.id)
    flavor = request.flavor
    for index in range(1, request.count + 1):
        session.add(
            ManagedServer(
                request_id=request.id,
                index=index,
                department_id=request.department_id,
                cloud_id=request.cloud_id,
                zone=request.zone,
                name=f"{request.name_prefix}-{index:02d}",
                flavor_item_id=flavor.id,
                vcpus=flavor.vcpus,
                ram_mb=flavor.ram_mb,
                idempotency_key=f"cm-r{request.id}-s{index}-a1",
                state=ServerState.PENDING,
                expires_on=request.expires_on,
            )
        )
    session.flush()
    session.refresh(request, ["servers"])
    _reserve_servers(session, request)  # raises QuotaExceeded: the whole submission rolls back
    request.approval_steps = approval_steps(request.cloud, request.monthly_cost)
    request.current_step = 0
    request.submitted_at = utcnow()
    _transition(session, request, RequestState.SUBMITTED, actor=actor.username, action="submit")
    _notify(session, "submitted", request)
    return request


def _step_for(request: ServiceRequest, actor: Actor) -> str:
    step = request.next_role
    if request.state != RequestState.SUBMITTED or step is None:
        raise InvalidTransition(f"request {request.id} is {request.state}, not waiting for approval")
    if actor.role.value != step:
        raise NotYourTurn(f"request {request.id} waits for {step}, not {actor.role.value}")
    if step == Role.DEPT_HEAD.value and actor.department_id != request.department_id:
        raise NotYourDepartment("a department head approves only their own department's requests")
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
        _transition(
            session,
            request,
            RequestState.SUBMITTED,
            actor=actor.username,
            action="approve",
            step=step,
            reason=reason or None,
        )
        request.current_step += 1
        _notify(session, "approval_needed", request)
        return request
    # The final approval: any reservation that lapsed while waiting is taken again, atomically.
    _reserve_servers(session, request)
    payload: dict[str, Any] = {"request_id": request.id}
    if request.kind == "resize":
        payload["reservation_id"] = _reserve_resize(session, request)
    request.current_step += 1
    request.approved_at = utcnow()
    _transition(
        session,
        request,
        RequestState.APPROVED,
        actor=actor.username,
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
    _notify(session, "approved", request)
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


def _release_all(session: Session, request: ServiceRequest, reason: str) -> None:
    for server in request.servers:
        if server.state == ServerState.PENDING:
            if server.reservation_id is not None:
                ledger.release(session, server.reservation_id, reason=reason)
            server.state = ServerState.CANCELLED
            server.fault = reason


def reject_request(session: Session, actor: Actor, request_id: int, *, reason: str) -> ServiceRequest:
    if not reason.strip():
        raise RequestInvalid("a reason is required to reject")
    request = get_request(session, actor, request_id, for_update=True)
    step = _check_step(request, actor, decision="reject")
    _transition(
        session, request, RequestState.REJECTED, actor=actor.username, action="reject", step=step, reason=reason
    )
    _release_all(session, request, f"rejected: {reason}")
    request.finished_at = utcnow()
    _notify(session, "rejected", request)
    return request


NOT_BOOTED = frozenset({ServerState.PENDING, ServerState.CANCELLED, ServerState.ERROR})
CANCELLABLE = frozenset({RequestState.DRAFT, RequestState.SUBMITTED, RequestState.APPROVED, RequestState.FAILED})


def _may_cancel_as(actor: Actor, request: ServiceRequest) -> bool:
    return (
        actor.role == Role.OPERATOR
        or request.created_by == actor.username
        or (actor.role == Role.DEPT_HEAD and actor.department_id == request.department_id)
    )


def _has_booted(request: ServiceRequest) -> bool:
    return any(s.state not in NOT_BOOTED for s in request.servers)


def may_cancel(actor: Actor, request: ServiceRequest) -> bool:
    """Whether ``actor`` may cancel ``request`` now (pages show the button): the author, the
    department head or an operator, while nothing of it has booted.  The pages offer it only
    before provisioning starts and after a failure (``CANCELLABLE``)."""
    return request.state in CANCELLABLE and not _has_booted(request) and _may_cancel_as(actor, request)


def cancel_request(session: Session, actor: Actor, request_id: int, *, reason: str) -> ServiceRequest:
    """The author, the department head or an operator withdraws a request that has not booted anything."""
    request = get_request(session, actor, request_id, for_update=True)
    if not _may_cancel_as(actor, request):
        raise NotYourTurn("only the author, the department head or an operator cancels a request")
    if _has_booted(request):
        raise InvalidTransition("servers of this request already exist: delete them instead")
    _transition(
        session, request, RequestState.CANCELLED, actor=actor.username, action="cancel", reason=reason.strip() or None
    )
    _release_all(session, request, "cancelled")
    request.finished_at = utcnow()
    return request


def may_retry(actor: Actor, server: ManagedServer | None = None) -> bool:
    """Operators retry failed servers (``server``: this one, when it has failed)."""
    return actor.role == Role.OPERATOR and (server is None or server.state == ServerState.ERROR)


def retry_server(session: Session, actor: Actor, server_id: int) -> ManagedServer:
    """An operator retries a failed server: a new attempt with a new idempotency key and a new reservation."""
    if not may_retry(actor):
        raise NotYourTurn("operators retry failed servers")
    server = get_server(session, actor, server_id)
    if server.state != ServerState.ERROR:
        raise InvalidTransition(f"server {server.name} is {server.state}; only failed servers are retried")
    request = server.request
    # A retry boots a server again: the classified rule as at the first attempt.
    from cloudmgr.inventory.classification import ensure_server_placeable

    ensure_server_placeable(
        session,
        actor=actor,
        entry_point="retry",
        managed_server_id=server.id,
        cloud_server_id=server.server_id,
        server_name=server.name,
        context={"request_id": request.id, "server_id": server.id},
    )
    previous_cloud_server = server.server_id
    server.attempt += 1
    server.idempotency_key = f"cm-r{request.id}-s{server.index}-a{server.attempt}"
    server.state = ServerState.PENDING
    server.server_id, server.fault, server.reservation_id = None, None, None
    _reserve_servers(session, request)
    _transition(
        session, request, RequestState.PROVISIONING, actor=actor.username, action="retry", reason=f"retry {server.name}"
    )
    if previous_cloud_server:
        enqueue(
            session,
            "server_action",
            f"delete-failed:{server.id}:{previous_cloud_server}",
            {"server_id": server.id, "action": "delete_cloud_server", "cloud_server_id": previous_cloud_server},
        )
    enqueue(session, "provision", f"provision:{request.id}", {"request_id": request.id})
    return server


# --- the server's later life -----------------------------------------------------------------------

SERVER_ACTIONS = ("stop", "start", "delete")


def server_action(session: Session, actor: Actor, server_id: int, action: str, *, confirm: str = "") -> ManagedServer:
    """Stop, start or delete (with the server's name typed as confirmation) one of the department's servers."""
    if action not in SERVER_ACTIONS:
        raise RequestInvalid(f"unknown action {action!r} (known: {', '.join(SERVER_ACTIONS)})")
    server = get_server(session, actor, server_id)
    if actor.role not in {Role.DEPT_STAFF, Role.DEPT_HEAD, Role.OPERATOR}:
        raise NotYourTurn("only the department or an operator acts on a server")
    allowed = {
        "stop": {ServerState.ACTIVE},
        "start": {ServerState.STOPPED},
        "delete": {ServerState.ACTIVE, ServerState.STOPPED, ServerState.ERROR},
    }[action]
    if server.state not in allowed:
        raise InvalidTransition(f"server {server.name} is {server.state}: it cannot {action} now")
    if action == "delete":
        if confirm != server.name:
            raise RequestInvalid(f"type the server's name ({server.name}) to confirm its deletion")
        server.state = ServerState.DELETING
    audit.record(
        session, actor=actor.username, action=f"server.{action}", target_type="managed_server", target_id=server.id
    )
    enqueue(session, "server_action", f"server:{server.id}:{action}", {"server_id": server.id, "action": action})
    return server


def extend_expiry(
    session: Session, actor: Actor, server_id: int, new_date: date, *, today: date | None = None
) -> ManagedServer:
    server = get_server(session, actor, server_id)
    today = today or date.today()
    if actor.role not in {Role.DEPT_STAFF, Role.DEPT_HEAD, Role.OPERATOR}:
        raise NotYourTurn("only the department or an operator extends a server")
    if server.state in {ServerState.DELETED, ServerState.DELETING, ServerState.CANCELLED}:
        raise InvalidTransition(f"server {server.name} is {server.state}")
    if new_date <= max(server.expires_on, today):
        raise RequestInvalid("the new expiry date must be later than the current one and in the future")
    if new_date > today + timedelta(days=MAX_EXPIRY_DAYS):
        raise RequestInvalid(f"the expiry date must be within {MAX_EXPIRY_DAYS // 365} years")
    audit.record(
        session,
        actor=actor.username,
        action="server.extend",
        target_type="managed_server",
        target_id=server.id,
        detail={"from": server.expires_on.isoformat(), "to": new_date.isoformat()},
    )
    server.expires_on, server.reminded_on = new_date, None
    if server.stopped_for_expiry_at is not None and server.state == ServerState.STOPPED:
        server.stopped_for_expiry_at = None
    return server


def request_resize(
    session: Session,
    actor: Actor,
    server_id: int,
    flavor_item_id: int,
    *,
    justification: str,
    settings: Settings,
    entry_point: str = "resize",
) -> ServiceRequest:
    """A resize is a request of its own: it goes through the cloud's approval chain."""
    server = get_server(session, actor, server_id)
    if not actor.is_department:
        raise RequestInvalid("only department users request a resize")
    if server.state not in {ServerState.ACTIVE, ServerState.STOPPED}:
        raise InvalidTransition(f"server {server.name} is {server.state}: it cannot be resized now")
    # A resize may put the server on another host: a classified system's server must leave
    # the cloud, not grow on it.
    from cloudmgr.inventory.classification import ensure_server_placeable

    ensure_server_placeable(
        session,
        actor=actor,
        entry_point=entry_point,
        managed_server_id=server.id,
        cloud_server_id=server.server_id,
        server_name=server.name,
        context={"server_id": server.id},
    )
    flavor = session.get(CatalogItem, flavor_item_id)
    if (
        flavor is None
        or flavor.cloud_id != server.cloud_id
        or flavor.kind != ItemKind.FLAVOR.value
        or not flavor.offered
    ):
        raise RequestInvalid("choose a flavor offered on this server's cloud")
    if flavor.id == server.flavor_item_id:
        raise RequestInvalid("that is the server's current flavor")
    if not justification.strip():
        raise RequestInvalid("a justification is required")
    cost = flavor.monthly_price.quantize(Decimal("0.01"))
    request = ServiceRequest(
        kind="resize",
        department_id=server.department_id,
        cloud_id=server.cloud_id,
        zone=server.zone,
        flavor_item_id=flavor.id,
        image_item_id=None,
        count=1,
        name_prefix=server.name[:40],
        justification=justification.strip(),
        expires_on=server.expires_on,
        monthly_cost=cost,
        target_server_id=server.id,
        state=RequestState.DRAFT,
        created_by=actor.username,
    )
    session.add(request)
    session.flush()
    request.approval_steps = approval_steps(server.cloud, cost)
    request.submitted_at = utcnow()
    _transition(session, request, RequestState.SUBMITTED, actor=actor.username, action="submit", reason="resize")
    _notify(session, "submitted", request)
    return request


def list_orphans(session: Session, *, include_resolved: bool = False) -> Sequence[Any]:
    from cloudmgr.servicerequests.models import OrphanServer

    query = select(OrphanServer).options(selectinload(OrphanServer.cloud)).order_by(OrphanServer.id.desc())
    if not include_resolved:
        query = query.where(OrphanServer.resolved_at.is_(None))
    return session.scalars(query).all()
