"""A department user's landing page in brief: their department's servers and their own requests,
counted by state, with the latest of each (issue 18).  Read-only, two small queries each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.errors import PermissionDenied
from cloudmgr.organisation.actor import Actor
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.states import RequestState, ServerState

# Servers that are no more (deleted, or never booted) are not the department's any longer.
GONE_SERVERS = frozenset({ServerState.DELETED, ServerState.CANCELLED})
# A request still on its way: the user may have something to do (a draft) or to wait for.
OPEN_REQUESTS = frozenset(
    {RequestState.DRAFT, RequestState.SUBMITTED, RequestState.APPROVED, RequestState.PROVISIONING}
)
LATEST = 10


@dataclass(frozen=True, slots=True)
class DepartmentOverview:
    servers: Sequence[ManagedServer]  # the latest LATEST of the department's servers, newest first
    server_counts: dict[ServerState, int]  # every server the department has, by state (gone ones left out)
    requests: Sequence[ServiceRequest]  # the latest LATEST requests the user wrote, last changed first
    request_counts: dict[RequestState, int]  # every request the user wrote, by state

    @property
    def servers_total(self) -> int:
        return sum(self.server_counts.values())

    @property
    def open_requests(self) -> int:
        return sum(n for state, n in self.request_counts.items() if state in OPEN_REQUESTS)


def department_overview(session: Session, actor: Actor) -> DepartmentOverview:
    """What a department user's home page shows: their department's servers (anyone in the
    department may manage them) and the requests the user wrote, never another department's."""
    if not actor.is_department or actor.department_id is None:
        raise PermissionDenied("the overview is a department user's")
    own_servers = ManagedServer.department_id == actor.department_id
    live = ManagedServer.state.not_in(GONE_SERVERS)
    servers = session.scalars(
        select(ManagedServer)
        .where(own_servers, live)
        .options(selectinload(ManagedServer.cloud), selectinload(ManagedServer.flavor))
        .order_by(ManagedServer.id.desc())
        .limit(LATEST)
    ).all()
    server_counts = {
        ServerState(state): n
        for state, n in session.execute(
            select(ManagedServer.state, func.count()).where(own_servers, live).group_by(ManagedServer.state)
        ).all()
    }
    # The department wall holds even for a request whose author changed department since.
    mine = (ServiceRequest.department_id == actor.department_id, ServiceRequest.created_by == actor.username)
    requests = session.scalars(
        select(ServiceRequest)
        .where(*mine)
        .options(selectinload(ServiceRequest.cloud), selectinload(ServiceRequest.flavor))
        .order_by(ServiceRequest.updated_at.desc(), ServiceRequest.id.desc())
        .limit(LATEST)
    ).all()
    request_counts = {
        RequestState(state): n
        for state, n in session.execute(
            select(ServiceRequest.state, func.count()).where(*mine).group_by(ServiceRequest.state)
        ).all()
    }
    return DepartmentOverview(servers, server_counts, requests, request_counts)
