"""`cloudmgr clouds sync`: make each cloud match the organisation.

For every cloud: resolve the Neutron network of each zone, and ensure every department
that may use the cloud has its domain and project there.  Cloud calls happen outside
any database transaction (they are idempotent); the results are written in one unit
of work per cloud, so one unreachable cloud does not stop the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError
from cloudmgr.cloud.reachability import is_unreachable
from cloudmgr.db import Database, utcnow
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.providers import ProviderRegistry

log = logging.getLogger(__name__)


@dataclass
class CloudSyncResult:
    cloud_key: str
    projects_ensured: int = 0
    zones_resolved: int = 0
    problems: list[str] = field(default_factory=list)
    # The cloud could not be reached at all (its other problems are the cloud's answers).
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Plan:
    cloud_id: int
    cloud_key: str
    os_cloud: str
    region: str | None
    zones: dict[int, str]  # zone row id -> network name
    links: dict[int, tuple[str, str, str]]  # link id -> (domain, project, description)


def sync_clouds(
    db: Database, registry: ProviderRegistry, *, actor: Actor, only: str | None = None
) -> list[CloudSyncResult]:
    with db.unit_of_work() as uow:
        query = select(Cloud).where(Cloud.enabled.is_(True)).options(selectinload(Cloud.zones)).order_by(Cloud.id)
        if only:
            query = query.where(Cloud.key == only)
        plans = []
        for cloud in uow.session.scalars(query):
            links = uow.session.scalars(
                select(DepartmentCloud)
                .where(DepartmentCloud.cloud_id == cloud.id)
                .options(selectinload(DepartmentCloud.department))
            )
            plans.append(
                _Plan(
                    cloud.id,
                    cloud.key,
                    cloud.os_cloud,
                    cloud.region,
                    {z.id: z.network_name for z in cloud.zones},
                    {
                        link.id: (link.domain_name, link.project_name, f"{link.department.name_zh} / {cloud.name_zh}")
                        for link in links
                    },
                )
            )
    return [_sync_one(db, registry, plan, actor) for plan in plans]


def _sync_one(db: Database, registry: ProviderRegistry, plan: _Plan, actor: Actor) -> CloudSyncResult:
    result = CloudSyncResult(plan.cloud_key)
    network_ids: dict[int, str] = {}
    project_ids: dict[int, str] = {}
    try:
        provider = registry.for_cloud(plan.cloud_key, plan.os_cloud, plan.region)
        networks = {n.name: n.id for n in provider.list_networks()}
        for zone_id, network_name in plan.zones.items():
            if network_name in networks:
                network_ids[zone_id] = networks[network_name]
            else:
                result.problems.append(f"network {network_name!r} not found")
        for link_id, (domain, project, description) in plan.links.items():
            project_ids[link_id] = provider.ensure_project(domain, project, description).id
    except CloudError as exc:
        result.problems.append(str(exc))
        result.unreachable = is_unreachable(exc)
        log.warning("sync of cloud %s failed: %s", plan.cloud_key, exc)
    with db.unit_of_work() as uow:
        session = uow.session
        cloud = session.get(Cloud, plan.cloud_id)
        if cloud is None:  # removed while we talked to the cloud
            return result
        for zone in cloud.zones:
            if zone.id in network_ids:
                zone.network_id = network_ids[zone.id]
                result.zones_resolved += 1
        for link_id, project_id in project_ids.items():
            link = session.get(DepartmentCloud, link_id)
            if link is not None:
                link.project_id = project_id
                result.projects_ensured += 1
        if result.ok:
            cloud.synced_at = utcnow()
        audit.record(
            session,
            actor=actor.username,
            action="cloud.sync",
            target_type="cloud",
            target_id=plan.cloud_key,
            detail={
                "projects": result.projects_ensured,
                "zones": result.zones_resolved,
                "problems": result.problems,
            },
        )
    return result
