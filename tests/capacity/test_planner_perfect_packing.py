"""Instances whose optimum is known (hosts cut into pieces), the hosts-one-by-one packer, the
improvement pass and the search: every packing keeps capacities and anti-affinity, and beats what
was there."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudmgr.capacity.planner._repack import repack_hosts
from cloudmgr.capacity.planner.packing import fill_one_by_one, pack_vectors, pool_bound, renumber, search
from cloudmgr.capacity.planner.synthetic import PERFECT_UNITS, REFERENCE_HOST, perfect_packing_demand

CAP = REFERENCE_HOST.capacity()


def assert_feasible(
    demand: npt.NDArray[np.int64],
    assign: npt.NDArray[np.int64],
    hosts: int,
    cap: tuple[int, int, int],
    groups: npt.NDArray[np.int64] | None = None,
) -> None:
    assert (assign >= 0).all() and (assign < hosts).all()
    load = np.zeros((hosts, 3), dtype=np.int64)
    np.add.at(load, assign, demand)
    assert (load <= np.asarray(cap)).all()
    assert np.unique(assign).shape[0] == hosts  # no empty host counted
    if groups is not None:
        for g in set(groups.tolist()) - {-1}:
            on = assign[groups == g]
            assert np.unique(on).shape[0] == on.shape[0]


@pytest.mark.parametrize("hosts", [1, 7, 300])
def test_perfect_instances_fill_exactly_the_hosts_they_were_cut_from(hosts: int) -> None:
    demand = perfect_packing_demand(hosts, seed=hosts)
    assert (demand.sum(axis=0) == hosts * np.asarray(CAP)).all()  # every resource exactly full
    assert (demand >= np.asarray(PERFECT_UNITS)).all() and (demand % np.asarray(PERFECT_UNITS) == 0).all()
    assert 3 * hosts <= demand.shape[0] <= 10 * hosts
    assert pool_bound(demand, CAP) == hosts
    assert np.array_equal(demand, perfect_packing_demand(hosts, seed=hosts))  # seeded
    with pytest.raises(ValueError):
        perfect_packing_demand(0)


def test_perfect_instance_packs_within_one_percent_of_its_optimum() -> None:
    hosts = 1000
    demand = perfect_packing_demand(hosts, seed=2)
    result = pack_vectors(demand, CAP)
    assert_feasible(demand, result.assign, result.hosts, CAP)
    # the item-centric packers alone need about 1.03x on these, filling hosts one by one about
    # 1.016x; the search brings it to 1.01x (the target)
    alone = pack_vectors(demand, CAP, bin_centric_limit=0, repack_tries=0, search_rounds=0)
    one = pack_vectors(demand, CAP, search_rounds=0)
    assert result.hosts < one.hosts < alone.hosts
    assert result.hosts <= 1.01 * hosts
    assert np.array_equal(pack_vectors(demand, CAP).assign, result.assign)  # seeded: the same plan again


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(st.tuples(st.integers(1, 10), st.integers(1, 10), st.integers(0, 10)), min_size=1, max_size=40),
    st.lists(st.integers(-1, 4), min_size=40, max_size=40),
)
def test_one_by_one_and_the_improvement_pass_keep_every_rule(items: list[tuple[int, int, int]], g: list[int]) -> None:
    demand = np.asarray(items, dtype=np.int64)
    groups = np.asarray(g[: len(items)], dtype=np.int64)
    cap = (10, 10, 10)
    one = fill_one_by_one(demand, cap, groups)
    assert_feasible(demand, one.assign, one.hosts, cap, groups)
    assert one.hosts >= pool_bound(demand, cap, groups)
    start = pack_vectors(demand, cap, groups, repack_tries=0, bin_centric_limit=0)
    assign = start.assign.copy()
    emptied = repack_hosts(
        demand.astype(np.float64), np.asarray(cap, dtype=np.float64), assign, start.hosts, groups, 1 << 20, 10**7
    )
    assign, hosts = renumber(assign)
    assert hosts == start.hosts - emptied
    assert_feasible(demand, assign, hosts, cap, groups)
    found = search(demand, cap, groups, start, pool_bound(demand, cap, groups), rounds=5)
    assert found.hosts <= start.hosts
    assert_feasible(demand, found.assign, found.hosts, cap, groups)


def test_improvement_pass_empties_a_host_by_swapping() -> None:
    """Hosts 0 and 1 have one unit free each; host 2's (2,2,2) fits neither whole, but in place
    of host 1's (1,1,1) it does, and that one then fits host 0: host 2 is freed."""
    cap = (10, 10, 10)
    demand = np.asarray([[7, 7, 7], [2, 2, 2], [8, 8, 8], [1, 1, 1], [2, 2, 2]], dtype=np.int64)
    assign = np.asarray([0, 0, 1, 1, 2], dtype=np.int64)
    emptied = repack_hosts(
        demand.astype(np.float64), np.asarray(cap, dtype=np.float64), assign, 3, np.full(5, -1), 1 << 20, 10**6
    )
    assert emptied == 1
    assert assign.tolist() == [0, 0, 1, 0, 1]
    assert_feasible(demand, assign, 2, cap)
