"""Quota helpers shared by the portal, operations and the API."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from cloudmgr.quotas.errors import QuotaFilesInvalid
from cloudmgr.quotas.files import QuotaDefinitions, read_quota_files
from cloudmgr.quotas.models import ChangeRequestState, QuotaChangeRequest
from cloudmgr.quotas.resources import Resource
from cloudmgr.quotas.services import push_limits_to_cloud
from web.selfservice.display import MB_PER_GB
from web.uow import request_uow, runtime

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


def push_when_committed(change: QuotaChangeRequest, *, actor: str) -> None:
    """An approved change's limits go to the cloud once the decision is committed."""
    if change.state != ChangeRequestState.APPROVED.value:
        return
    rt = runtime()
    limits = {Resource(k): int(v) for k, v in change.requested_limits.items()}
    change_id, department_id, cloud_id = change.id, change.department_id, change.cloud_id

    def push() -> None:
        error = push_limits_to_cloud(rt.db, rt.providers, department_id, cloud_id, limits, actor=actor)
        if error:
            log.warning("quota change %s approved but not pushed to the cloud: %s", change_id, error)

    request_uow().after_commit(push)
