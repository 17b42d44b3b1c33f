"""The resources the ledger counts, and how they map to OpenStack's quotas.

Nova: cores, RAM, instances.  Neutron: networks, floating IPs, security groups and their
rules.  Cinder: volumes, their gigabytes (volumes and snapshots together, as Cinder
counts), snapshots and backups.  A cloud without Cinder has no Cinder quota at all: its
``QuotaSet.block_storage`` is None and those resources are absent from
:func:`limits_of`, never read as 0.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from cloudmgr.cloud.types import BlockStorageQuota, ComputeQuota, NetworkQuota, QuotaSet


class Resource(enum.StrEnum):
    # Ordered: reservations lock ledger rows in this order, so two concurrent
    # reservations can never deadlock on each other.
    CORES = "cores"
    RAM_MB = "ram_mb"
    INSTANCES = "instances"
    NETWORKS = "networks"
    FLOATING_IPS = "floating_ips"
    # Appended (issue 16), never inserted: the order is the lock order.
    VOLUMES = "volumes"
    GIGABYTES = "volume_gb"  # Cinder's "gigabytes": volumes and snapshots together
    SNAPSHOTS = "snapshots"
    BACKUPS = "backups"
    SECURITY_GROUPS = "security_groups"
    SECURITY_GROUP_RULES = "security_group_rules"


RESOURCES: tuple[Resource, ...] = tuple(Resource)

# In quota files RAM is written in GB, as people think of it.
FILE_NAMES: dict[str, Resource] = {
    "cores": Resource.CORES,
    "ram_gb": Resource.RAM_MB,
    "instances": Resource.INSTANCES,
    "networks": Resource.NETWORKS,
    "floating_ips": Resource.FLOATING_IPS,
    "volumes": Resource.VOLUMES,
    "volume_gb": Resource.GIGABYTES,
    "snapshots": Resource.SNAPSHOTS,
    "backups": Resource.BACKUPS,
    "security_groups": Resource.SECURITY_GROUPS,
    "security_group_rules": Resource.SECURITY_GROUP_RULES,
}
FILE_FACTOR: dict[Resource, int] = {Resource.RAM_MB: 1024}


def to_file_value(resource: Resource, value: int) -> int:
    return value // FILE_FACTOR.get(resource, 1)


def file_name(resource: Resource) -> str:
    return next(name for name, r in FILE_NAMES.items() if r == resource)


def quota_set_with(current: QuotaSet, limits: Mapping[Resource, int]) -> QuotaSet:
    """``current`` with the ledger's resources replaced by ``limits`` (others kept as they are).

    On a cloud without Cinder (``current.block_storage`` None) the Cinder limits have
    nowhere to go: the result has no block-storage quota either; see :func:`not_on_cloud`.
    """
    compute, network, block = current.compute, current.network, current.block_storage
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
            security_groups=limits.get(Resource.SECURITY_GROUPS, network.security_groups),
            security_group_rules=limits.get(Resource.SECURITY_GROUP_RULES, network.security_group_rules),
        ),
        block_storage=None
        if block is None
        else BlockStorageQuota(
            volumes=limits.get(Resource.VOLUMES, block.volumes),
            gigabytes=limits.get(Resource.GIGABYTES, block.gigabytes),
            snapshots=limits.get(Resource.SNAPSHOTS, block.snapshots),
            backups=limits.get(Resource.BACKUPS, block.backups),
        ),
    )


def limits_of(quota: QuotaSet) -> dict[Resource, int]:
    """The cloud's limits of the ledger's resources; Cinder's are absent on a cloud without it."""
    limits = {
        Resource.CORES: quota.compute.cores,
        Resource.RAM_MB: quota.compute.ram_mb,
        Resource.INSTANCES: quota.compute.instances,
        Resource.NETWORKS: quota.network.networks,
        Resource.FLOATING_IPS: quota.network.floating_ips,
        Resource.SECURITY_GROUPS: quota.network.security_groups,
        Resource.SECURITY_GROUP_RULES: quota.network.security_group_rules,
    }
    block = quota.block_storage
    if block is not None:
        limits.update(
            {
                Resource.VOLUMES: block.volumes,
                Resource.GIGABYTES: block.gigabytes,
                Resource.SNAPSHOTS: block.snapshots,
                Resource.BACKUPS: block.backups,
            }
        )
    return limits


def not_on_cloud(quota: QuotaSet, resources: Iterable[Resource]) -> list[Resource]:
    """Those of ``resources`` the cloud has no quota for (Cinder's, on a cloud without it)."""
    offered = limits_of(quota)
    return [r for r in RESOURCES if r in set(resources) and r not in offered]


Limits = dict[Resource, int]


def limits_to_json(limits: Mapping[Resource, int]) -> dict[str, int]:
    return {r.value: v for r, v in limits.items()}


def limits_from_json(data: Mapping[str, int]) -> Limits:
    return {Resource(k): int(v) for k, v in data.items()}


def describe_limits(limits: Mapping[Resource, int]) -> str:
    return ", ".join(f"{r.value}={limits[r]}" for r in RESOURCES if r in limits)
