"""In-cloud consolidation: plan from the live placement, then migrate in waves, with a stop.

The state planned from is Placement's, not Nova's server list: each compute host offers its
bookable capacity, (total - reserved) x allocation ratio per resource class, and every
consumer holding an allocation on it is planned with the amounts it holds there, whatever
its status.  How each one may move:

* a running (or paused) server is live-migrated;
* a stopped (SHUTOFF) server is cold-migrated: moved while it is off, confirmed, and left
  off, so it costs its owner nothing;
* anything else (ERROR, a resize waiting to be confirmed, a task under way, an allocation
  held by a migration or another non-server consumer) stays where it is: it is fixed load,
  and its host is never emptied.

The plan comes from the planner's pure ``plan_migration`` (a drain plan: every move goes
straight to its final host and kept hosts never lose a VM, so the run can stop between any
two waves and every intermediate state fits).  A run is an explicit state machine:
planned → running → (stopping →) stopped | done | failed.  Each wave is one work item;
a move already done (the server is on its target) is skipped, so a resumed wave never
moves a server twice.  A move whose server is no longer where and as it was planned
fails (re-plan).  After the last wave the hosts the plan empties are checked against
Placement: a host still holding allocations is reported and the run fails, so "emptied"
never names a host that still holds something.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.capacity.models import ConsolidationRun, RunState
from cloudmgr.cloud import CloudProvider, PlacementSnapshot, ResourceProvider, Server
from cloudmgr.db import Database, utcnow
from cloudmgr.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Role
from cloudmgr.providers import ProviderRegistry
from cloudmgr.workqueue.services import enqueue

if TYPE_CHECKING:
    from cloudmgr.capacity.planner.migration import HostState, VmState

log = logging.getLogger(__name__)


class RunNotFound(NotFound):
    code = "consolidation_run_not_found"


class RunStateConflict(Conflict):
    code = "consolidation_run_state"


#: Resource classes the planner packs (Placement's names).
RESOURCE_CLASSES = ("VCPU", "MEMORY_MB", "DISK_GB")
#: Nova statuses in which a server is live-migrated (Nova live-migrates active and paused ones).
LIVE_MIGRATION_STATUSES = frozenset({"ACTIVE", "PAUSED"})
#: ...and in which it is cold-migrated: moved while off, and still off afterwards.
COLD_MIGRATION_STATUSES = frozenset({"SHUTOFF"})


@dataclass(frozen=True)
class LiveState:
    """The planner's input read from the cloud, and what explains it to people.

    ``names`` maps a VM's name (a consumer id) to its display name; ``fixed`` maps each VM
    that must stay to the reason why; ``resource_providers`` maps a host to its Placement
    resource provider id."""

    hosts: list[HostState]
    vms: list[VmState]
    names: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)
    resource_providers: dict[str, str] = field(default_factory=dict)


def migration_kind(server: Server) -> str | None:
    """How ``server`` may be moved now: "live", "cold", or None (it must stay)."""
    if server.task_state is not None:
        return None  # something is already happening to it
    if server.status in LIVE_MIGRATION_STATUSES:
        return "live"
    if server.status in COLD_MIGRATION_STATUSES:
        return "cold"
    return None


def bookable(rp: ResourceProvider, resource_class: str) -> int:
    """What Placement lets be allocated of ``resource_class`` on ``rp`` in all."""
    inventory = rp.inventories.get(resource_class)
    return max(0, inventory.capacity) if inventory is not None else 0


def _compute_nodes(provider: CloudProvider, snapshot: PlacementSnapshot) -> list[tuple[str, ResourceProvider, bool]]:
    """(compute host, its resource provider, enabled) per compute node of ``snapshot``.  A
    resource provider is named after its node (the hypervisor's name), while servers and
    migrations name the compute service's host: the two differ on many clouds (FQDN vs short
    name).  Providers that are not compute nodes (network, sharing) are left out."""
    hypervisors = {h.name: h for h in provider.list_hypervisors()}
    nodes = []
    for rp in snapshot.providers:
        hypervisor = hypervisors.get(rp.name)
        if hypervisor is not None:
            enabled = hypervisor.status == "enabled" and hypervisor.state == "up"
            nodes.append((hypervisor.host, rp, enabled))
    return nodes


def _why_fixed(server: Server | None, host: str, on_several_hosts: bool) -> str | None:
    """Why the consumer holding an allocation on ``host`` must stay, or None if it may move."""
    if server is None:
        return "not a server: a migration or another consumer"
    if on_several_hosts or server.host != host:
        return f"{server.status}, with allocations on more than one host (a move under way)"
    if migration_kind(server) is None:
        task = f" ({server.task_state})" if server.task_state else ""
        return f"{server.status}{task}: neither live- nor cold-migratable"
    return None


def live_state(provider: CloudProvider) -> LiveState:
    """Hosts with their bookable capacity and every consumer holding an allocation on
    them, as Placement has them now; see the module documentation for who moves how."""
    # The planner brings numpy and OR-Tools: imported when a plan is made, not at start-up.
    from cloudmgr.capacity.planner.migration import HostState, VmState

    state = LiveState(hosts=[], vms=[])
    held: dict[str, dict[str, Mapping[str, int]]] = {}
    # One read of Placement for every host's inventories and allocations (see capacity_snapshot).
    snapshot = provider.capacity_snapshot()
    for host, rp, enabled in _compute_nodes(provider, snapshot):
        vcpus, ram_mb, disk_gb = (bookable(rp, rc) for rc in RESOURCE_CLASSES)
        state.hosts.append(HostState(host, vcpus, ram_mb, disk_gb, enabled=enabled))
        state.resource_providers[host] = rp.id
        held[host] = {a.consumer_id: a.resources for a in snapshot.allocations_of(rp.id)}
    servers = {server.id: server for server in provider.iter_servers()}
    hosts_of = Counter(consumer for consumers in held.values() for consumer in consumers)
    for host, consumers in held.items():
        for consumer, resources in sorted(consumers.items()):
            vcpus, ram_mb, disk_gb = (max(0, int(resources.get(rc, 0))) for rc in RESOURCE_CLASSES)
            server = servers.get(consumer)
            # A consumer on two hosts (an evacuation, a move under way) is fixed on both.
            name = consumer if hosts_of[consumer] == 1 else f"{consumer}@{host}"
            state.names[name] = server.name if server is not None else consumer
            reason = _why_fixed(server, host, hosts_of[consumer] > 1)
            if server is None or reason is not None:
                state.fixed[name] = reason or "fixed"
                state.vms.append(VmState(name, host, vcpus, ram_mb, disk_gb, movable=False))
            else:
                kind = migration_kind(server) or "live"
                state.vms.append(VmState(name, host, vcpus, ram_mb, disk_gb, migration=kind))
    return state


def allocations_left(provider: CloudProvider, hosts: list[str]) -> dict[str, list[str]]:
    """The consumers Placement still shows on each of ``hosts`` that is not empty (a host
    Placement no longer knows counts as empty)."""
    wanted = set(hosts)
    left: dict[str, list[str]] = {}
    snapshot = provider.capacity_snapshot()
    for host, rp, _ in _compute_nodes(provider, snapshot):
        if host in wanted and any(amount > 0 for amount in rp.usages.values()):
            left[host] = sorted(a.consumer_id for a in snapshot.allocations_of(rp.id)) or ["(usages)"]
    return left


def provider_of(registry: ProviderRegistry, cloud: Cloud) -> CloudProvider:
    return registry.for_cloud(cloud.key, cloud.os_cloud, cloud.region)


def may_run_consolidation(actor: Actor) -> bool:
    """Operators plan, start and stop consolidation runs."""
    return actor.role == Role.OPERATOR


def _require_operator(actor: Actor) -> None:
    if not may_run_consolidation(actor):
        raise PermissionDenied("only operators plan, start and stop consolidation runs")


def plan_run(db: Database, registry: ProviderRegistry, cloud_key: str, *, actor: Actor, max_wave: int = 5) -> int:
    """Read the cloud, plan, and store the plan as a run (nothing moves yet)."""
    _require_operator(actor)
    if not 1 <= max_wave <= 500:
        raise ValidationFailed("a wave holds between 1 and 500 moves")
    with db.unit_of_work() as uow:
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == cloud_key))
        if cloud is None:
            raise NotFound(f"no cloud {cloud_key!r}")
        provider = provider_of(registry, cloud)
        cloud_id = cloud.id
    from cloudmgr.capacity.planner.migration import plan_migration

    state = live_state(provider)
    plan = plan_migration(state.hosts, state.vms, max_wave=max_wave)
    kinds = {vm.name: vm.migration for vm in state.vms}
    summary: dict[str, Any] = {
        "hosts": len(state.hosts),
        "vms": len(state.vms),
        "fixed": len(state.fixed),
        "moves": len(plan.moves),
        "cold_moves": sum(1 for m in plan.moves if kinds[m.vm] == "cold"),
        "emptied": len(plan.emptied),
        "max_emptiable": plan.max_emptiable,
        "min_moves_bound": plan.min_moves_bound,
        "method": plan.method,
        "status": plan.status,
    }
    body: dict[str, Any] = {
        "waves": [
            [
                {"server_id": m.vm, "vm": state.names.get(m.vm, m.vm), "from": m.source, "to": m.target}
                | {"kind": kinds[m.vm]}
                for m in wave
            ]
            for wave in plan.waves
        ],
        "emptied": plan.emptied,
        "fixed": [
            {
                "consumer": vm.name,
                "vm": state.names.get(vm.name, vm.name),
                "host": vm.host,
                "reason": state.fixed[vm.name],
            }
            for vm in state.vms
            if not vm.movable
        ],
        "summary": summary,
    }
    with db.unit_of_work() as uow:
        run = ConsolidationRun(cloud_id=cloud_id, plan=body, created_by=actor.username, state=RunState.PLANNED.value)
        uow.session.add(run)
        uow.session.flush()
        audit.record(
            uow.session,
            actor=actor.username,
            action="consolidation.plan",
            target_type="consolidation_run",
            target_id=run.id,
            detail=summary,
        )
        return run.id


def get_run(session: Session, run_id: int) -> ConsolidationRun:
    run = session.get(ConsolidationRun, run_id)
    if run is None:
        raise RunNotFound(f"no consolidation run {run_id}")
    return run


def list_runs(session: Session, limit: int = 50) -> list[ConsolidationRun]:
    return list(session.scalars(select(ConsolidationRun).order_by(ConsolidationRun.id.desc()).limit(limit)))


def start_run(session: Session, run_id: int, *, actor: Actor) -> ConsolidationRun:
    _require_operator(actor)
    run = get_run(session, run_id)
    if run.state not in {RunState.PLANNED.value, RunState.STOPPED.value}:
        raise RunStateConflict(f"run {run_id} is {run.state}; only a planned or stopped run starts")
    if run.next_wave >= len(run.plan["waves"]):
        raise RunStateConflict(f"run {run_id} has no moves left")
    run.state, run.started_by, run.started_at = RunState.RUNNING.value, actor.username, utcnow()
    audit.record(
        session, actor=actor.username, action="consolidation.start", target_type="consolidation_run", target_id=run.id
    )
    enqueue(session, "consolidation_wave", f"consolidation:{run.id}", {"run_id": run.id})
    return run


def stop_run(session: Session, run_id: int, *, actor: Actor) -> ConsolidationRun:
    """The stop button: the wave under way finishes its current move, then the run stops."""
    _require_operator(actor)
    run = get_run(session, run_id)
    if run.state != RunState.RUNNING.value:
        raise RunStateConflict(f"run {run_id} is {run.state}; only a running run stops")
    run.state, run.stop_requested_by = RunState.STOPPING.value, actor.username
    audit.record(
        session, actor=actor.username, action="consolidation.stop", target_type="consolidation_run", target_id=run.id
    )
    return run
