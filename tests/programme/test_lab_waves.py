"""The wave check against the lab OpenStack's real capacity (Placement and Nova's hypervisors)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from cloudmgr.catalog.models import CatalogItem
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, Role
from cloudmgr.programme import services as waves
from cloudmgr.quotas.models import QuotaLedgerRow
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE, lab_connection
from tests.programme.conftest import Inventory

pytestmark = pytest.mark.lab

TESTER = Actor(username="test", role=Role.OPERATOR)


@ONE_DATABASE
def test_a_wave_is_checked_against_the_labs_free_capacity(lab_runtime: Runtime, lab_clouds_yaml: Path) -> None:
    rt = lab_runtime
    clouds, departments = org.read_organisation(rt.settings.clouds_file, rt.settings.departments_file)
    with rt.db.unit_of_work() as uow:
        org.import_organisation(uow.session, clouds, departments, actor=Actor.system("test"))
        cloud = uow.session.scalars(select(Cloud).where(Cloud.key == "education")).one()
        provider = rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
        cloud_id = cloud.id
    flavors = provider.list_flavors()  # the lab's real flavors, as the catalog sync would store them
    with rt.db.unit_of_work() as uow:
        dept = uow.session.scalars(select(Department).where(Department.key == "prov-education")).one()
        for f in flavors:
            uow.session.add(
                CatalogItem(
                    cloud_id=cloud_id, kind="flavor", external_id=f.id, cloud_name=f.name, name_zh=f.name,
                    name_en=f.name, offered=True, available=True, vcpus=f.vcpus, ram_mb=f.ram_mb, disk_gb=f.disk_gb,
                )
            )  # fmt: skip
        # larger than any lab host (16 vCPUs): a system right-sized onto it can never be placed
        uow.session.add(
            CatalogItem(
                cloud_id=cloud_id, kind="flavor", external_id="b2-huge", cloud_name="b2.huge", name_zh="b2.huge",
                name_en="b2.huge", offered=True, available=True, vcpus=64, ram_mb=65536, disk_gb=20,
            )
        )  # fmt: skip
        for resource, limit in {"cores": 1000, "ram_mb": 10**7, "instances": 100}.items():
            uow.session.add(QuotaLedgerRow(department_id=dept.id, cloud_id=cloud_id, resource=resource, limit=limit))
    inventory = Inventory(rt)
    small = [
        inventory.system(f"lab-b2-small-{i}", vcpus=1, ram_mb=512, cpu_p95_pct=10, ram_p95_pct=10) for i in range(2)
    ]
    with rt.db.unit_of_work() as uow:
        wave_id = waves.create_wave(
            uow.session,
            name="lab",
            cloud_key="education",
            zone="extranet",
            window_start=date(2026, 12, 5),
            window_end=date(2026, 12, 6),
            actor=TESTER,
        ).id
        waves.add_systems(uow.session, wave_id, small, actor=TESTER)

    result = waves.check_wave(rt.db, rt.providers, wave_id, actor=TESTER)
    assert result["fits"], result
    hypervisors = {
        h.name
        for h in lab_connection(lab_clouds_yaml).compute.hypervisors(details=True)
        if h.status == "enabled" and h.state == "up"
    }
    capacity = result["capacity"]
    assert capacity["hosts"] == len(hypervisors) >= 1  # a host another test drains is left out
    assert set(capacity["placements"].values()) <= hypervisors
    assert capacity["free"]["vcpus"] > 0
    assert capacity["hosts_needed"] == 1

    huge = inventory.system("lab-b2-huge", vcpus=64, ram_mb=65536, cpu_p95_pct=100, ram_p95_pct=100)
    with rt.db.unit_of_work() as uow:
        waves.add_systems(uow.session, wave_id, [huge], actor=TESTER)
    result = waves.check_wave(rt.db, rt.providers, wave_id, actor=TESTER)
    assert not result["fits"]
    (unplaced,) = result["unplaced"]
    assert unplaced["hostname"] == "lab-b2-huge" and "no host has that much free" in unplaced["reason"]
    assert {s["hostname"]: s["flavor"] for s in result["systems"]}["lab-b2-huge"] == "b2.huge"
