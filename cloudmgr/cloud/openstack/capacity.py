"""The compute hosts and what they hold: Nova's aggregates, hypervisors and compute
services, and Placement's resource providers and allocations."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from openstack import exceptions as sdk_exceptions

from cloudmgr.cloud.errors import CloudNotFound
from cloudmgr.cloud.openstack.connection import OpenStackConnection
from cloudmgr.cloud.openstack.convert import as_int
from cloudmgr.cloud.types import (
    Allocation,
    HostAggregate,
    Hypervisor,
    Inventory,
    PlacementSnapshot,
    ResourceProvider,
)

T = TypeVar("T")
R = TypeVar("R")

#: How many per-provider Placement reads run at once.  Placement has no bulk read of
#: inventories or allocations, so a snapshot costs two GETs per provider; running them a
#: few at a time overlaps their round trips and Placement's database waits without
#: swamping a small Placement (the lab's runs 8 threads in one process).
PLACEMENT_READERS = 8


def _inventory(fields: Mapping[str, Any]) -> Inventory:
    ratio = fields.get("allocation_ratio")
    return Inventory(
        total=as_int(fields.get("total")),
        reserved=as_int(fields.get("reserved")),
        allocation_ratio=float(ratio if ratio is not None else 1.0),
        min_unit=as_int(fields.get("min_unit"), 1),
        max_unit=as_int(fields.get("max_unit"), as_int(fields.get("total"))),
        step_size=as_int(fields.get("step_size"), 1),
    )


def _allocations(body: Mapping[str, Any]) -> tuple[Allocation, ...]:
    """GET /resource_providers/{uuid}/allocations: {consumer uuid: {resources: {...}}}."""
    consumers: Mapping[str, Any] = body.get("allocations") or {}
    return tuple(
        Allocation(
            consumer_id=str(consumer),
            resources={str(k): int(v) for k, v in ((held or {}).get("resources") or {}).items()},
        )
        for consumer, held in sorted(consumers.items())
    )


def _usages(inventories: Mapping[str, Inventory], allocations: Sequence[Allocation]) -> dict[str, int]:
    """What GET /resource_providers/{uuid}/usages would answer, from the allocations: Placement
    sums the allocations of each resource class the provider has an inventory of (0 when
    none), so reading the allocations saves the usages GET."""
    usages = dict.fromkeys(inventories, 0)
    for allocation in allocations:
        for resource_class, amount in allocation.resources.items():
            if resource_class in usages:
                usages[resource_class] += amount
    return usages


def _concurrently(work: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``work`` on every item, a few at a time (see PLACEMENT_READERS), results in order.
    The admin connection is shared, as openstacksdk shares it with its own thread pool
    (segmented uploads): keystoneauth's auth plugin takes a lock to fetch or renew the
    token, and urllib3's pool (10 connections per host, more than PLACEMENT_READERS) hands
    each thread a connection of its own."""
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(PLACEMENT_READERS, len(items))) as pool:
        return list(pool.map(work, items))


