"""Quota helpers shared by the portal, operations and the API."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from cloudmgr.quotas.errors import QuotaFilesInvalid
from cloudmgr.quotas.resources import Resource
from cloudmgr.quotas.services import QuotaDefinitions, read_quota_files
from web.common.labels import MB_PER_GB
from web.core.uow import runtime

log = logging.getLogger(__name__)

# Form field (RAM in GB) -> ledger resource (RAM in MB) and factor.
FORM_RESOURCES: dict[str, tuple[Resource, int]] = {
    "cores": (Resource.CORES, 1),
    "ram_gb": (Resource.RAM_MB, MB_PER_GB),
    "instances": (Resource.INSTANCES, 1),
    "networks": (Resource.NETWORKS, 1),
    "floating_ips": (Resource.FLOATING_IPS, 1),
}


def definitions() -> QuotaDefinitions:
    """The quota files (sizes and assignments); empty when they do not parse (the
    operators see the problem in ``cloudmgr quotas check``; pages keep working)."""
    try:
        return read_quota_files(runtime().settings.quotas_dir)
    except QuotaFilesInvalid:
        log.warning("the quota files do not parse; sizes are not offered", exc_info=True)
        return QuotaDefinitions()


def ledger_limits(form_limits: Mapping[str, int]) -> dict[Resource, int]:
    """Limits as typed in a form (RAM in GB) -> the ledger's (RAM in MB)."""
    limits: dict[Resource, int] = {}
    for name, value in form_limits.items():
        resource, factor = FORM_RESOURCES[name]
        limits[resource] = int(value) * factor
    return limits
