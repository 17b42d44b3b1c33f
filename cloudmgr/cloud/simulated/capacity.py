"""The simulated compute hosts and Placement: what each host has and holds, where a new
or moving server goes, and the host-level reads (aggregates, hypervisors, resource
providers, allocations) and the compute service switch."""

from __future__ import annotations

from typing import Any

from cloudmgr.cloud.errors import CloudNotFound
from cloudmgr.cloud.simulated.records import live_servers, stable_id
from cloudmgr.cloud.simulated.store import RESOURCE_CLASSES, SimulatedStore
from cloudmgr.cloud.types import (
    Allocation,
    HostAggregate,
    Hypervisor,
    Inventory,
    PlacementSnapshot,
    ResourceProvider,
)


def host_allocations(state: dict[str, Any]) -> dict[str, dict[str, dict[str, int]]]:
    """Each host's allocations by consumer, like Placement: every server placed on a
    host holds its flavor there whatever its status (SHUTOFF and ERROR too); a server
    in VERIFY_RESIZE holds its new flavor on its new host, and the migration (its own
    consumer, not the server) holds the old flavor on the source until confirmed."""
    allocations: dict[str, dict[str, dict[str, int]]] = {name: {} for name in state["hosts"]}
    flavors = state["flavors"]

    def add(host: str | None, consumer_id: str, flavor_id: str) -> None:
        if host in allocations:
            flavor = flavors[flavor_id]
            allocations[host][consumer_id] = {
                "VCPU": flavor["vcpus"],
                "MEMORY_MB": flavor["ram_mb"],
                "DISK_GB": flavor["disk_gb"],
            }

    for server in live_servers(state):
        add(server["host"], server["id"], server["flavor_id"])
        pending = server.get("pending")
        if pending:
            # State files from before migrations had their own consumer: a stable id.
            migration_id = pending.get("migration_id") or stable_id("migration", server["id"])
            add(pending["source_host"], migration_id, pending["old_flavor_id"])
    return allocations


def host_usages(state: dict[str, Any]) -> dict[str, dict[str, int]]:
    """What each host has allocated in all: the sum of its allocations."""
    usages = {name: dict.fromkeys(RESOURCE_CLASSES, 0) for name in state["hosts"]}
    for name, consumers in host_allocations(state).items():
        for resources in consumers.values():
            for resource_class, amount in resources.items():
                usages[name][resource_class] += amount
    return usages


def inventories(host: dict[str, Any]) -> dict[str, Inventory]:
    ratios: dict[str, float] = host.get("allocation_ratio") or {}
    reserved: dict[str, int] = host.get("reserved") or {}

    def inventory(resource_class: str, total: int) -> Inventory:
        return Inventory(
            total=total,
            reserved=int(reserved.get(resource_class, 0)),
            allocation_ratio=float(ratios.get(resource_class, 1.0)),
            min_unit=1,
            max_unit=total,
            step_size=1,
        )

    return {
        "VCPU": inventory("VCPU", host["vcpus"]),
        "MEMORY_MB": inventory("MEMORY_MB", host["ram_mb"]),
        "DISK_GB": inventory("DISK_GB", host["disk_gb"]),
    }


def pick_host(
    state: dict[str, Any], flavor: dict[str, Any], *, exclude: str | None = None, only: str | None = None
) -> str | None:
    """The host to place ``flavor`` on, spreading load like Nova's default RAM weigher
    (most free memory wins); None when none has room."""
    need = {"VCPU": flavor["vcpus"], "MEMORY_MB": flavor["ram_mb"], "DISK_GB": flavor["disk_gb"]}
    usages = host_usages(state)
    best: tuple[int, str] | None = None
    for name in sorted(state["hosts"]):
        if name == exclude or (only is not None and name != only):
            continue
        if state["hosts"][name].get("disabled", False):
            continue  # Nova's ComputeFilter: a disabled compute service gets nothing new
        host_inventories = inventories(state["hosts"][name])
        fits = all(
            need[rc] <= host_inventories[rc].max_unit and usages[name][rc] + need[rc] <= host_inventories[rc].capacity
            for rc in RESOURCE_CLASSES
        )
        if fits:
            free_ram = host_inventories["MEMORY_MB"].capacity - usages[name]["MEMORY_MB"]
            if best is None or free_ram > best[0]:
                best = (free_ram, name)
    return None if best is None else best[1]


class SimulatedCapacity(SimulatedStore):
    def list_aggregates(self) -> list[HostAggregate]:
        return [
            HostAggregate(id=f"sim-aggregate-{name}", name=name, hosts=tuple(sorted(hosts)))
            for name, hosts in sorted(self._aggregates.items())
        ]

    def list_hypervisors(self) -> list[Hypervisor]:
        with self._transaction() as state:
            return [
                Hypervisor(
                    id=h["id"],
                    name=name,
                    state="up",
                    status="disabled" if h.get("disabled", False) else "enabled",
                    host=name,
                )
                for name, h in sorted(state["hosts"].items())
            ]

    def set_compute_service_enabled(self, host: str, enabled: bool, reason: str = "") -> None:
        with self._transaction() as state:
            record = state["hosts"].get(host)
            if record is None:
                raise CloudNotFound(f"compute host {host} not found", f"no nova-compute service on {host}")
            if record.get("disabled", False) == (not enabled):
                return
            record["disabled"] = not enabled
            record["disabled_reason"] = None if enabled else (reason or None)

    def list_resource_providers(self) -> list[ResourceProvider]:
        with self._transaction() as state:
            usages = host_usages(state)
            return [
                ResourceProvider(id=h["id"], name=name, inventories=inventories(h), usages=usages[name])
                for name, h in sorted(state["hosts"].items())
            ]

    def list_allocations(self, resource_provider_id: str) -> list[Allocation]:
        with self._transaction() as state:
            host = next((name for name, h in state["hosts"].items() if h["id"] == resource_provider_id), None)
            if host is None:
                raise CloudNotFound(
                    f"resource provider {resource_provider_id} not found",
                    f"No resource provider with uuid {resource_provider_id} found",
                    status_code=404,
                )
            consumers = host_allocations(state)[host]
            return [Allocation(consumer_id=c, resources=r) for c, r in sorted(consumers.items())]

    def capacity_snapshot(self) -> PlacementSnapshot:
        # One transaction: inventories, usages and allocations of one and the same state.
        with self._transaction() as state:
            usages = host_usages(state)
            held = host_allocations(state)
            providers = tuple(
                ResourceProvider(id=h["id"], name=name, inventories=inventories(h), usages=usages[name])
                for name, h in sorted(state["hosts"].items())
            )
            allocations = {
                h["id"]: tuple(Allocation(consumer_id=c, resources=r) for c, r in sorted(held[name].items()))
                for name, h in state["hosts"].items()
            }
            return PlacementSnapshot(providers=providers, allocations=allocations)
