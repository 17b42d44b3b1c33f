"""Finding 1 against the lab OpenStack: the "cloud provides it" offer appears when the quota
(or one standard step of it) and the free capacity read live from Placement allow it, and
disappears when the cloud is full or the quota cannot be stepped up.

Read only on the cloud: no VM is booted.  The purchases are sized from the lab's own free
capacity at test time, so the test holds whatever other tests run on the lab meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from cloudmgr.purchases import services
from cloudmgr.purchases.models import FindingKind, PurchaseRequest
from cloudmgr.quotas.models import QuotaAssignment, QuotaLedgerRow
from cloudmgr.runtime import Runtime
from tests.conftest import lab_connection
from tests.journey_fixtures import LabJourney, build_lab_journey, clean_lab_department
from tests.purchases.helpers import server_form

pytestmark = pytest.mark.lab


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: this test is about the cloud (the services run on PostgreSQL in test_services.py),
    and building a lab department takes a while."""
    return f"sqlite:///{tmp_path / 'cloudmgr.sqlite3'}"


@pytest.fixture
def lab(lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path) -> Iterator[LabJourney]:
    j = build_lab_journey(lab_runtime, tmp_path, lab_clouds_yaml)
    yield j
    clean_lab_department(j)


def _set_quota(j: LabJourney, *, size: str | None, cores: int, ram_mb: int, instances: int) -> None:
    with j.rt.db.unit_of_work() as uow:
        for resource, limit in (("cores", cores), ("ram_mb", ram_mb), ("instances", instances)):
            uow.session.execute(update(QuotaLedgerRow).where(QuotaLedgerRow.resource == resource).values(limit=limit))
        uow.session.execute(update(QuotaAssignment).values(size=size))


def _findings(j: LabJourney, **form: Any) -> dict[str, dict[str, Any]]:
    with j.rt.db.unit_of_work() as uow:
        purchase = services.create_purchase(
            uow.session,
            j.staff,
            server_form(**form),
            submit=True,
            context=services.context_for(j.rt.settings),
        )
        pid = purchase.id
    j.drain()  # the findings with the lab's live Placement capacity: a work item, after the commit
    with j.rt.db.unit_of_work() as uow:
        stored = uow.session.scalar(select(PurchaseRequest).where(PurchaseRequest.id == pid))
        assert stored is not None
        return {f.kind: f.evidence for f in stored.findings}


def _free_ram_gb(clouds_yaml: str) -> int:
    conn = lab_connection(Path(clouds_yaml))
    free = 0
    for rp in conn.placement.resource_providers():
        inventory = {i.resource_class: i for i in conn.placement.resource_provider_inventories(rp)}
        ram = inventory["MEMORY_MB"]
        total = int((ram.total - ram.reserved) * ram.allocation_ratio)
        usages = conn.placement.get(f"/resource_providers/{rp.id}/usages", microversion="1.9").json()["usages"]
        free += total - int(usages.get("MEMORY_MB", 0))
    return free // 1024


def test_cloud_offer_follows_quota_and_live_capacity(lab: LabJourney) -> None:
    huge = 10_000_000
    _set_quota(lab, size="large", cores=huge, ram_mb=huge * 1024, instances=100_000)

    # 1. Quota and capacity allow: the offer appears, with live capacity as its evidence.
    found = _findings(lab, vcpus=2, ram_gb=4, disk_gb=20, quantity=1, unit_price="30000.00")
    offer = found[FindingKind.CLOUD_PROVIDES]
    assert offer["cloud"] == "education" and offer["zone"] == "extranet"
    assert offer["capacity"]["source"] == "live" and offer["capacity"]["room"] >= offer["count"]
    assert offer["quota"]["how"] == "headroom"
    assert offer["flavor"] in {"m1.small", "m1.medium", "m1.large"} and offer["monthly_cost"] in {"240.00", "260.00"}

    # 2. The cloud is full: more RAM than every lab host has free together -> no offer, "room for" as evidence.
    free_gb = _free_ram_gb(lab.clouds_yaml)
    per_server = free_gb // 4 + 64
    found = _findings(lab, vcpus=8, ram_gb=per_server, disk_gb=40, quantity=4, unit_price="90000.00")
    assert FindingKind.CLOUD_PROVIDES not in found
    reasons = " ".join(c["reason"] for c in found[FindingKind.NO_CLOUD_OFFER]["clouds"])
    assert "room for" in reasons

    # 3. Beyond the quota, but one standard step up (small -> medium) covers it: the offer appears.
    _set_quota(lab, size="small", cores=1, ram_mb=1024, instances=1)
    found = _findings(lab, vcpus=2, ram_gb=4, disk_gb=20, quantity=1, unit_price="20000.00")
    offer = found[FindingKind.CLOUD_PROVIDES]
    assert offer["quota"]["how"] == "step" and offer["quota"]["step_size"] == "medium"

    # 4. The quota cannot be stepped up (already the largest size): the offer disappears.
    _set_quota(lab, size="xlarge", cores=1, ram_mb=1024, instances=1)
    found = _findings(lab, vcpus=2, ram_gb=4, disk_gb=20, quantity=1, unit_price="20000.00")
    assert FindingKind.CLOUD_PROVIDES not in found
    reasons = " ".join(c["reason"] for c in found[FindingKind.NO_CLOUD_OFFER]["clouds"])
    assert "no standard size step" in reasons
