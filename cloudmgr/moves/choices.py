"""What the moves forms offer to pick from (issue 18): the servers cloudmgr made, by name with
their department and cloud; the compute hosts it knows (where its servers run and the latest
capacity snapshot of each base); the departments by name.  The forms still take an id or a
host typed by hand (a server or host cloudmgr never recorded); the move itself checks it on
the cloud."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudmgr.capacity.models import CapacitySnapshot, HostCapacity
from cloudmgr.organisation.models import Cloud, Department
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.states import ServerState

#: Servers a move can take: running or stopped ones.
MOVABLE_SERVER_STATES = (ServerState.ACTIVE, ServerState.STOPPED)


@dataclass(frozen=True, slots=True)
class ServerChoice:
    server_id: str  # the cloud's id
    name: str
    cloud_key: str
    cloud_name: str
    department_key: str
    department_name: str
    host: str | None


@dataclass(frozen=True, slots=True)
class HostChoice:
    name: str
    clouds: tuple[str, ...]  # the names of the clouds it serves, when known


@dataclass(frozen=True, slots=True)
class DepartmentChoice:
    key: str
    name: str


@dataclass(frozen=True, slots=True)
class MoveChoices:
    servers: list[ServerChoice]
    hosts: list[HostChoice]
    departments: list[DepartmentChoice]


def move_choices(session: Session, locale: str) -> MoveChoices:
    rows = session.execute(
        select(ManagedServer, Cloud, Department)
        .join(Cloud, Cloud.id == ManagedServer.cloud_id)
        .join(Department, Department.id == ManagedServer.department_id)
        .where(ManagedServer.server_id.is_not(None), ManagedServer.state.in_(MOVABLE_SERVER_STATES))
        .order_by(Department.key, ManagedServer.name, ManagedServer.id)
    ).all()
    servers = [
        ServerChoice(
            server_id=server.server_id or "",
            name=server.name,
            cloud_key=cloud.key,
            cloud_name=cloud.display_name(locale),
            department_key=dept.key,
            department_name=dept.display_name(locale),
            host=server.host,
        )
        for server, cloud, dept in rows
    ]
    hosts: dict[str, set[str]] = {}
    for server in servers:
        if server.host:
            hosts.setdefault(server.host, set()).add(server.cloud_key)
    latest = select(func.max(CapacitySnapshot.id)).group_by(CapacitySnapshot.base).scalar_subquery()
    for name, clouds in session.execute(
        select(HostCapacity.name, CapacitySnapshot.clouds)
        .join(CapacitySnapshot, CapacitySnapshot.id == HostCapacity.snapshot_id)
        .where(CapacitySnapshot.id.in_(latest), CapacitySnapshot.source == "placement")
    ):
        hosts.setdefault(name, set()).update(key for key in clouds.split(",") if key)
    departments = [
        DepartmentChoice(dept.key, dept.display_name(locale))
        for dept in session.scalars(select(Department).order_by(Department.key))
    ]
    cloud_names = {cloud.key: cloud.display_name(locale) for cloud in session.scalars(select(Cloud))}
    return MoveChoices(
        servers=servers,
        hosts=[
            HostChoice(name, tuple(sorted(cloud_names.get(key, key) for key in keys)))
            for name, keys in sorted(hosts.items())
        ],
        departments=departments,
    )
