"""Fixtures of the programme tests: legacy systems and server rooms written straight into the
database (the inventory import is B1's and tested there)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.organisation.models import Department
from cloudmgr.runtime import Runtime


@dataclass
class Inventory:
    rt: Runtime

    def room(self, code: str, department: str) -> int:
        with self.rt.db.unit_of_work() as uow:
            found = uow.session.scalar(select(ServerRoom).where(ServerRoom.code == code))
            if found is not None:
                return found.id
            dept = uow.session.scalars(select(Department).where(Department.key == department)).one()
            room = ServerRoom(code=code, name_zh=f"{code} 机房", name_en=f"{code} room", department_id=dept.id)
            uow.session.add(room)
            uow.session.flush()
            return room.id

    def system(
        self,
        hostname: str,
        department: str = "prov-education",
        *,
        room: str | None = None,
        network: str = "extranet",
        classification: str = "non_classified",
        vcpus: int = 2,
        ram_mb: int = 4096,
        cpu_p95_pct: float = 50.0,
        ram_p95_pct: float = 50.0,
        complexity: int = 10,
        state: str = "legacy",
        due_date: date | None = None,
        dependencies: list[str] | None = None,
    ) -> int:
        room_id = self.room(room or f"{department}-room-1", department)
        with self.rt.db.unit_of_work() as uow:
            dept = uow.session.scalars(select(Department).where(Department.key == department)).one()
            system = LegacySystem(
                hostname=hostname,
                department_id=dept.id,
                server_room_id=room_id,
                application_system=f"{hostname} 应用",
                classification=classification,
                network=network,
                os_family="linux",
                os_name="CentOS",
                os_version="7",
                vcpus=vcpus,
                ram_mb=ram_mb,
                disk_gb=50,
                data_gb=100,
                cpu_p95_pct=cpu_p95_pct,
                ram_p95_pct=ram_p95_pct,
                dependencies=dependencies or [],
                owner_name="王工",
                owner_contact="wang@gov.example",
                ansible_host=None,
                state=state,
                complexity_score=complexity,
                complexity_reasons=[],
                due_date=due_date,
            )
            uow.session.add(system)
            uow.session.flush()
            return system.id

    def state(self, system_id: int) -> str:
        with self.rt.db.unit_of_work() as uow:
            system = uow.session.get(LegacySystem, system_id)
            assert system is not None
            return system.state

    def set_state(self, system_id: int, state: str) -> None:
        """Behind the state machine's back: what C's runbooks would have done."""
        with self.rt.db.unit_of_work() as uow:
            system = uow.session.get(LegacySystem, system_id)
            assert system is not None
            system.state = state


@dataclass
class Env:
    rt: Runtime


FLAVORS = (("m1.tiny", 1, 512, 1), ("m1.small", 1, 2048, 20), ("m1.medium", 2, 4096, 40), ("m1.large", 4, 8192, 80))
#: prov-education's quota on the education cloud (quotas/departments.yaml): 24 cores, 48 GB, 8 instances.
EDUCATION_QUOTA = {"cores": 24, "ram_mb": 48 * 1024, "instances": 8, "networks": 2, "floating_ips": 2}


def lean_programme_state(rt: Runtime) -> None:
    """What a wave check reads, written directly (cheap on PostgreSQL too): the education cloud's
    flavors as the catalog sync stores them, and prov-education's quota ledger there.  The
    simulated cloud itself needs no sync: the check reads its hosts."""
    from cloudmgr.catalog.models import CatalogItem
    from cloudmgr.organisation.models import Cloud
    from cloudmgr.quotas.models import QuotaLedgerRow

    with rt.db.unit_of_work() as uow:
        cloud = uow.session.scalars(select(Cloud).where(Cloud.key == "education")).one()
        dept = uow.session.scalars(select(Department).where(Department.key == "prov-education")).one()
        for n, (name, vcpus, ram_mb, disk_gb) in enumerate(FLAVORS, start=1):
            uow.session.add(
                CatalogItem(
                    cloud_id=cloud.id,
                    kind="flavor",
                    external_id=str(n),
                    cloud_name=name,
                    name_zh=name,
                    name_en=name,
                    offered=True,
                    available=True,
                    vcpus=vcpus,
                    ram_mb=ram_mb,
                    disk_gb=disk_gb,
                )
            )
        for resource, limit in EDUCATION_QUOTA.items():
            uow.session.add(
                QuotaLedgerRow(
                    department_id=dept.id, cloud_id=cloud.id, resource=resource, limit=limit, reserved=0, used=0
                )
            )


@pytest.fixture
def journey(seeded: Runtime) -> Env:
    lean_programme_state(seeded)
    return Env(seeded)


@pytest.fixture
def inventory(journey: Env) -> Inventory:
    return Inventory(journey.rt)


MakeSystems = Callable[..., list[int]]


@pytest.fixture
def make_systems(inventory: Inventory) -> Callable[..., list[int]]:
    def make(prefix: str, count: int, **kwargs: Any) -> list[int]:
        return [inventory.system(f"{prefix}-{i:02d}", **kwargs) for i in range(1, count + 1)]

    return make


TODAY = date(2026, 11, 28)


def build_scenario(inv: Inventory) -> dict[str, int]:
    """A small programme on 2026-11-28 (deadline 2018-12-31, at risk within 90 days):

    prov-education: edu-done (on_cloud), edu-old (overdue), edu-soon (due 2027-01-15: at risk,
    not in a wave), edu-secret (classified: out of scope), edu-intra (intranet: out of scope);
    ts-hrss (Tangshan): ts-later (due 2027-12-31: fine), ts-gone (decommissioned);
    sjz-zhengding-gov (county): zd-done (on_cloud) — its room may close.
    """
    ids = {
        "edu-done": inv.system("edu-done", state="on_cloud", room="edu-room-1"),
        "edu-old": inv.system("edu-old", room="edu-room-1"),
        "edu-soon": inv.system("edu-soon", due_date=date(2027, 1, 15), room="edu-room-2"),
        "edu-secret": inv.system("edu-secret", classification="classified", state="intranet", room="edu-room-2"),
        "edu-intra": inv.system("edu-intra", network="intranet", room="edu-room-2"),
        "ts-later": inv.system("ts-later", "ts-hrss", due_date=date(2027, 12, 31), network="internet"),
        "ts-gone": inv.system("ts-gone", "ts-hrss", state="decommissioned"),
        "zd-done": inv.system("zd-done", "sjz-zhengding-gov", state="on_cloud", room="zd-room"),
    }
    return ids
