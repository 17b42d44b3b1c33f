"""Nova's and Neutron's project quotas, and Nova's count of what a project uses."""

from __future__ import annotations

import dataclasses
import logging

from cloudmgr.cloud.openstack.connection import OpenStackConnection
from cloudmgr.cloud.openstack.convert import as_int
from cloudmgr.cloud.types import ComputeQuota, ComputeUsage, NetworkQuota, QuotaSet

log = logging.getLogger(__name__)

_NETWORK_QUOTA_FIELDS = tuple(f.name for f in dataclasses.fields(NetworkQuota))


class OpenStackQuotas(OpenStackConnection):
    def get_quota(self, project_id: str) -> QuotaSet:
        self._require_project(project_id)
        compute = self._call("get compute quota", lambda: self._admin.compute.get_quota_set(project_id))
        network = self._call("get network quota", lambda: self._admin.network.get_quota(project_id))
        # A resource Neutron does not offer (floating IPs without the router extension)
        # has no quota at all: none of it can be had, so it reads as a limit of 0.
        return QuotaSet(
            compute=ComputeQuota(
                cores=as_int(compute.cores), ram_mb=as_int(compute.ram), instances=as_int(compute.instances)
            ),
            network=NetworkQuota(**{field: as_int(getattr(network, field)) for field in _NETWORK_QUOTA_FIELDS}),
        )

    def set_quota(self, project_id: str, quota: QuotaSet) -> None:
        self._require_project(project_id)
        compute = quota.compute
        self._call(
            "set compute quota",
            lambda: self._admin.compute.update_quota_set(
                project_id, cores=compute.cores, ram=compute.ram_mb, instances=compute.instances
            ),
        )

        def set_network_quota() -> None:
            # Neutron rejects the whole update if it names a resource it does not offer,
            # so send only the ones it reports.
            offered = self._admin.network.get_quota(project_id)
            limits = {}
            for field in _NETWORK_QUOTA_FIELDS:
                if getattr(offered, field) is not None:
                    limits[field] = getattr(quota.network, field)
                elif getattr(quota.network, field):
                    log.info("%s: Neutron offers no %s; not setting that quota", self.name, field)
            self._admin.network.update_quota(project_id, **limits)

        self._call("set network quota", set_network_quota)

    def get_compute_usage(self, project_id: str) -> ComputeUsage:
        self._require_project(project_id)
        quota_set = self._call("get compute usage", lambda: self._admin.compute.get_quota_set(project_id, usage=True))
        usage = quota_set.usage or {}
        return ComputeUsage(
            cores=as_int(usage.get("cores")), ram_mb=as_int(usage.get("ram")), instances=as_int(usage.get("instances"))
        )
