"""Optimality on small instances with a known optimum, the exact solver, and quality at scale."""

from __future__ import annotations

import numpy as np
import pytest

from cloudmgr.capacity.planner import (
    HostSpec,
    ServerRecord,
    first_fit_decreasing,
    pack_vectors,
    plan_consolidation,
    pool_bound,
)
from cloudmgr.capacity.planner.exact import solve_exact
from cloudmgr.capacity.planner.synthetic import REFERENCE_HOST, synthetic_demand

from .planner_helpers import brute_force_bins, check_plan

# Capacity 10 in every resource (host of 10 vCPUs, 10 GB RAM, 10 GB disk, in planner units).
TEN = HostSpec(vcpus=10, ram_gb=10, disk_gb=10)


def records(items: list[tuple[int, int, int]], prefix: str = "s") -> list[ServerRecord]:
    return [ServerRecord(f"{prefix}{i}", v, r, d) for i, (v, r, d) in enumerate(items)]


def test_complementary_servers_fill_hosts_exactly() -> None:
    # RAM-heavy, disk-heavy and small servers: the optimum puts one of each on a host, full
    items = [(1, 6, 2)] * 4 + [(1, 2, 6)] * 4 + [(1, 2, 2)] * 4
    demand = np.asarray(items, dtype=np.int64)
    cap = (10, 10, 10)
    assert pool_bound(demand, cap) == brute_force_bins(demand, cap) == 4
    host = TEN  # RAM and disk in GB: the same proportions as the integers above
    plan = plan_consolidation(records(items), host, exact=False)
    check_plan(plan, records(items), host, 50)
    assert plan.hosts_used == 4
    assert plan.ratio == 1.0
    assert all((h.ram_mib, h.disk_mib) == (10 * 1024, 10 * 1024) for h in plan.hosts)


def test_exact_solver_proves_an_optimum_above_the_lower_bound() -> None:
    # found by exhaustive search: the bound is 4, the optimum is 5 and the heuristic alone uses more
    items = [(1, 4, 7), (3, 7, 4), (2, 1, 2), (2, 7, 2), (3, 6, 5), (1, 3, 7), (3, 5, 6)]
    demand = np.asarray(items, dtype=np.int64)
    cap = (10, 10, 10)
    assert pool_bound(demand, cap) == 4
    assert brute_force_bins(demand, cap) == 5
    # the chunked packer alone (the one-by-one packer, the improvement pass and the search find the 5 here)
    heuristic = pack_vectors(demand, cap, portfolio_limit=0, bin_centric_limit=0, repack_tries=0, search_rounds=0)
    assert heuristic.hosts > 5
    assert pack_vectors(demand, cap).hosts == 5
    answer = solve_exact(demand, cap, np.full(7, -1), heuristic.assign, 4, time_limit=20)
    assert answer.status == "optimal"
    assert answer.hosts == answer.best_bound == 5
    host = TEN  # RAM and disk in GB: the same proportions as the integers above
    plan = plan_consolidation(records(items), host, exact=True, time_limit=20)
    check_plan(plan, records(items), host, 50)
    assert plan.hosts_used == 5
    assert [(e.status, e.best_bound) for e in plan.exact] == [("optimal", 5)]


@pytest.mark.parametrize("seed", range(12))
def test_exact_solver_matches_exhaustive_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 10))
    demand = rng.integers(1, 8, size=(n, 3)).astype(np.int64)
    groups = rng.integers(-1, 2, size=n).astype(np.int64)
    cap = (10, 10, 10)
    best = brute_force_bins(demand, cap, groups.tolist())
    start = pack_vectors(demand, cap, groups, portfolio_limit=0)
    answer = solve_exact(demand, cap, groups, start.assign, pool_bound(demand, cap, groups), time_limit=20)
    assert answer.status == "optimal"
    assert answer.hosts == best
    load = np.zeros((answer.hosts, 3), dtype=np.int64)
    np.add.at(load, answer.assign, demand)
    assert (load <= 10).all()
    for g in (0, 1):
        on = answer.assign[groups == g]
        assert len(set(on.tolist())) == on.shape[0]


def test_anti_affinity_group_larger_than_the_resource_bound() -> None:
    items = [(1, 1, 1)] * 12
    servers = [ServerRecord(f"n{i}", 1, 1, 1, anti_affinity="ha") for i in range(12)]
    plan = plan_consolidation(servers, HostSpec(64, 256, 1000), exact=True, time_limit=5)
    assert plan.hosts_used == 12 == plan.lower_bound
    assert len(items) == len(set(plan.placements.values()))


def test_ten_thousand_servers_within_one_percent_of_the_bound_and_ffd_far_above() -> None:
    demand = synthetic_demand(10_000, seed=11)
    cap = REFERENCE_HOST.capacity()
    bound = pool_bound(demand, cap)
    ours = pack_vectors(demand, cap)
    ffd = first_fit_decreasing(demand, cap)
    assert ours.hosts <= 1.01 * bound
    assert ffd.hosts >= 1.15 * bound  # the mix where plain FFD fails
    load = np.zeros((ours.hosts, 3), dtype=np.int64)
    np.add.at(load, ours.assign, demand)
    assert (load <= np.asarray(cap)).all()
