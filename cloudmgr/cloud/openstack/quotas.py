"""Nova's, Neutron's and Cinder's project quotas, and Nova's count of what a project uses."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, cast

import openstack.exceptions

from cloudmgr.cloud.openstack.connection import OpenStackConnection
from cloudmgr.cloud.openstack.convert import as_int
from cloudmgr.cloud.types import BlockStorageQuota, ComputeQuota, ComputeUsage, NetworkQuota, QuotaSet

if TYPE_CHECKING:
    from openstack.block_storage.v3._proxy import Proxy as BlockStorageProxy

log = logging.getLogger(__name__)

_NETWORK_QUOTA_FIELDS = tuple(f.name for f in dataclasses.fields(NetworkQuota))
_BLOCK_STORAGE_QUOTA_FIELDS = tuple(f.name for f in dataclasses.fields(BlockStorageQuota))


class OpenStackQuotas(OpenStackConnection):
    def _block_storage(self) -> BlockStorageProxy | None:
        """The Cinder proxy, or None when the cloud has no block-storage service.

        openstacksdk builds each service's proxy from the service catalog; for a service
        the catalog lacks (or clouds.yaml disables) it hands out a placeholder that raises
        ServiceDisabledException on first use, which is the SDK's own "not here"."""
        proxy = self._admin.block_storage
        try:
            proxy.get_quota_set  # noqa: B018 - touching the placeholder is the test
        except openstack.exceptions.ServiceDisabledException:
            return None
        return cast("BlockStorageProxy", proxy)

    def get_quota(self, project_id: str) -> QuotaSet:
        self._require_project(project_id)
        compute = self._call("get compute quota", lambda: self._admin.compute.get_quota_set(project_id))
        network = self._call("get network quota", lambda: self._admin.network.get_quota(project_id))
        block_storage = None
        cinder = self._call("find block storage", self._block_storage)
        if cinder is not None:
            volume = self._call("get block storage quota", lambda: cinder.get_quota_set(project_id))
            block_storage = BlockStorageQuota(
                **{field: as_int(getattr(volume, field)) for field in _BLOCK_STORAGE_QUOTA_FIELDS}
            )
        # A resource Neutron does not offer (floating IPs without the router extension)
        # has no quota at all: none of it can be had, so it reads as a limit of 0.
        return QuotaSet(
            compute=ComputeQuota(
                cores=as_int(compute.cores), ram_mb=as_int(compute.ram), instances=as_int(compute.instances)
            ),
            network=NetworkQuota(**{field: as_int(getattr(network, field)) for field in _NETWORK_QUOTA_FIELDS}),
            block_storage=block_storage,
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

        block = quota.block_storage
        if block is None:
            return
        cinder = self._call("find block storage", self._block_storage)
        if cinder is None:
            log.warning("%s has no block storage service; its Cinder quota is not set", self.name)
            return
        limits = dataclasses.asdict(block)
        self._call("set block storage quota", lambda: cinder.update_quota_set(project_id, **limits))

    def get_compute_usage(self, project_id: str) -> ComputeUsage:
        self._require_project(project_id)
        quota_set = self._call("get compute usage", lambda: self._admin.compute.get_quota_set(project_id, usage=True))
        usage = quota_set.usage or {}
        return ComputeUsage(
            cores=as_int(usage.get("cores")), ram_mb=as_int(usage.get("ram")), instances=as_int(usage.get("instances"))
        )
