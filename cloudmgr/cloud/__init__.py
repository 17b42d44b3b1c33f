"""The cloud adapter: one interface (CloudProvider) to every cloud cloudmgr manages.

Code outside this package imports from here only: the interface, its value types, its
errors and :func:`make_provider`.  openstacksdk is imported lazily, when an OpenStack
provider is actually built, so the simulated demo starts without it.
"""

from __future__ import annotations

from typing import Any, Literal

from cloudmgr.cloud.errors import (
    CloudBadRequest,
    CloudConflict,
    CloudError,
    CloudForbidden,
    CloudNotFound,
    CloudNoValidHost,
    CloudQuotaExceeded,
    CloudTimeout,
    CloudUnavailable,
)
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.cloud.retry import RetryPolicy
from cloudmgr.cloud.types import (
    IDEMPOTENCY_METADATA_KEY,
    IMAGE_TAG_PROPERTY,
    UNLIMITED,
    Allocation,
    BlockStorageQuota,
    ComputeQuota,
    ComputeUsage,
    Flavor,
    HostAggregate,
    Hypervisor,
    Image,
    ImageDownload,
    Inventory,
    Network,
    NetworkQuota,
    PlacementSnapshot,
    ProjectRef,
    QuotaSet,
    ResourceProvider,
    Server,
    ServerPage,
    ServerSpec,
    Volume,
    VolumeAttachment,
    VolumeBackup,
    VolumeSnapshot,
    VolumeType,
)

ProviderKind = Literal["openstack", "simulated"]


def make_provider(kind: ProviderKind, **kwargs: Any) -> CloudProvider:
    """Build a provider: ``"openstack"`` takes OpenStackProvider's arguments (``cloud``,
    ``region``, ``config_files``, ...), ``"simulated"`` SimulatedProvider's
    (``state_path``, ``hosts``, ...)."""
    if kind == "openstack":
        from cloudmgr.cloud.openstack import OpenStackProvider

        return OpenStackProvider(**kwargs)
    if kind == "simulated":
        from cloudmgr.cloud.simulated import SimulatedProvider

        return SimulatedProvider(**kwargs)
    raise ValueError(f"unknown cloud provider kind {kind!r}: expected 'openstack' or 'simulated'")


__all__ = [
    "IDEMPOTENCY_METADATA_KEY",
    "IMAGE_TAG_PROPERTY",
    "UNLIMITED",
    "Allocation",
    "BlockStorageQuota",
    "CloudBadRequest",
    "CloudConflict",
    "CloudError",
    "CloudForbidden",
    "CloudNoValidHost",
    "CloudNotFound",
    "CloudProvider",
    "CloudQuotaExceeded",
    "CloudTimeout",
    "CloudUnavailable",
    "ComputeQuota",
    "ComputeUsage",
    "Flavor",
    "HostAggregate",
    "Hypervisor",
    "Image",
    "ImageDownload",
    "Inventory",
    "Network",
    "NetworkQuota",
    "PlacementSnapshot",
    "ProjectRef",
    "ProviderKind",
    "QuotaSet",
    "ResourceProvider",
    "RetryPolicy",
    "Server",
    "ServerPage",
    "ServerSpec",
    "Volume",
    "VolumeAttachment",
    "VolumeBackup",
    "VolumeSnapshot",
    "VolumeType",
    "make_provider",
]
