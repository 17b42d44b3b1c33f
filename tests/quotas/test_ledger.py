"""The ledger never overcommits, even under concurrent reservations, and releases on every path."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from cloudmgr.organisation.models import Cloud, Department
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.models import QuotaLedgerRow, QuotaReservation
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import Runtime

VM = {Resource.CORES: 2, Resource.RAM_MB: 4096, Resource.INSTANCES: 1}


def _ids(rt: Runtime) -> tuple[int, int]:
    with rt.db.unit_of_work() as uow:
        dept = uow.session.scalar(select(Department).where(Department.key == "prov-education"))
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == "education"))
        assert dept and cloud
        rows = ledger.ensure_rows(uow.session, dept.id, cloud.id)
        rows[Resource.CORES].limit = 10
        rows[Resource.RAM_MB].limit = 20480
        rows[Resource.INSTANCES].limit = 5
        return dept.id, cloud.id


def _row(rt: Runtime, dept: int, cloud: int, resource: Resource) -> QuotaLedgerRow:
    with rt.db.unit_of_work() as uow:
        row = uow.session.scalar(
            select(QuotaLedgerRow).where(
                QuotaLedgerRow.department_id == dept,
                QuotaLedgerRow.cloud_id == cloud,
                QuotaLedgerRow.resource == resource.value,
            )
        )
        assert row is not None
        return row


def test_reserve_consume_release(seeded: Runtime) -> None:
    dept, cloud = _ids(seeded)
    with seeded.db.unit_of_work() as uow:
        first = ledger.reserve(uow.session, department_id=dept, cloud_id=cloud, amounts=VM, owner="vm:1").id
        second = ledger.reserve(uow.session, department_id=dept, cloud_id=cloud, amounts=VM, owner="vm:2").id
    assert _row(seeded, dept, cloud, Resource.CORES).reserved == 4
    with seeded.db.unit_of_work() as uow:
        assert ledger.consume(uow.session, first)
        assert ledger.release(uow.session, second, reason="failed")
        # Ending twice is harmless: a retried job cannot count twice.
        assert not ledger.release(uow.session, second, reason="again")
        assert not ledger.consume(uow.session, first)
    cores = _row(seeded, dept, cloud, Resource.CORES)
    assert (cores.used, cores.reserved) == (2, 0)
    with seeded.db.unit_of_work() as uow:
        states = {r.owner: r.state for r in uow.session.scalars(select(QuotaReservation))}
    assert states == {"vm:1": "consumed", "vm:2": "released"}


def test_refusal_names_resource_limit_and_free_and_holds_nothing(seeded: Runtime) -> None:
    dept, cloud = _ids(seeded)
    with seeded.db.unit_of_work() as uow:
        ledger.reserve(uow.session, department_id=dept, cloud_id=cloud, amounts=VM, owner="vm:1")
    big = {Resource.CORES: 2, Resource.RAM_MB: 20480, Resource.INSTANCES: 1}
    with pytest.raises(QuotaExceeded) as info, seeded.db.unit_of_work() as uow:
        ledger.reserve(uow.session, department_id=dept, cloud_id=cloud, amounts=big, owner="vm:2")
    assert info.value.resource == "ram_mb" and info.value.limit == 20480 and info.value.free == 16384
    assert "ram_mb limit 20480, 16384 free, 20480 requested" in str(info.value)
    # The cores reserved before RAM was refused were rolled back with the transaction.
    assert _row(seeded, dept, cloud, Resource.CORES).reserved == 2


def test_twenty_concurrent_reservations_for_five_slots(seeded: Runtime) -> None:
    dept, cloud = _ids(seeded)
    barrier = threading.Barrier(20)

    def attempt(i: int) -> bool:
        barrier.wait()
        try:
            with seeded.db.unit_of_work() as uow:
                ledger.reserve(uow.session, department_id=dept, cloud_id=cloud, amounts=VM, owner=f"vm:{i}")
            return True
        except QuotaExceeded:
            return False

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(attempt, range(20)))
    assert results.count(True) == 5
    row = _row(seeded, dept, cloud, Resource.INSTANCES)
    assert (row.reserved, row.limit) == (5, 5)
    with seeded.db.unit_of_work() as uow:
        assert len(uow.session.scalars(select(QuotaReservation)).all()) == 5


def test_twenty_concurrent_volume_reservations_never_overcommit_the_last_100_gb(seeded: Runtime) -> None:
    dept, cloud = _ids(seeded)
    with seeded.db.unit_of_work() as uow:
        rows = ledger.ensure_rows(uow.session, dept, cloud)
        rows[Resource.GIGABYTES].limit = 1000
        rows[Resource.GIGABYTES].used = 900  # 100 GB left
        rows[Resource.VOLUMES].limit = 50
    sizes = [5 * (i + 1) for i in range(20)]  # 5, 10, ... 100 GB: any one fits, all together 1050
    barrier = threading.Barrier(20)

    def attempt(gb: int) -> bool:
        barrier.wait()
        try:
            with seeded.db.unit_of_work() as uow:
                ledger.reserve(
                    uow.session,
                    department_id=dept,
                    cloud_id=cloud,
                    amounts={Resource.VOLUMES: 1, Resource.GIGABYTES: gb},
                    owner=f"volume:{gb}",
                )
            return True
        except QuotaExceeded as exc:
            assert exc.resource == "volume_gb"
            return False

    with ThreadPoolExecutor(20) as pool:
        results = dict(zip(sizes, pool.map(attempt, sizes), strict=True))
    granted = [gb for gb, ok in results.items() if ok]
    gigabytes = _row(seeded, dept, cloud, Resource.GIGABYTES)
    assert granted and sum(granted) <= 100
    assert (gigabytes.reserved, gigabytes.used) == (sum(granted), 900)
    # Free space only shrank, so every refusal asked for more than is free now: nothing was
    # refused that would have fitted, and the volumes of refused requests were rolled back.
    free = 100 - sum(granted)
    assert all(gb > free for gb, ok in results.items() if not ok)
    assert _row(seeded, dept, cloud, Resource.VOLUMES).reserved == len(granted)
    with seeded.db.unit_of_work() as uow:
        held = uow.session.scalars(select(QuotaReservation)).all()
    assert sorted(r.amounts["volume_gb"] for r in held) == sorted(granted)


def test_negative_amounts_are_refused(seeded: Runtime) -> None:
    dept, cloud = _ids(seeded)
    with pytest.raises(ValueError), seeded.db.unit_of_work() as uow:
        ledger.reserve(uow.session, department_id=dept, cloud_id=cloud, amounts={Resource.CORES: -1}, owner="x")
