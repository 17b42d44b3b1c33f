"""A synced demo organisation with applied quotas and a catalog, on the simulated cloud."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from cloudmgr.catalog.models import CatalogItem
from cloudmgr.catalog.services import read_rates, sync_catalog
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, User
from cloudmgr.organisation.sync import sync_clouds
from cloudmgr.quotas import services as quotas
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.servicerequests.services import RequestForm
from cloudmgr.workqueue.services import Worker


@dataclass
class Journey:
    rt: Runtime
    staff: Actor
    head: Actor
    operator: Actor
    finance: Actor
    other_staff: Actor

    def form(self, count: int = 3, *, cloud: str = "education", flavor: str = "m1.small", prefix: str = "lic") -> RequestForm:
        with self.rt.db.unit_of_work() as uow:
            cloud_row = uow.session.scalar(select(Cloud).where(Cloud.key == cloud))
            assert cloud_row is not None
            items = {
                (i.kind, i.cloud_name): i.id
                for i in uow.session.scalars(select(CatalogItem).where(CatalogItem.cloud_id == cloud_row.id))
            }
        return RequestForm(
            cloud_key=cloud,
            zone="extranet",
            flavor_item_id=items[("flavor", flavor)],
            image_item_id=next(v for (k, _n), v in items.items() if k == "image"),
            count=count,
            name_prefix=prefix,
            justification="licensing system needs servers by Friday",
            expires_on=date.today() + timedelta(days=180),
            application_system="行政许可系统",
        )

    def drain(self) -> int:
        return Worker(self.rt.db, work_handlers()).drain(max_items=200)


@pytest.fixture
def journey(seeded: Runtime) -> Journey:
    assert all(r.ok for r in sync_clouds(seeded.db, seeded.providers, actor="test"))
    sync_catalog(seeded.db, seeded.providers, read_rates(seeded.settings.rates_file), actor="test")
    assert quotas.apply(seeded.db, seeded.providers, seeded.settings.quotas_dir, actor="test").ok
    with seeded.db.unit_of_work() as uow:
        users = {u.username: Actor.of(u) for u in uow.session.scalars(select(User))}
    return Journey(seeded, users["zhangwei"], users["lina"], users["operator"], users["finance"], users["wangfang"])
