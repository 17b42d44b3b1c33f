"""Reading purchase requests as an actor may see them: one, a filtered page, finance's review queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.organisation import reading as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.paging import Page, PageRequest, paginate, search
from cloudmgr.purchases.errors import (
    PurchaseForbidden,
    PurchaseNotFound,
)
from cloudmgr.purchases.models import (
    PENDING_STATES,
    PurchaseRequest,
)
from cloudmgr.purchases.rules import _visible


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
    #: the key of the department to narrow the list to; ignored for a department user (their list is
    #: always their own department's), :class:`UnknownDepartment` for anyone else when there is none
    department_key: str | None = None
    page: int = 1
    per_page: int = 25
    #: words searched in the number, title, application system, legacy host and author
    q: str | None = None


def list_purchases(session: Session, actor: Actor, filters: PurchaseFilter) -> tuple[Sequence[PurchaseRequest], int]:
    """A page of the purchase requests ``actor`` sees (newest first), and their total."""
    named_department_id = org.named_department_id(session, actor, filters.department_key)
    query = select(PurchaseRequest)
    if actor.is_department:
        query = query.where(PurchaseRequest.department_id == actor.department_id)
    elif named_department_id is not None:
        query = query.where(PurchaseRequest.department_id == named_department_id)
    if filters.state:
        query = query.where(PurchaseRequest.state == filters.state)
    if filters.category:
        query = query.where(PurchaseRequest.category == filters.category)
    query = search(
        query,
        filters.q,
        PurchaseRequest.id,
        PurchaseRequest.title,
        PurchaseRequest.application_system,
        PurchaseRequest.legacy_hostname,
        PurchaseRequest.created_by,
    )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(selectinload(PurchaseRequest.department), selectinload(PurchaseRequest.findings))
        .order_by(PurchaseRequest.id.desc())
        .offset((max(filters.page, 1) - 1) * filters.per_page)
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


def count_review_queue(session: Session, actor: Actor) -> int:
    """How many purchases wait for finance (the review queue's length): the finance overview
    counts them beside the service requests waiting for finance."""
    if actor.role not in {Role.FINANCE, Role.ADMIN, Role.OPERATOR}:
        raise PurchaseForbidden("only finance reviewers see the review queue")
    return (
        session.scalar(
            select(func.count()).select_from(PurchaseRequest).where(PurchaseRequest.state.in_(PENDING_STATES))
        )
        or 0
    )


def review_queue_page(
    session: Session, actor: Actor, params: PageRequest, *, sort: str = "findings"
) -> Page[PurchaseRequest]:
    """A page of :func:`review_queue`, searched like the purchase list."""
    if actor.role not in {Role.FINANCE, Role.ADMIN, Role.OPERATOR}:
        raise PurchaseForbidden("only finance reviewers see the review queue")
    order = (
        (PurchaseRequest.amount_yuan.desc(), PurchaseRequest.findings_score.desc())
        if sort == "amount"
        else (PurchaseRequest.findings_score.desc(), PurchaseRequest.amount_yuan.desc())
    )
    query = search(
        select(PurchaseRequest)
        .where(PurchaseRequest.state.in_(PENDING_STATES))
        .options(selectinload(PurchaseRequest.department), selectinload(PurchaseRequest.findings)),
        params.q,
        PurchaseRequest.id,
        PurchaseRequest.title,
        PurchaseRequest.application_system,
        PurchaseRequest.legacy_hostname,
        PurchaseRequest.created_by,
    )
    return paginate(session, query, params, *order, PurchaseRequest.id)
