"""Reading requests and servers as an actor may see them: one request or server, a filtered page of
requests (and its version, for the page cache), the approvals waiting for an actor, orphans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from cloudmgr.organisation import duties
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.organisation.services import get_department
from cloudmgr.servicerequests.errors import (
    RequestNotFound,
    ServerNotFound,
)
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.states import RequestState


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


def department_filter(session: Session, actor: Actor, department_key: str | None) -> int | None:
    """The department a listing is narrowed to by name: whoever sees every department may name one
    (an unknown one is :class:`~cloudmgr.organisation.errors.UnknownDepartment`); a department user
    sees only their own, so the name changes nothing and is not looked up."""
    if department_key is None or actor.is_department:
        return None
    return get_department(session, department_key).id


def _filtered_requests(actor: Actor, filters: RequestFilter) -> Select[tuple[ServiceRequest]]:
    query = select(ServiceRequest)
    # The same scope partitions the web's cache of these pages (web.common.listcache).
    if actor.department_scope is not None:
        query = query.where(ServiceRequest.department_id == actor.department_scope)
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


def list_orphans(session: Session, *, include_resolved: bool = False) -> Sequence[Any]:
    from cloudmgr.servicerequests.models import OrphanServer

    query = select(OrphanServer).options(selectinload(OrphanServer.cloud)).order_by(OrphanServer.id.desc())
    if not include_resolved:
        query = query.where(OrphanServer.resolved_at.is_(None))
    return session.scalars(query).all()
