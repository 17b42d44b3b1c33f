"""Draining a compute host: planning where its servers go on the other hosts' free
capacity, and starting the drain (refused, and audited, when they cannot take them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.cloud import CloudError, CloudProvider
from cloudmgr.db import Database
from cloudmgr.messages import N_, Message, message
from cloudmgr.moves.errors import DrainRefused, MoveCloudError, MoveInProgress, MoveInvalid
from cloudmgr.moves.metrics import MOVES_TOTAL
from cloudmgr.moves.models import Move
from cloudmgr.moves.records import (
    CloudRef,
    audit_refusal,
    clean_reason,
    cloud_ref,
    create_move,
    require_may_move_servers,
)
from cloudmgr.moves.states import OPEN_STATES, MoveKind, MoveState
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.providers import ProviderRegistry


@dataclass(frozen=True)
class DrainServer:
    id: str
    name: str
    status: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    planned_host: str | None


@dataclass
class DrainPlan:
    """Where each server of ``host`` would go, and what the other hosts lack."""

    host: str
    servers: list[DrainServer] = field(default_factory=list)
    other_hosts: list[str] = field(default_factory=list)
    free: dict[str, int] = field(default_factory=dict)  # the other hosts' free VCPU / MEMORY_MB / DISK_GB
    need: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # servers of projects cloudmgr does not manage, left alone (only_managed)

    @property
    def unplaced(self) -> list[DrainServer]:
        return [s for s in self.servers if s.planned_host is None]

    @property
    def shortfall(self) -> dict[str, int]:
        return {rc: self.need[rc] - self.free.get(rc, 0) for rc in self.need if self.need[rc] > self.free.get(rc, 0)}

    def refusal(self) -> Message | None:
        unplaced = self.unplaced
        if not unplaced:
            return None
        # Units, not words: the sentence around them is translated where it is shown.
        units = {"VCPU": "vCPU", "MEMORY_MB": "MB", "DISK_GB": "GB"}
        names = ", ".join(f"{s.name} ({s.vcpus} vCPU, {s.ram_mb} MB)" for s in unplaced[:10])
        if len(unplaced) > 10:
            names += f" … (+{len(unplaced) - 10})"
        if not self.other_hosts:
            return message(
                N_("host %(host)s cannot be drained: there is no other enabled compute host to take its servers"),
                host=self.host,
            )
        shortfall = self.shortfall
        if shortfall:
            return message(
                N_(
                    "host %(host)s cannot be drained: the other hosts (%(hosts)s) lack %(lack)s "
                    "for its %(count)s servers; servers with no room: %(names)s"
                ),
                host=self.host,
                hosts=", ".join(self.other_hosts),
                lack=", ".join(f"{n} {units[rc]}" for rc, n in shortfall.items()),
                count=len(self.servers),
                names=names,
            )
        return message(
            N_(
                "host %(host)s cannot be drained: the other hosts have enough free capacity in all, but no single "
                "host has room for: %(names)s"
            ),
            host=self.host,
            names=names,
        )


_RESOURCE_CLASSES = ("VCPU", "MEMORY_MB", "DISK_GB")


def plan_drain(provider: CloudProvider, host: str, *, project_ids: set[str] | None = None) -> DrainPlan:
    """Place every server of ``host`` on the other enabled hosts' free capacity (Placement),
    largest first on the host with the most free RAM (as Nova's RAM weigher would)."""
    hypervisors = provider.list_hypervisors()
    by_name = {h.name: h for h in hypervisors}
    if host not in {h.host for h in hypervisors}:
        raise MoveInvalid(
            message(
                N_("there is no compute host %(host)s on this cloud (hosts: %(hosts)s)"),
                host=host,
                hosts=", ".join(sorted(h.host for h in hypervisors)),
            )
        )
    flavors = {f.id: f for f in provider.list_flavors()}
    flavors_by_name = {f.name: f for f in provider.list_flavors()}
    free: dict[str, dict[str, int]] = {}
    for rp in provider.capacity_snapshot().providers:
        hypervisor = by_name.get(rp.name)
        other = hypervisor.host if hypervisor else rp.name
        if other == host or (hypervisor is not None and (hypervisor.status != "enabled" or hypervisor.state != "up")):
            continue
        free[other] = {rc: max(rp.free(rc), 0) for rc in _RESOURCE_CLASSES}
    plan = DrainPlan(host=host, other_hosts=sorted(free))
    plan.free = {rc: sum(f[rc] for f in free.values()) for rc in _RESOURCE_CLASSES}
    servers = provider.list_servers_on_host(host)
    if project_ids is not None:
        plan.skipped = sum(1 for s in servers if s.project_id not in project_ids)
        servers = [s for s in servers if s.project_id in project_ids]
    sized = []
    for server in servers:
        flavor = flavors.get(server.flavor_id or "") or flavors_by_name.get(server.flavor_name or "")
        need = (flavor.vcpus, flavor.ram_mb, flavor.disk_gb) if flavor else (0, 0, 0)
        sized.append((server, need))
    plan.need = {
        "VCPU": sum(n[0] for _, n in sized),
        "MEMORY_MB": sum(n[1] for _, n in sized),
        "DISK_GB": sum(n[2] for _, n in sized),
    }
    room = {h: dict(f) for h, f in free.items()}
    for server, (vcpus, ram_mb, disk_gb) in sorted(sized, key=lambda item: (item[1][1], item[1][0]), reverse=True):
        want = {"VCPU": vcpus, "MEMORY_MB": ram_mb, "DISK_GB": disk_gb}
        fits = [h for h, r in room.items() if all(r[rc] >= want[rc] for rc in _RESOURCE_CLASSES)]
        chosen = max(fits, key=lambda h: (room[h]["MEMORY_MB"], h)) if fits else None
        if chosen is not None:
            for rc in _RESOURCE_CLASSES:
                room[chosen][rc] -= want[rc]
        plan.servers.append(DrainServer(server.id, server.name, server.status, vcpus, ram_mb, disk_gb, chosen))
    plan.servers.sort(key=lambda s: s.name)
    return plan


def managed_project_ids(session: Session, cloud: CloudRef | Cloud) -> set[str]:
    """The department projects cloudmgr manages on ``cloud``'s OpenStack (every cloud of
    the file reached through the same clouds.yaml entry and region)."""
    os_cloud, region = cloud.os_cloud, cloud.region
    return {
        link.project_id
        for link in session.scalars(
            select(DepartmentCloud).join(Cloud, Cloud.id == DepartmentCloud.cloud_id).where(Cloud.os_cloud == os_cloud)
        )
        if link.project_id and link.cloud.region == region
    }


def start_drain(
    db: Database,
    registry: ProviderRegistry,
    *,
    cloud_key: str,
    host: str,
    actor: Actor,
    reason: str,
    disable_host: bool = True,
    keep_disabled: bool = False,
    only_managed: bool = False,
) -> int:
    """Queue a drain of ``host``: every server on it live-migrated elsewhere (stopped ones
    cold-migrated and confirmed).  Refused, and audited, when the other hosts' free
    capacity cannot take them.  ``only_managed`` leaves servers of projects cloudmgr does
    not manage where they are (they are counted in the plan)."""
    require_may_move_servers(actor)
    why = clean_reason(reason)
    host = (host or "").strip()
    if not host:
        raise MoveInvalid(Message(N_("name the compute host to drain")))
    with db.unit_of_work() as uow:
        cloud = cloud_ref(uow.session, cloud_key)
        project_ids = managed_project_ids(uow.session, cloud) if only_managed else None
        open_drain = uow.session.scalar(
            select(Move).where(
                Move.kind == MoveKind.DRAIN.value,
                Move.cloud_id == cloud.id,
                Move.source_host == host,
                Move.state.in_(OPEN_STATES),
            )
        )
        if open_drain is not None:
            raise MoveInProgress(
                message(N_("host %(host)s is already being drained (move %(move)s)"), host=host, move=open_drain.id)
            )
    provider = cloud.provider(registry)
    try:
        plan = plan_drain(provider, host, project_ids=project_ids)
    except CloudError as exc:
        raise MoveCloudError(
            message(N_("cloud %(cloud)s could not be read: %(error)s"), cloud=cloud.key, error=str(exc))
        ) from exc
    refusal = plan.refusal()
    if refusal is not None:
        audit_refusal(
            db,
            actor=actor,
            action="move.drain_refused",
            target_id=host,
            reason=str(refusal),
            detail={"cloud": cloud.key, "shortfall": plan.shortfall, "unplaced": [s.name for s in plan.unplaced]},
        )
        MOVES_TOTAL.labels(kind=MoveKind.DRAIN.value, outcome="refused").inc()
        raise DrainRefused(refusal)
    with db.unit_of_work() as uow:
        move = Move(
            kind=MoveKind.DRAIN.value,
            state=MoveState.REQUESTED,
            cloud_id=cloud.id,
            source_host=host,
            disable_host=disable_host,
            only_managed=only_managed,
            reason=why,
            created_by=actor.username,
            resources={
                "keep_disabled": keep_disabled,
                "plan": [{"id": s.id, "name": s.name, "status": s.status, "to": s.planned_host} for s in plan.servers],
                "skipped_unmanaged": plan.skipped,
            },
        )
        create_move(uow.session, move, actor, {"host": host, "servers": len(plan.servers)})
        return move.id
