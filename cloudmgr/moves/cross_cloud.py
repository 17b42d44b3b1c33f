"""Starting a move of one server into another cloud (or another department's project).

The checks run in the order a person would make them: the two clouds, the server and its
size on both clouds, its data volumes, address and groups (read outside any unit of work),
then, in one unit of work, the classified rule, the department that will own it, its
project and network on the target, the parts as cloudmgr records them, and the target's quota.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.cloud import CloudError, Flavor, Server
from cloudmgr.cloud.types import IDEMPOTENCY_METADATA_KEY
from cloudmgr.db import Database
from cloudmgr.messages import N_, message
from cloudmgr.moves.errors import MoveCloudError, MoveInvalid
from cloudmgr.moves.models import Move
from cloudmgr.moves.parts import SourceParts, parts_resources, read_source_parts, server_amounts
from cloudmgr.moves.records import (
    CloudRef,
    check_no_open_move,
    check_not_classified,
    clean_reason,
    cloud_ref,
    create_move,
    get_server,
    managed_server,
    require_may_move_servers,
)
from cloudmgr.moves.states import MoveKind, MoveState
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Department, DepartmentCloud, NetworkZone
from cloudmgr.providers import ProviderRegistry
from cloudmgr.quotas import ledger
from cloudmgr.servicerequests.models import ManagedServer

CROSS_CLOUD_STATUSES = {"ACTIVE", "SHUTOFF"}


@dataclass(frozen=True)
class _Destination:
    """Where the server goes: the department that owns it there, its project and network."""

    department: Department
    source_department_id: int | None
    project_id: str
    zone: str
    network_id: str


def start_cross_cloud_move(
    db: Database,
    registry: ProviderRegistry,
    *,
    cloud_key: str,
    server_id: str,
    target_cloud_key: str,
    actor: Actor,
    reason: str,
    target_department_key: str | None = None,
    target_zone: str | None = None,
) -> int:
    """Queue a move of ``server_id`` into another cloud (or another department's project):
    snapshot → download → upload → its data volumes the same way → its security groups →
    boot → attach the volumes → a new public address → verify → record → delete the source
    (its volumes and address with it) → clean up.

    A server cloudmgr provisioned (a ManagedServer) moves with its quota, its volumes' and
    address's included: the target department's ledger is reserved now and consumed when
    the target is recorded, and the source's usage is given back then.  A server cloudmgr
    did not provision is not in any ledger; the quota reconcile job reads its usage from the
    clouds.  Its parts (:mod:`cloudmgr.moves.parts`) move all the same.
    """
    require_may_move_servers(actor)
    why = clean_reason(reason)
    with db.unit_of_work() as uow:
        source = cloud_ref(uow.session, cloud_key)
        target = cloud_ref(uow.session, target_cloud_key)
    server, flavor = _read_server_and_flavor(registry, source, target, server_id)
    parts = read_source_parts(source.provider(registry), target.provider(registry), server)
    with db.unit_of_work() as uow:
        move = add_cross_cloud_move(
            uow.session,
            source=source,
            target=target,
            server=server,
            flavor=flavor,
            parts=parts,
            actor=actor,
            reason=why,
            target_department_key=target_department_key,
            target_zone=target_zone,
        )
        return move.id


def add_cross_cloud_move(
    session: Session,
    *,
    source: CloudRef,
    target: CloudRef,
    server: Server,
    flavor: Flavor,
    parts: SourceParts,
    actor: Actor,
    reason: str,
    target_department_key: str | None,
    target_zone: str | None,
    system_move: Move | None = None,
) -> Move:
    """The checks made in the caller's unit of work (the classified rule, no open move, the
    destination, the target's quota) and the move stored.  A server of a whole system's move
    (:mod:`cloudmgr.moves.systems`) is its child: run by it, not queued on its own."""
    managed = managed_server(session, source.id, server.id)
    check_not_classified(
        session,
        actor=actor,
        entry_point="move.system" if system_move is not None else "move.cross_cloud",
        kind=MoveKind.CROSS_CLOUD,
        cloud_server_id=server.id,
        managed_server_id=managed.id if managed else None,
        metadata=server.metadata,
        server_name=server.name,
    )
    check_no_open_move(session, source.id, server.id)
    destination = _destination(session, source, target, server, managed, target_department_key, target_zone)
    move = _new_move(source, target, server, flavor, managed, destination, reason, actor)
    move.resources = {
        **move.resources,
        **parts_resources(
            session,
            parts,
            managed,
            target_cloud_id=target.id,
            target_zone=destination.zone,
            source_department_id=destination.source_department_id,
            target_department=destination.department,
        ),
    }
    if system_move is not None:
        move.parent_id = system_move.id
        # Held before it is recorded on the target until every server of the system is there.
        move.resources = {**move.resources, "system_move": system_move.id}
    if managed is not None:
        move.reservation_id = ledger.reserve(
            session,
            department_id=destination.department.id,
            cloud_id=target.id,
            amounts=server_amounts(move.resources),
            owner=f"move:{server.id}",
        ).id
    create_move(
        session,
        move,
        actor,
        {"server": server.id, "from": source.key, "to": target.key, "department": destination.department.key},
        queue=system_move is None,
    )
    return move


def _read_server_and_flavor(
    registry: ProviderRegistry, source: CloudRef, target: CloudRef, server_id: str
) -> tuple[Server, Flavor]:
    """The server on the source cloud and its flavor, which the target must have by name
    (the server keeps its size).  Cloud reads: no unit of work is open around them."""
    source_provider, target_provider = source.provider(registry), target.provider(registry)
    server = get_server(source_provider, source.key, server_id)
    if server.status not in CROSS_CLOUD_STATUSES or server.task_state is not None:
        raise MoveInvalid(
            message(
                N_("server %(server)s is %(status)s: a cross-cloud move needs it ACTIVE or SHUTOFF"),
                server=server.name,
                status=server.status,
            )
        )
    try:
        source_flavors = source_provider.list_flavors()
        target_flavors = {f.name: f for f in target_provider.list_flavors()}
    except CloudError as exc:
        raise MoveCloudError(message(N_("the clouds could not be read: %(error)s"), error=str(exc))) from exc
    flavor = next(
        (
            f
            for f in source_flavors
            if f.id == server.flavor_id or (server.flavor_name and f.name == server.flavor_name)
        ),
        None,
    )
    if flavor is None:
        raise MoveInvalid(
            message(
                N_("the flavor of server %(server)s is unknown on cloud %(cloud)s"),
                server=server.name,
                cloud=source.key,
            )
        )
    if flavor.name not in target_flavors:
        raise MoveInvalid(
            message(
                N_("cloud %(cloud)s has no flavor %(flavor)s: the server cannot keep its size there"),
                cloud=target.key,
                flavor=flavor.name,
            )
        )
    return server, flavor


def _source_department_id(
    session: Session, source: CloudRef, server: Server, managed: ManagedServer | None
) -> int | None:
    """The department that owns the server now: cloudmgr's record, else its project's owner."""
    if managed is not None:
        return managed.department_id
    link = session.scalar(
        select(DepartmentCloud).where(
            DepartmentCloud.cloud_id == source.id, DepartmentCloud.project_id == server.project_id
        )
    )
    return link.department_id if link else None


def _target_department(
    session: Session, server: Server, source_department_id: int | None, target_department_key: str | None
) -> Department:
    if target_department_key:
        department = session.scalar(select(Department).where(Department.key == target_department_key))
        if department is None:
            raise MoveInvalid(
                message(N_("there is no department %(department)s"), department=repr(target_department_key))
            )
        return department
    if source_department_id is None:
        raise MoveInvalid(
            message(
                N_("server %(server)s is in a project no department owns: name the target department"),
                server=server.name,
            )
        )
    department = session.get(Department, source_department_id)
    assert department is not None
    return department


def _destination(
    session: Session,
    source: CloudRef,
    target: CloudRef,
    server: Server,
    managed: ManagedServer | None,
    target_department_key: str | None,
    target_zone: str | None,
) -> _Destination:
    source_department_id = _source_department_id(session, source, server, managed)
    department = _target_department(session, server, source_department_id, target_department_key)
    target_link = session.scalar(
        select(DepartmentCloud).where(
            DepartmentCloud.department_id == department.id, DepartmentCloud.cloud_id == target.id
        )
    )
    if target_link is None or not target_link.project_id:
        raise MoveInvalid(
            message(
                N_(
                    "department %(department)s has no project on cloud %(cloud)s "
                    "(it may not use that cloud, or the clouds were not synced yet)"
                ),
                department=department.key,
                cloud=target.key,
            )
        )
    if target_link.project_id == server.project_id:
        raise MoveInvalid(
            message(
                N_("server %(server)s is already in %(department)s's project on %(cloud)s"),
                server=server.name,
                department=department.key,
                cloud=target.key,
            )
        )
    zone_name = (target_zone or (managed.zone if managed else "") or "extranet").strip()
    zone = session.scalar(select(NetworkZone).where(NetworkZone.cloud_id == target.id, NetworkZone.zone == zone_name))
    if zone is None or not zone.network_id:
        raise MoveInvalid(
            message(
                N_("cloud %(cloud)s has no %(zone)s zone with a known network (run clouds sync)"),
                cloud=target.key,
                zone=zone_name,
            )
        )
    return _Destination(department, source_department_id, target_link.project_id, zone_name, zone.network_id)


def _new_move(
    source: CloudRef,
    target: CloudRef,
    server: Server,
    flavor: Flavor,
    managed: ManagedServer | None,
    destination: _Destination,
    why: str,
    actor: Actor,
) -> Move:
    metadata = {k: v for k, v in server.metadata.items() if k != IDEMPOTENCY_METADATA_KEY}
    return Move(
        kind=MoveKind.CROSS_CLOUD.value,
        state=MoveState.REQUESTED,
        cloud_id=source.id,
        server_id=server.id,
        server_name=server.name,
        project_id=server.project_id,
        managed_server_id=managed.id if managed else None,
        source_host=server.host,
        target_cloud_id=target.id,
        target_department_id=destination.department.id,
        target_zone=destination.zone,
        target_project_id=destination.project_id,
        flavor_name=flavor.name,
        idempotency_key=f"move-{uuid.uuid4().hex}",
        reservation_id=None,
        reason=why,
        created_by=actor.username,
        resources={
            "source_status": server.status,
            "source_department_id": destination.source_department_id,
            "flavor": {"vcpus": flavor.vcpus, "ram_mb": flavor.ram_mb, "disk_gb": flavor.disk_gb},
            "network_id": destination.network_id,
            "metadata": metadata,
        },
    )
