"""Capacity snapshots, CSV import, and the forecast against the plan's targets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from cloudmgr.capacity.config import Target, read_capacity_file
from cloudmgr.capacity.errors import CapacityCsvInvalid, CapacityFileInvalid
from cloudmgr.capacity.models import CapacitySnapshot
from cloudmgr.capacity.services import (
    forecast,
    import_csv,
    latest_snapshots,
    may_change_capacity,
    server_trend,
    take_snapshots,
    totals_by_base,
)
from cloudmgr.errors import PermissionDenied
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.organisation.sync import sync_clouds
from cloudmgr.runtime import Runtime

TESTER = Actor(username="test", role=Role.OPERATOR)


def test_the_plans_bases_and_targets() -> None:
    from cloudmgr.config import REPO_ROOT

    config = read_capacity_file(REPO_ROOT / "etc" / "capacity.yaml")
    assert {b.key for b in config.bases} == {"zhangbei", "langfang", "chengde", "qinhuangdao", "shijiazhuang"}
    assert [(t.date, t.servers) for t in config.targets] == [
        (date(2018, 12, 31), 1_500_000),
        (date(2020, 12, 31), 2_000_000),
    ]


def test_capacity_file_problems(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "capacity.yaml"
    path.write_text(
        "bases:\n"
        "  - {key: a, name_zh: A, name_en: A, clouds: [x, y]}\n"
        "  - {key: b, name_zh: B, name_en: B, clouds: [x]}\n"
        "targets:\n  - {date: soon, servers: -1}\n"
    )
    with pytest.raises(CapacityFileInvalid) as info:
        read_capacity_file(path, {"x"})
    assert "unknown cloud 'y'" in info.value.message
    assert "cloud 'x' is in two bases" in info.value.message
    assert "targets[0] needs a date" in info.value.message


def test_snapshot_of_the_simulated_clouds_counts_each_host_once(seeded: Runtime) -> None:
    assert all(r.ok for r in sync_clouds(seeded.db, seeded.providers, actor=Actor.system("test")))
    config = read_capacity_file(seeded.settings.capacity_file)
    result = take_snapshots(seeded.db, seeded.providers, config)
    assert result.snapshots >= 1 and result.hosts >= 2
    with seeded.db.unit_of_work() as uow:
        totals = totals_by_base(uow.session, config)
        assert totals["shijiazhuang"].physical_servers == result.hosts
        assert totals["shijiazhuang"].vcpus_total > 0
        assert sum(len(s.hosts) for s in latest_snapshots(uow.session)) == result.hosts


def test_csv_import_is_all_or_nothing_with_line_numbers(seeded: Runtime) -> None:
    config = read_capacity_file(seeded.settings.capacity_file)
    good = (
        "base,date,physical_servers,vcpus,ram_gb,disk_gb,vcpus_used\n"
        "zhangbei,2017-06-30,120000,4800000,19200000,96000000,100\n"
    )
    bad = (
        good
        + "atlantis,2017-06-30,1,1,1,1,0\n"
        + "langfang,30/06/2017,1,1,1,1,0\n"
        + "chengde,2017-06-30,many,1,1,1,0\n"
        + "qinhuangdao,2017-06-30,1,4,1,1,9\n"
    )
    with pytest.raises(CapacityCsvInvalid) as info, seeded.db.unit_of_work() as uow:
        import_csv(uow.session, config, bad, source_name="bases.csv", actor=TESTER)
    message = info.value.message
    assert "bases.csv:3: unknown base 'atlantis'" in message
    assert "bases.csv:4: date must be YYYY-MM-DD" in message
    assert "bases.csv:5: physical_servers must be a whole number, not 'many'" in message
    assert "bases.csv:6: vcpus_used is more than vcpus" in message
    with seeded.db.unit_of_work() as uow:
        assert latest_snapshots(uow.session) == []  # nothing half-written
        assert import_csv(uow.session, config, good, source_name="bases.csv", actor=TESTER) == 1
    with pytest.raises(CapacityCsvInvalid, match="missing columns"), seeded.db.unit_of_work() as uow:
        import_csv(uow.session, config, "base,date\n", source_name="x.csv", actor=TESTER)


def _series(rt: Runtime, counts: list[int], start: date) -> None:
    with rt.db.unit_of_work() as uow:
        for i, servers in enumerate(counts):
            day = start + timedelta(days=30 * i)
            uow.session.add(
                CapacitySnapshot(
                    taken_at=datetime(day.year, day.month, day.day, tzinfo=UTC),
                    base="zhangbei",
                    source="csv",
                    endpoint="plan",
                    physical_servers=servers,
                )
            )


def test_forecast_with_its_uncertainty(runtime: Runtime) -> None:
    _series(runtime, [1_000_000, 1_050_000, 1_095_000, 1_160_000, 1_200_000], date(2017, 1, 1))
    with runtime.db.unit_of_work() as uow:
        trend = server_trend(uow.session)
    assert trend[-1] == (date(2017, 1, 1) + timedelta(days=120), 1_200_000)
    target = Target(date(2018, 12, 31), 1_500_000, "", "")
    f = forecast(trend, target)
    assert not f.reached and f.expected is not None and f.earliest is not None and f.latest is not None
    assert f.earliest <= f.expected <= f.latest
    assert f.servers_per_day == pytest.approx(1700)
    assert f.on_time  # about 180 days after the last point, well before the end of 2018
    assert forecast(trend, Target(date(2018, 12, 31), 1_000_000, "", "")).reached
    assert forecast(trend[:1], target).expected is None  # one point is no trend
    flat = [(date(2017, 1, 1), 10), (date(2017, 2, 1), 10)]
    assert forecast(flat, target).expected is None and forecast(flat, target).on_time is False


def test_aggregates_in_the_capacity_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "capacity.yaml"
    path.write_text(
        "bases:\n"
        "  - {key: a, name_zh: A, name_en: A, clouds: [c1], aggregates: [{cloud: c1, name: rack-b}]}\n"
        "  - {key: b, name_zh: B, name_en: B, aggregates: [{cloud: c1, name: rack-b}, {cloud: nowhere, name: x}, {}]}\n"
    )
    with pytest.raises(CapacityFileInvalid) as info:
        read_capacity_file(path, {"c1"})
    assert "aggregate 'rack-b' of c1 is in two bases" in info.value.message
    assert "unknown cloud 'nowhere'" in info.value.message
    assert "aggregates[2] needs cloud and name" in info.value.message
    path.write_text("bases:\n  - {key: a, name_zh: A, name_en: A, clouds: [c1], aggregates: [{cloud: c1, name: r}]}\n")
    assert read_capacity_file(path, {"c1"}).aggregate_bases(["c1"]) == {"r": "a"}


def test_attack_only_an_operator_imports_capacity(seeded: Runtime) -> None:
    """The service decides who changes the capacity figures (the page asks it for its forms):
    finance and department users are refused and nothing is stored."""
    config = read_capacity_file(seeded.settings.capacity_file)
    good = (
        "base,date,physical_servers,vcpus,ram_gb,disk_gb,vcpus_used\n"
        "zhangbei,2017-06-30,120000,4800000,19200000,96000000,100\n"
    )
    for actor in (Actor("finance", Role.FINANCE), Actor("lina", Role.DEPT_HEAD, department_id=1)):
        assert not may_change_capacity(actor)
        with pytest.raises(PermissionDenied), seeded.db.unit_of_work() as uow:
            import_csv(uow.session, config, good, source_name="bases.csv", actor=actor)
    assert may_change_capacity(TESTER)
    with seeded.db.unit_of_work() as uow:
        assert latest_snapshots(uow.session) == []
