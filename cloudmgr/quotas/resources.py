"""The resources the ledger counts, and how they map to OpenStack's quotas."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from cloudmgr.cloud.types import ComputeQuota, NetworkQuota, QuotaSet


class Resource(enum.StrEnum):
    # Ordered: reservations lock ledger rows in this order, so two concurrent
    # reservations can never deadlock on each other.
    CORES = "cores"
    RAM_MB = "ram_mb"
    INSTANCES = "instances"
    NETWORKS = "networks"
    FLOATING_IPS = "floating_ips"


RESOURCES: tuple[Resource, ...] = tuple(Resource)

# In quota files RAM is written in GB, as people think of it.
FILE_NAMES: dict[str, Resource] = {
    "cores": Resource.CORES,
    "ram_gb": Resource.RAM_MB,
    "instances": Resource.INSTANCES,
    "networks": Resource.NETWORKS,
    "floating_ips": Resource.FLOATING_IPS,
}
FILE_FACTOR: dict[Resource, int] = {Resource.RAM_MB: 1024}


def to_file_value(resource: Resource, value: int) -> int:
    return value // FILE_FACTOR.get(resource, 1)


def file_name(resource: Resource) -> str:
    return next(name for name, r in FILE_NAMES.items() if r == resource)


def quota_set_with(current: QuotaSet, limits: Mapping[Resource, int]) -> QuotaSet:
    """``current`` with the ledger's resources replaced by ``limits`` (others kept as they are)."""
    compute, network = current.compute, current.network
    return QuotaSet(
        compute=ComputeQuota(
            cores=limits.get(Resource.CORES, compute.cores),
            ram_mb=limits.get(Resource.RAM_MB, compute.ram_mb),
            instances=limits.get(Resource.INSTANCES, compute.instances),
        ),
        network=NetworkQuota(
            networks=limits.get(Resource.NETWORKS, network.networks),
            subnets=network.subnets,
            ports=network.ports,
            floating_ips=limits.get(Resource.FLOATING_IPS, network.floating_ips),
            security_groups=network.security_groups,
        ),
    )


def limits_of(quota: QuotaSet) -> dict[Resource, int]:
    return {
        Resource.CORES: quota.compute.cores,
        Resource.RAM_MB: quota.compute.ram_mb,
        Resource.INSTANCES: quota.compute.instances,
        Resource.NETWORKS: quota.network.networks,
        Resource.FLOATING_IPS: quota.network.floating_ips,
    }


Limits = dict[Resource, int]


def limits_to_json(limits: Mapping[Resource, int]) -> dict[str, int]:
    return {r.value: v for r, v in limits.items()}


def limits_from_json(data: Mapping[str, int]) -> Limits:
    return {Resource(k): int(v) for k, v in data.items()}


def describe_limits(limits: Mapping[Resource, int]) -> str:
    return ", ".join(f"{r.value}={limits[r]}" for r in RESOURCES if r in limits)