class OpenStackCapacity(OpenStackConnection):
    def list_aggregates(self) -> list[HostAggregate]:
        aggregates = self._call("list aggregates", lambda: list(self._admin.compute.aggregates()))
        return [
            HostAggregate(
                id=str(a.id),
                name=str(a.name),
                hosts=tuple(sorted(str(h) for h in (a.hosts or []))),
                availability_zone=a.availability_zone or None,
            )
            for a in aggregates
        ]

    def list_hypervisors(self) -> list[Hypervisor]:
        hypervisors = self._call("list hypervisors", lambda: list(self._admin.compute.hypervisors(details=True)))
        return [
            Hypervisor(
                id=str(h.id),
                name=str(h.name),
                state=str(h.state or ""),
                status=str(h.status or ""),
                host=str((h.service_details or {}).get("host") or h.name),
            )
            for h in hypervisors
        ]

    def set_compute_service_enabled(self, host: str, enabled: bool, reason: str = "") -> None:
        compute = self._admin.compute

        def toggle() -> None:
            services = list(compute.services(binary="nova-compute", host=host))
            if not services:
                raise CloudNotFound(f"compute host {host} not found", f"no nova-compute service on {host}")
            for service in services:
                if enabled:
                    compute.enable_service(service)
                else:
                    compute.disable_service(service, disabled_reason=reason or None)

        action = "enable" if enabled else "disable"
        self._call(f"{action} the compute service of {host}", toggle)

    def _placement_get(self, path: str) -> dict[str, Any]:
        """One GET on Placement (its JSON), raising the SDK's exceptions for ``_call`` to translate."""
        response = self._admin.placement.get(path)
        sdk_exceptions.raise_from_response(response)
        body: dict[str, Any] = response.json()
        return body

    def _provider_ids_and_names(self) -> list[tuple[str, str]]:
        # GET /resource_providers answers every provider at once (Placement does not page it).
        body = self._call("list resource providers", lambda: self._placement_get("/resource_providers"))
        return [(str(rp["uuid"]), str(rp["name"])) for rp in body.get("resource_providers") or []]

    def _provider_read(self, rp_id: str, what: str) -> dict[str, Any] | None:
        """GET /resource_providers/{rp_id}/{what}; None when the provider was deleted meanwhile."""
        try:
            return self._call(
                f"read the {what} of resource provider {rp_id}",
                lambda: self._placement_get(f"/resource_providers/{rp_id}/{what}"),
            )
        except CloudNotFound:
            return None

    def list_resource_providers(self) -> list[ResourceProvider]:
        # Placement has no bulk read of inventories or usages: one GET of each per provider
        # (unavoidable), run concurrently.
        def read(rp: tuple[str, str]) -> ResourceProvider | None:
            rp_id, name = rp
            inventories = self._provider_read(rp_id, "inventories")
            usages = self._provider_read(rp_id, "usages")
            if inventories is None or usages is None:
                return None
            return ResourceProvider(
                id=rp_id,
                name=name,
                inventories={str(rc): _inventory(f) for rc, f in (inventories.get("inventories") or {}).items()},
                usages={str(k): int(v) for k, v in (usages.get("usages") or {}).items()},
            )

        return [rp for rp in _concurrently(read, self._provider_ids_and_names()) if rp is not None]

    def capacity_snapshot(self) -> PlacementSnapshot:
        # 1 + 2N GETs for N providers, the fewest Placement allows: the list of providers,
        # then per provider its inventories and its allocations (no bulk read of either
        # exists; /allocation_candidates' provider_summaries give only capacity and used,
        # and only of the providers that fit a request).  The usages GET is not needed:
        # usages are the sum of the allocations (see _usages).
        def read(rp: tuple[str, str]) -> tuple[ResourceProvider, tuple[Allocation, ...]] | None:
            rp_id, name = rp
            inventories_body = self._provider_read(rp_id, "inventories")
            allocations_body = self._provider_read(rp_id, "allocations")
            if inventories_body is None or allocations_body is None:
                return None
            inventories = {str(rc): _inventory(f) for rc, f in (inventories_body.get("inventories") or {}).items()}
            allocations = _allocations(allocations_body)
            provider = ResourceProvider(
                id=rp_id, name=name, inventories=inventories, usages=_usages(inventories, allocations)
            )
            return provider, allocations

        read_ = [r for r in _concurrently(read, self._provider_ids_and_names()) if r is not None]
        return PlacementSnapshot(
            providers=tuple(rp for rp, _ in read_),
            allocations={rp.id: allocations for rp, allocations in read_},
        )

    def list_allocations(self, resource_provider_id: str) -> list[Allocation]:
        placement = self._admin.placement

        def fetch() -> list[Allocation]:
            # One GET /resource_providers/{uuid}/allocations: {consumer uuid: {resources: {...}}}.
            return [
                Allocation(
                    consumer_id=str(allocation.consumer_id),
                    resources={str(k): int(v) for k, v in (allocation.resources or {}).items()},
                )
                for allocation in placement.resource_provider_allocations(resource_provider_id)
            ]

        return self._call(f"list allocations of resource provider {resource_provider_id}", fetch)
