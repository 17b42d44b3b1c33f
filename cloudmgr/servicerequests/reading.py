"""Reading requests and servers as an actor may see them: one request or server, a filtered page of
requests (and its version, for the page cache), the approvals waiting for an actor, orphans."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from cloudmgr.organisation import duties
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.organisation.services import get_department
from cloudmgr.paging import Page, PageRequest, paginate, search
from cloudmgr.servicerequests.errors import (
    RequestNotFound,
    ServerNotFound,
)
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.states import RequestState, ServerState


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
    #: words searched in the number, name, application system, author and justification
    q: str | None = None


def department_filter(session: Session, actor: Actor, department_key: str | None) -> int | None:
    """The department a listing is narrowed to by name: whoever sees every department may name one
    (an unknown one is :class:`~cloudmgr.organisation.errors.UnknownDepartment`); a department user
    sees only their own, so the name changes nothing and is not looked up."""
    if department_key is None or actor.is_department:
        return None
    return get_department(session, department_key).id


#: What a search of requests looks in (the request lists and the approval queues alike).
REQUEST_SEARCH = (
    ServiceRequest.id,
    ServiceRequest.name_prefix,
    ServiceRequest.application_system,
    ServiceRequest.created_by,
    ServiceRequest.justification,
)


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
    return search(query, filters.q, *REQUEST_SEARCH)


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
    # The total rides along with the page's rows (a window over the whole filtered set): one
    # round trip, not two.  Only a page past the end, which has no row to carry it, counts apart.
    department_id = actor.department_scope if actor.department_scope is not None else filters.department_id
    if filters.q:
        window = _window(_filtered_requests(actor, filters).with_only_columns(*_VERSION_COLUMNS), filters)
        rows = session.execute(window).all()
    else:
        # Read on every request list: the statement of each shape of filter is built once
        # (values bound per call), which costs a fraction of building it anew.
        statement = _page_version_statement(department_id is not None, bool(filters.state), bool(filters.cloud_key))
        params = {
            "department_id": department_id,
            "state": filters.state,
            "cloud_key": filters.cloud_key,
            "offset": (max(filters.page, 1) - 1) * filters.per_page,
            "limit": filters.per_page,
        }
        rows = session.execute(statement, params).all()
    if rows:
        total = int(rows[0].total)
    else:
        query = _filtered_requests(actor, filters)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return PageVersion(total, tuple((row.id, row.updated_at) for row in rows))


_VERSION_COLUMNS = (ServiceRequest.id, ServiceRequest.updated_at, func.count().over().label("total"))


@functools.cache
def _page_version_statement(by_department: bool, by_state: bool, by_cloud: bool) -> Select[Any]:
    """The page version's query for one shape of filter, as :func:`_filtered_requests` and
    :func:`_window` build it, with the department, state, cloud key, offset and limit bound."""
    query = select(*_VERSION_COLUMNS)
    if by_department:
        query = query.where(ServiceRequest.department_id == bindparam("department_id"))
    if by_state:
        query = query.where(ServiceRequest.state == bindparam("state"))
    if by_cloud:
        query = query.join(Cloud, Cloud.id == ServiceRequest.cloud_id).where(Cloud.key == bindparam("cloud_key"))
    return query.order_by(ServiceRequest.id.desc()).offset(bindparam("offset")).limit(bindparam("limit"))


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


#: The longest approval chain the waiting queues look into.  A chain is the cloud's policy steps plus
#: finance and an operator at most, one step per role: far shorter than this.
MAX_CHAIN_STEPS = 16


def _awaiting_query(session: Session, actor: Actor) -> Select[tuple[ServiceRequest]]:
    """Requests whose next approval step is this actor's to take, as one SQL query."""
    role = actor.role.value
    next_is_mine = or_(
        *(
            and_(ServiceRequest.current_step == step, ServiceRequest.approval_steps[step].as_string() == role)
            for step in range(MAX_CHAIN_STEPS)
        )
    )
    query = select(ServiceRequest).where(ServiceRequest.state == RequestState.SUBMITTED, next_is_mine)
    if actor.is_department:
        query = query.where(ServiceRequest.department_id == actor.department_id)
    # The author's own requests wait for someone else (separation of duties), unless the configured
    # exception lets this actor decide their own department's work.
    if actor.department_id is not None and duties.self_decision_allowed(session, actor, actor.department_id):
        return query.where(
            or_(ServiceRequest.created_by != actor.username, ServiceRequest.department_id == actor.department_id)
        )
    return query.where(ServiceRequest.created_by != actor.username)


def awaiting(session: Session, actor: Actor) -> Sequence[ServiceRequest]:
    """Requests whose next approval step is this actor's to take, oldest first."""
    return session.scalars(_awaiting_query(session, actor).order_by(ServiceRequest.submitted_at)).all()


def count_awaiting(session: Session, actor: Actor) -> int:
    return session.scalar(select(func.count()).select_from(_awaiting_query(session, actor).subquery())) or 0


def awaiting_page(
    session: Session, actor: Actor, params: PageRequest, *, department_id: int | None = None
) -> Page[ServiceRequest]:
    """A page of :func:`awaiting`, searched (number, name, application system, author, justification)
    and narrowed to one department for those who see every department (a department user's own
    department whatever is asked)."""
    query = _awaiting_query(session, actor)
    if department_id is not None and not actor.is_department:
        query = query.where(ServiceRequest.department_id == department_id)
    query = search(query, params.q, *REQUEST_SEARCH).options(
        joinedload(ServiceRequest.cloud),
        joinedload(ServiceRequest.department),
        joinedload(ServiceRequest.flavor),
    )
    return paginate(session, query, params, ServiceRequest.submitted_at, ServiceRequest.id)


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


#: Servers that no longer exist: a list of servers hides them unless their state is asked for.
GONE_SERVER_STATES = (ServerState.DELETED, ServerState.CANCELLED)


def servers_page(
    session: Session, actor: Actor, params: PageRequest, *, state: str | None = None
) -> Page[ManagedServer]:
    """A page of the servers ``actor`` sees, newest first: one state, or every one still there;
    searched in the name, the cloud's id, the address record and the application system."""
    query = select(ManagedServer).options(
        selectinload(ManagedServer.cloud), selectinload(ManagedServer.flavor), selectinload(ManagedServer.request)
    )
    if actor.department_scope is not None:
        query = query.where(ManagedServer.department_id == actor.department_scope)
    if state in {s.value for s in ServerState}:
        query = query.where(ManagedServer.state == state)
    else:
        query = query.where(ManagedServer.state.not_in(GONE_SERVER_STATES))
    query = query.join(ServiceRequest, ServiceRequest.id == ManagedServer.request_id)
    query = search(
        query,
        params.q,
        ManagedServer.name,
        ManagedServer.server_id,
        ManagedServer.request_id,
        ServiceRequest.application_system,
    )
    return paginate(session, query, params, ManagedServer.id.desc())


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
