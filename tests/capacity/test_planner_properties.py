"""Property-based: on random inventories every rule of the plan holds."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudmgr.capacity.planner import (
    Classification,
    HostSpec,
    ServerRecord,
    Zone,
    pack_vectors,
    plan_consolidation,
    plan_inventory,
    pool_bound,
    read_servers_csv,
)
from cloudmgr.capacity.planner.bounds import l2_bound
from cloudmgr.capacity.planner.model import as_record
from cloudmgr.capacity.planner.synthetic import write_synthetic_csv

from .planner_helpers import brute_force_bins, check_plan

DEPTS = [None, "财政厅", "教育厅", "公安厅", "transport"]


@st.composite
def servers(draw: st.DrawFn) -> list[ServerRecord]:
    n = draw(st.integers(min_value=0, max_value=60))
    out = []
    for i in range(n):
        vcpus = draw(st.integers(1, 40))
        ram = draw(st.sampled_from([0.5, 1, 2, 4, 8, 16, 24, 48, 96, 200]))
        disk = draw(st.sampled_from([0, 10, 40, 100, 250, 500, 1200, 3000]))
        p95 = draw(st.one_of(st.none(), st.floats(0, 1)))
        rp95 = draw(st.one_of(st.none(), st.floats(0, 1)))
        out.append(
            ServerRecord(
                name=f"s{i}",
                vcpus=vcpus,
                ram_gb=ram,
                disk_gb=disk,
                cpu_p95=p95,
                ram_p95=rp95,
                anti_affinity=draw(st.sampled_from([None, None, "a", "b", "c"])),
                department=draw(st.sampled_from(DEPTS)),
                zone=draw(st.sampled_from([None, Zone.INTERNET, Zone.EXTRANET])),
                classification=draw(st.sampled_from([Classification.NON_CLASSIFIED] * 5 + [Classification.CLASSIFIED])),
            )
        )
    return out


hosts = st.builds(
    HostSpec,
    vcpus=st.integers(4, 64),
    ram_gb=st.sampled_from([32, 64, 128, 256]),
    disk_gb=st.sampled_from([500, 1000, 4000]),
    cpu_ratio=st.sampled_from([1.0, 2.0, 4.0]),
    ram_ratio=st.sampled_from([1.0, 1.5]),
)


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(servers(), hosts, st.integers(1, 7), st.integers(0, 3))
def test_every_rule_holds(inventory: list[ServerRecord], host: HostSpec, max_wave: int, seed: int) -> None:
    plan = plan_consolidation(inventory, host, max_wave=max_wave, exact=False, seed=seed)
    check_plan(plan, inventory, host, max_wave)


@settings(max_examples=25, deadline=None, database=None)
@given(servers(), hosts)
def test_every_rule_holds_after_the_exact_solver(inventory: list[ServerRecord], host: HostSpec) -> None:
    plan = plan_consolidation(inventory, host, max_wave=3, exact=True, time_limit=2.0)
    check_plan(plan, inventory, host, 3)
    for e in plan.exact:
        assert e.status in {"optimal", "feasible", "unknown"}
        assert e.best_bound <= e.hosts


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(st.tuples(st.integers(1, 10), st.integers(1, 10), st.integers(0, 10)), min_size=1, max_size=8),
    st.lists(st.integers(-1, 2), min_size=8, max_size=8),
)
def test_packing_is_feasible_and_bounds_are_below_the_optimum(items: list[tuple[int, int, int]], g: list[int]) -> None:
    demand = np.asarray(items, dtype=np.int64)
    groups = np.asarray(g[: len(items)], dtype=np.int64)
    cap = (10, 10, 10)
    result = pack_vectors(demand, cap, groups)
    assert (result.assign >= 0).all()
    load = np.zeros((result.hosts, 3), dtype=np.int64)
    np.add.at(load, result.assign, demand)
    assert (load <= 10).all()
    for grp in set(g[: len(items)]) - {-1}:
        hosts_of = result.assign[groups == grp]
        assert len(set(hosts_of.tolist())) == hosts_of.shape[0]
    best = brute_force_bins(demand, cap, groups.tolist())
    assert pool_bound(demand, cap, groups) <= best <= result.hosts


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.integers(1, 20), min_size=1, max_size=9), st.integers(20, 30))
def test_martello_toth_l2_matches_its_definition(sizes: list[int], c: int) -> None:
    w = np.asarray(sizes, dtype=np.int64)
    expected = 0
    for k in range(0, c // 2 + 1):
        j1 = [x for x in sizes if x > c - k]
        j2 = [x for x in sizes if c / 2 < x <= c - k]
        j3 = [x for x in sizes if k <= x <= c / 2]
        extra = sum(j3) - (len(j2) * c - sum(j2))
        expected = max(expected, len(j1) + len(j2) + max(0, -(-extra // c)))
    expected = max(expected, -(-sum(sizes) // c))
    assert l2_bound(w, c) == expected
    # and it is a valid bound: never above the optimum
    demand = np.stack([w, np.zeros_like(w), np.zeros_like(w)], axis=1)
    assert l2_bound(w, c) <= brute_force_bins(demand, (c, 1, 1))


def test_a_synthetic_inventory_keeps_every_rule_and_plans_are_reproducible(tmp_path: Path) -> None:
    path = tmp_path / "inventory.csv"
    write_synthetic_csv(path, 4000, seed=5, with_p95=True, grouped_share=0.2)
    with open(path, encoding="utf-8", newline="") as fh:
        records = [as_record(row) for row in csv.DictReader(fh)]
    host = HostSpec(64, 768, 7680, cpu_ratio=4.0)
    first = plan_consolidation(records, host, max_wave=40, exact=False)
    check_plan(first, records, host, 40)
    assert first.ratio <= 1.02
    again = plan_inventory(read_servers_csv(path), host, max_wave=40, exact=False).as_dict()
    expected = first.as_dict()
    for d in (again, expected):
        d.pop("seconds")
        for r in d["refused"]:
            r.pop("line", None)
    assert again == expected
