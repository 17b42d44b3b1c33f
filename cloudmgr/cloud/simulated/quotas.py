"""Project quotas, enforced with the errors (and Nova's wording) a real cloud gives, and
what each project's servers use."""

from __future__ import annotations

import dataclasses
from typing import Any

from cloudmgr.cloud.errors import CloudBadRequest, CloudQuotaExceeded
from cloudmgr.cloud.simulated.records import live_servers, require_project
from cloudmgr.cloud.simulated.store import (
    DEFAULT_BLOCK_STORAGE_QUOTA,
    DEFAULT_COMPUTE_QUOTA,
    DEFAULT_NETWORK_QUOTA,
    SimulatedStore,
)
from cloudmgr.cloud.types import (
    UNLIMITED,
    BlockStorageQuota,
    ComputeQuota,
    ComputeUsage,
    NetworkQuota,
    QuotaSet,
)


def quota_of(state: dict[str, Any], project_id: str, *, block_storage: bool = True) -> QuotaSet:
    """The project's quota; ``block_storage`` False for a cloud without Cinder (no such quota)."""
    stored = state["quotas"].get(project_id) or {}
    # State saved before a resource existed (no security_group_rules, no block_storage)
    # reads that resource's default, as a real cloud gives a new resource its default.
    network = {**dataclasses.asdict(DEFAULT_NETWORK_QUOTA), **stored.get("network", {})}
    volume = {**dataclasses.asdict(DEFAULT_BLOCK_STORAGE_QUOTA), **stored.get("block_storage", {})}
    return QuotaSet(
        compute=ComputeQuota(**stored["compute"]) if "compute" in stored else DEFAULT_COMPUTE_QUOTA,
        network=NetworkQuota(**network),
        block_storage=BlockStorageQuota(**volume) if block_storage else None,
    )


def usage_of(state: dict[str, Any], project_id: str) -> ComputeUsage:
    servers = live_servers(state, project_id)
    flavors = state["flavors"]
    return ComputeUsage(
        cores=sum(flavors[s["flavor_id"]]["vcpus"] for s in servers),
        ram_mb=sum(flavors[s["flavor_id"]]["ram_mb"] for s in servers),
        instances=len(servers),
    )


def check_quota(
    state: dict[str, Any], project_id: str, action: str, instances: int, cores: int, ram_mb: int, ports: int
) -> None:
    """CloudQuotaExceeded if the project cannot have this much more."""
    quota = quota_of(state, project_id)
    usage = usage_of(state, project_id)
    used_ports = sum(1 for s in live_servers(state, project_id) if s.get("network_id"))
    for resource, requested, used, limit in (
        ("instances", instances, usage.instances, quota.compute.instances),
        ("cores", cores, usage.cores, quota.compute.cores),
        ("ram", ram_mb, usage.ram_mb, quota.compute.ram_mb),
    ):
        if requested > 0 and limit != UNLIMITED and used + requested > limit:
            # Nova's wording, so logs read the same for both kinds of cloud.
            raise CloudQuotaExceeded(
                f"{action} refused: quota exceeded",
                f"Quota exceeded for {resource}: Requested {requested}, but already used {used} of {limit} {resource}",
                status_code=403,
            )
    limit = quota.network.ports
    if ports > 0 and limit != UNLIMITED and used_ports + ports > limit:
        raise CloudQuotaExceeded(
            f"{action} refused: quota exceeded", "Maximum number of ports exceeded", status_code=403
        )


def _fields(value: ComputeQuota | NetworkQuota | BlockStorageQuota) -> dict[str, int]:
    return dataclasses.asdict(value)


class SimulatedQuotas(SimulatedStore):
    #: False plays a cloud without a block-storage (Cinder) service: no Cinder quota at all.
    offers_block_storage = True

    def get_quota(self, project_id: str) -> QuotaSet:
        with self._transaction() as state:
            require_project(state, project_id)
            return quota_of(state, project_id, block_storage=self.offers_block_storage)

    def set_quota(self, project_id: str, quota: QuotaSet) -> None:
        # Like the OpenStack provider: a Cinder quota for a cloud without Cinder is not set.
        block = quota.block_storage if self.offers_block_storage else None
        values = {
            **{f"compute.{k}": v for k, v in _fields(quota.compute).items()},
            **{f"network.{k}": v for k, v in _fields(quota.network).items()},
            **({f"block_storage.{k}": v for k, v in _fields(block).items()} if block is not None else {}),
        }
        for name, value in values.items():
            if not isinstance(value, int) or value < UNLIMITED:
                raise CloudBadRequest(f"set quota rejected as invalid: {name} must be -1 or more", str(value))
        with self._transaction() as state:
            require_project(state, project_id)
            usage = usage_of(state, project_id)
            # Nova refuses a compute limit below what the project already uses.
            for resource, limit, used in (
                ("cores", quota.compute.cores, usage.cores),
                ("ram", quota.compute.ram_mb, usage.ram_mb),
                ("instances", quota.compute.instances, usage.instances),
            ):
                if limit != UNLIMITED and limit < used:
                    raise CloudBadRequest(
                        "set quota rejected as invalid: a limit is below current usage",
                        f"Quota limit {limit} for {resource} must be greater than or equal to already used "
                        f"and reserved {used}.",
                    )
            stored = state["quotas"].get(project_id) or {}
            state["quotas"][project_id] = {
                "compute": _fields(quota.compute),
                "network": _fields(quota.network),
                # Kept as it was when not given (a cloud without Cinder, or a caller that
                # read no Cinder quota).
                "block_storage": _fields(block) if block is not None else stored.get("block_storage", {}),
            }

    def get_compute_usage(self, project_id: str) -> ComputeUsage:
        with self._transaction() as state:
            require_project(state, project_id)
            return usage_of(state, project_id)
