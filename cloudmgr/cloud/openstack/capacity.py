"""The compute hosts and what they hold: Nova's aggregates, hypervisors and compute
services, and Placement's resource providers and allocations."""

from __future__ import annotations

from cloudmgr.cloud.errors import CloudNotFound
from cloudmgr.cloud.openstack.connection import OpenStackConnection
from cloudmgr.cloud.openstack.convert import as_int
from cloudmgr.cloud.types import Allocation, HostAggregate, Hypervisor, Inventory, ResourceProvider


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

    def list_resource_providers(self) -> list[ResourceProvider]:
        placement = self._admin.placement

        def fetch() -> list[ResourceProvider]:
            providers = []
            for rp in placement.resource_providers():
                inventories = {
                    str(inv.resource_class): Inventory(
                        total=as_int(inv.total),
                        reserved=as_int(inv.reserved),
                        allocation_ratio=float(inv.allocation_ratio if inv.allocation_ratio is not None else 1.0),
                        min_unit=as_int(inv.min_unit, 1),
                        max_unit=as_int(inv.max_unit, as_int(inv.total)),
                        step_size=as_int(inv.step_size, 1),
                    )
                    for inv in placement.resource_provider_inventories(rp.id)
                }
                usages = placement.fetch_resource_provider_usages(rp.id).usages or {}
                providers.append(
                    ResourceProvider(
                        id=str(rp.id),
                        name=str(rp.name),
                        inventories=inventories,
                        usages={str(k): int(v) for k, v in usages.items()},
                    )
                )
            return providers

        return self._call("list resource providers", fetch)

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
