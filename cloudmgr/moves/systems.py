"""Moving a whole legacy system into another cloud as one operation (issue 17).

A legacy system is an application system of a department: its hosts in the inventory
(:class:`cloudmgr.inventory.models.LegacySystem`, one row per host: its application and
database servers) that share the ``application_system`` name, each on a cloud as the server
that replaced it (``cloud_server_id``).  Their ``dependencies`` (the hostnames each needs)
order the move: the hosts that depend on none of the others (the databases) form the first
layer, those that need only them the next, and so on.

Starting it runs the same checks as a one-server cross-cloud move for every server, in one
unit of work (the classified rule, no open move, the destination, the target quota of all
of them together), and stores one system move with one cross-cloud move per server as its
children, which its own work item runs (:mod:`cloudmgr.moves.run_system`).  The page, the
API and the CLI all call :func:`start_system_move`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.cloud import Flavor, Server
from cloudmgr.db import Database
from cloudmgr.inventory.models import LegacySystem, SystemState
from cloudmgr.messages import N_, message
from cloudmgr.moves.cross_cloud import _read_server_and_flavor, add_cross_cloud_move
from cloudmgr.moves.errors import MoveInProgress, MoveInvalid
from cloudmgr.moves.models import Move
from cloudmgr.moves.parts import SourceParts, read_source_parts
from cloudmgr.moves.records import CloudRef, clean_reason, cloud_ref, create_move, require_may_move_servers
from cloudmgr.moves.states import OPEN_STATES, MoveKind, MoveState
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department
from cloudmgr.providers import ProviderRegistry

#: The most servers one system move carries (a system is a handful of hosts).
MAX_SYSTEM_SERVERS = 20


@dataclass(frozen=True)
class SystemHost:
    hostname: str
    system_id: int
    server_id: str
    layer: int


def dependency_layers(dependencies: dict[str, list[str]]) -> list[list[str]]:
    """The hosts in layers: each host after every host of the system it depends on (names
    outside the system are not waited for).  MoveInvalid names a cycle."""
    members = set(dependencies)
    needs = {host: {d for d in deps if d in members and d != host} for host, deps in dependencies.items()}
    layers: list[list[str]] = []
    placed: set[str] = set()
    while len(placed) < len(members):
        layer = sorted(h for h in members - placed if needs[h] <= placed)
        if not layer:
            raise MoveInvalid(
                message(
                    N_("the dependencies of hosts %(hosts)s form a cycle: no order moves them"),
                    hosts=", ".join(sorted(members - placed)),
                )
            )
        layers.append(layer)
        placed.update(layer)
    return layers


def _system_hosts(session: Session, department_key: str, application_system: str, source: CloudRef) -> list[SystemHost]:
    department = session.scalar(select(Department).where(Department.key == department_key))
    if department is None:
        raise MoveInvalid(message(N_("there is no department %(department)s"), department=repr(department_key)))
    rows = list(
        session.scalars(
            select(LegacySystem)
            .where(
                LegacySystem.department_id == department.id,
                LegacySystem.application_system == application_system,
                LegacySystem.state != SystemState.DECOMMISSIONED,
            )
            .order_by(LegacySystem.hostname)
        )
    )
    if not rows:
        raise MoveInvalid(
            message(
                N_("department %(department)s has no application system %(system)s"),
                department=department.key,
                system=repr(application_system),
            )
        )
    if len(rows) > MAX_SYSTEM_SERVERS:
        raise MoveInvalid(
            message(
                N_("system %(system)s has %(count)s hosts: at most %(max)s move as one"),
                system=application_system,
                count=len(rows),
                max=MAX_SYSTEM_SERVERS,
            )
        )
    for row in rows:
        if not row.cloud_server_id or row.target_cloud_id is None:
            raise MoveInvalid(
                message(
                    N_("host %(host)s of system %(system)s has no server on a cloud yet: migrate it first"),
                    host=row.hostname,
                    system=application_system,
                )
            )
        if row.target_cloud_id != source.id:
            cloud = session.get(Cloud, row.target_cloud_id)
            raise MoveInvalid(
                message(
                    N_("host %(host)s of system %(system)s is on cloud %(cloud)s, not %(source)s"),
                    host=row.hostname,
                    system=application_system,
                    cloud=cloud.key if cloud else "?",
                    source=source.key,
                )
            )
    layers = dependency_layers({r.hostname: list(r.dependencies or []) for r in rows})
    layer_of = {host: index for index, layer in enumerate(layers) for host in layer}
    return sorted(
        (SystemHost(r.hostname, r.id, r.cloud_server_id or "", layer_of[r.hostname]) for r in rows),
        key=lambda h: (h.layer, h.hostname),
    )


def _check_no_open_system_move(session: Session, department_key: str, application_system: str) -> None:
    for move in session.scalars(
        select(Move).where(Move.kind == MoveKind.SYSTEM.value, Move.state.in_(OPEN_STATES | {MoveState.FAILED}))
    ):
        system = (move.resources or {}).get("system") or {}
        if system.get("department") == department_key and system.get("name") == application_system:
            raise MoveInProgress(
                message(
                    N_("system %(system)s is already being moved (move %(move)s)"),
                    system=application_system,
                    move=move.id,
                )
            )


def start_system_move(
    db: Database,
    registry: ProviderRegistry,
    *,
    cloud_key: str,
    department_key: str,
    application_system: str,
    target_cloud_key: str,
    actor: Actor,
    reason: str,
    target_zone: str | None = None,
) -> int:
    """Queue a move of every server of ``department_key``'s application system
    ``application_system`` from ``cloud_key`` into ``target_cloud_key``: one system move,
    one cross-cloud move per server under it (each checked as a one-server move is, the
    target quota for all of them at once), run in dependency order.  Returns the system
    move's id."""
    require_may_move_servers(actor)
    why = clean_reason(reason)
    department_key = (department_key or "").strip()
    application_system = (application_system or "").strip()
    if not department_key or not application_system:
        raise MoveInvalid(message(N_("name the department and its application system to move")))
    with db.unit_of_work() as uow:
        source = cloud_ref(uow.session, cloud_key)
        target = cloud_ref(uow.session, target_cloud_key)
        if source.id == target.id:
            raise MoveInvalid(message(N_("the system is on cloud %(cloud)s already"), cloud=source.key))
        hosts = _system_hosts(uow.session, department_key, application_system, source)
        _check_no_open_system_move(uow.session, department_key, application_system)
    # The cloud reads, outside any unit of work: each server, its size and its parts.
    read: list[tuple[SystemHost, Server, Flavor, SourceParts]] = []
    for host in hosts:
        server, flavor = _read_server_and_flavor(registry, source, target, host.server_id)
        read.append(
            (host, server, flavor, read_source_parts(source.provider(registry), target.provider(registry), server))
        )
    with db.unit_of_work() as uow:
        session = uow.session
        _check_no_open_system_move(session, department_key, application_system)
        layers: list[list[str]] = [[] for _ in range(max(h.layer for h in hosts) + 1)]
        for host in hosts:
            layers[host.layer].append(host.hostname)
        system_move = Move(
            kind=MoveKind.SYSTEM.value,
            state=MoveState.REQUESTED,
            cloud_id=source.id,
            server_name=application_system[:255],
            target_cloud_id=target.id,
            target_zone=target_zone,
            reason=why,
            created_by=actor.username,
            resources={
                "system": {"department": department_key, "name": application_system},
                "layers": layers,
            },
        )
        create_move(
            session,
            system_move,
            actor,
            {"system": application_system, "department": department_key, "from": source.key, "to": target.key},
        )
        children: dict[str, int] = {}
        for host, server, flavor, parts in read:
            child = add_cross_cloud_move(
                session,
                source=source,
                target=target,
                server=server,
                flavor=flavor,
                parts=parts,
                actor=actor,
                reason=f"{application_system} ({host.hostname}): {why}",
                target_department_key=None,
                target_zone=target_zone,
                system_move=system_move,
            )
            child.resources = {**child.resources, "hostname": host.hostname, "layer": host.layer}
            children[host.hostname] = child.id
        system_move.target_department_id = session.scalar(select(Department.id).where(Department.key == department_key))
        system_move.resources = {**system_move.resources, "servers": children}
        return system_move.id
