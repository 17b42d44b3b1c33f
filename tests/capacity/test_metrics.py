"""The capacity collector reads the database and the capacity file whoever renders /metrics
passes it, never the process-wide runtime."""

from __future__ import annotations

from datetime import UTC, datetime

from cloudmgr.capacity.metrics import CapacityCollector
from cloudmgr.capacity.models import CapacitySnapshot
from cloudmgr.runtime import Runtime


def _values(collector: CapacityCollector) -> dict[str, float]:
    return {sample.name: sample.value for family in collector.collect() for sample in family.samples}


def test_the_collector_reads_the_database_it_was_given(runtime: Runtime) -> None:
    with runtime.db.unit_of_work() as uow:
        uow.session.add(
            CapacitySnapshot(
                taken_at=datetime(2017, 6, 30, tzinfo=UTC),
                base="zhangbei",
                source="csv",
                endpoint="plan",
                physical_servers=1234,
            )
        )
    collector = CapacityCollector()
    assert "cloudmgr_capacity_servers_total" not in _values(collector)  # given nothing, it reads nothing
    collector.db, collector.capacity_file = runtime.db, runtime.settings.capacity_file
    values = _values(collector)
    assert values["cloudmgr_capacity_servers_total"] == 1234
    assert values["cloudmgr_capacity_physical_servers"] == 1234
    assert "cloudmgr_capacity_target_servers" in values
