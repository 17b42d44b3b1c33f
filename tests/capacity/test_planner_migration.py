"""In-cloud consolidation: drain plans, their waves, the minimum on small instances, re-planning."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudmgr.capacity.planner import HostState, MigrationPlan, VmState, plan_migration


def random_cloud(
    rng: random.Random, hosts: int, vms: int, *, zones: bool = True, cap: tuple[int, int, int] = (16, 32768, 400)
) -> tuple[list[HostState], list[VmState]]:
    hs = [
        HostState(
            f"h{i}",
            *cap,
            zone=rng.choice(["internet", "extranet"]) if zones else None,
            enabled=not zones or rng.random() > 0.1,
        )
        for i in range(hosts)
    ]
    load = {h.name: [0, 0, 0] for h in hs}
    out: list[VmState] = []
    for i in range(vms):
        size = (
            rng.choice([1, 2, 4, 8]),
            rng.choice([1024, 2048, 4096, 8192, 16384]),
            rng.choice([10, 20, 40, 80, 160]),
        )
        group = rng.choice([None, None, None, "g1", "g2"])
        options = [
            h
            for h in hs
            if all(load[h.name][k] + size[k] <= (h.vcpus, h.ram_mb, h.disk_gb)[k] for k in range(3))
            and not any(v.host == h.name and group and v.anti_affinity == group for v in out)
        ]
        if not options:
            continue
        h = rng.choice(options)
        for k in range(3):
            load[h.name][k] += size[k]
        out.append(VmState(f"vm{i}", h.name, *size, anti_affinity=group, movable=rng.random() > 0.05))
    return hs, out


def replay(hosts: list[HostState], vms: list[VmState], plan: MigrationPlan, max_wave: int) -> dict[str, str]:
    """Execute the waves one move at a time, checking every rule after each move."""
    cap = {h.name: (h.vcpus, h.ram_mb, h.disk_gb) for h in hosts}
    zone = {h.name: h.zone for h in hosts}
    enabled = {h.name: h.enabled for h in hosts}
    where = {v.name: v.host for v in vms}
    by_name = {v.name: v for v in vms}
    emptied = set(plan.emptied)
    assert all(len(w) <= max_wave for w in plan.waves)
    assert [m for w in plan.waves for m in w] == plan.moves
    assert len({m.vm for m in plan.moves}) == len(plan.moves), "a VM moves at most once"
    for m in plan.moves:
        v = by_name[m.vm]
        assert v.movable
        assert where[m.vm] == m.source == v.host
        assert m.source in emptied and m.target not in emptied, "only emptied hosts lose VMs"
        assert enabled[m.target] and zone[m.target] == zone[m.source]
        where[m.vm] = m.target
        used = [0, 0, 0]
        for name, h in where.items():
            if h == m.target:
                u = by_name[name]
                used = [used[0] + u.vcpus, used[1] + u.ram_mb, used[2] + u.disk_gb]
        assert all(used[k] <= cap[m.target][k] for k in range(3))
        if v.anti_affinity:
            assert (
                sum(1 for n, h in where.items() if h == m.target and by_name[n].anti_affinity == v.anti_affinity) == 1
            )
    assert not emptied & set(where.values())
    assert where == plan.final_host
    return where


@settings(max_examples=40, deadline=None, database=None)
@given(st.integers(0, 10_000), st.integers(1, 12), st.integers(0, 60), st.integers(1, 6), st.booleans())
def test_drain_plans_keep_every_rule_at_every_step(seed: int, nh: int, nv: int, max_wave: int, exact: bool) -> None:
    hosts, vms = random_cloud(random.Random(seed), nh, nv)
    plan = plan_migration(hosts, vms, max_wave=max_wave, exact=exact, time_limit=5)
    replay(hosts, vms, plan, max_wave)
    nonempty = len({v.host for v in vms})
    # The bound is on the hosts freed in all: a plan may empty three hosts by filling one that
    # was empty (the exact solver found such a plan for seed 120, 9 hosts, 7 VMs).
    freed = nonempty - len(set(plan.final_host.values()))
    assert freed <= plan.max_emptiable <= nonempty and len(plan.emptied) <= nonempty
    assert len(plan.moves) >= plan.min_moves_bound


def optimum(hosts: list[HostState], vms: list[VmState]) -> tuple[int, int]:
    """(most hosts empty at the end, fewest moves for that), by trying every drain plan."""
    cap = {h.name: (h.vcpus, h.ram_mb, h.disk_gb) for h in hosts}
    names = [h.name for h in hosts]
    best = (-1, 0)
    for final in itertools.product(range(len(hosts)), repeat=len(vms)):
        target = [names[t] for t in final]
        occupied = set(target)
        ok = True
        for v, t in zip(vms, target, strict=True):
            if t != v.host:
                h = next(x for x in hosts if x.name == t)
                src = next(x for x in hosts if x.name == v.host)
                if not v.movable or v.host in occupied or not h.enabled or h.zone != src.zone:
                    ok = False
                    break
        if not ok:
            continue
        used: dict[str, list[int]] = {}
        groups: Counter[tuple[str, str]] = Counter()
        for v, t in zip(vms, target, strict=True):
            u = used.setdefault(t, [0, 0, 0])
            u[0] += v.vcpus
            u[1] += v.ram_mb
            u[2] += v.disk_gb
            if v.anti_affinity:
                groups[(v.anti_affinity, t)] += 1
        if any(any(u[k] > cap[t][k] for k in range(3)) for t, u in used.items()) or any(c > 1 for c in groups.values()):
            continue
        score = (len(hosts) - len(occupied), -sum(1 for v, t in zip(vms, target, strict=True) if t != v.host))
        best = max(best, score)
    return best[0], -best[1]


def test_moves_against_the_minimum_on_small_instances() -> None:
    rng = random.Random(7)
    rows = []
    for _ in range(40):
        # small hosts, so that the choices matter
        hosts, vms = random_cloud(rng, rng.randint(3, 4), rng.randint(4, 7), zones=False, cap=(12, 24576, 300))
        best_empty, best_moves = optimum(hosts, vms)
        greedy = plan_migration(hosts, vms, exact=False)
        exact = plan_migration(hosts, vms, exact=True)
        g_empty = len(hosts) - len(set(greedy.final_host.values()))
        e_empty = len(hosts) - len(set(exact.final_host.values()))
        rows.append((best_empty, best_moves, g_empty, len(greedy.moves), e_empty, len(exact.moves)))
        assert exact.status == "optimal"
        assert (e_empty, len(exact.moves)) == (best_empty, best_moves)
        assert g_empty <= best_empty
        if g_empty == best_empty:
            assert len(greedy.moves) >= best_moves
    same = sum(1 for r in rows if r[2] == r[0] and r[3] == r[1])
    moving = sum(1 for r in rows if r[1] > 0)
    empties = sum(r[2] for r in rows) / max(1, sum(r[0] for r in rows))
    extra = sum(r[3] - r[1] for r in rows if r[2] == r[0])
    print(
        f"\nmigration plans on {len(rows)} small clouds ({moving} need moves): exact (CP-SAT) = optimum on all; "
        f"greedy reaches the optimum on {same}, empties {empties:.1%} of the hosts the optimum empties, "
        f"{extra} extra moves where it empties as many"
    )
    assert len(rows) >= 30
    assert same >= 0.8 * len(rows)


def test_replanning_after_a_small_change_moves_few_vms() -> None:
    hosts, vms = random_cloud(random.Random(3), 40, 130)
    first = plan_migration(hosts, vms, exact=False)
    assert first.emptied and first.moves
    # a new VM appears on a host the plan keeps; the plan is made again from the same state
    kept = next(h for h in hosts if h.enabled and h.name not in first.emptied and any(v.host == h.name for v in vms))
    changed = [*vms, VmState("newcomer", kept.name, 1, 1024, 10)]
    again = plan_migration(hosts, changed, exact=False, previous=first)
    before = {(m.vm, m.target) for m in first.moves}
    after = {(m.vm, m.target) for m in again.moves}
    assert len(before ^ after) <= 6, (len(before), len(after), len(before ^ after))
    # once the plan is carried out, a small change moves (almost) nothing
    done = [
        VmState(v.name, first.final_host[v.name], v.vcpus, v.ram_mb, v.disk_gb, v.anti_affinity, v.movable) for v in vms
    ]
    done.append(VmState("late", kept.name, 1, 1024, 10))
    later = plan_migration(hosts, done, exact=False, previous=first)
    assert len(later.moves) <= 3


def test_input_problems_are_reported() -> None:
    from cloudmgr.capacity.planner import PlannerInputError

    hosts = [HostState("a", 4, 4096, 40), HostState("a", 4, 4096, 40)]
    with pytest.raises(PlannerInputError, match="duplicate host"):
        plan_migration(hosts, [])
    with pytest.raises(PlannerInputError, match="unknown host"):
        plan_migration(hosts[:1], [VmState("v", "nowhere", 1, 1, 1)])
    with pytest.raises(PlannerInputError, match="max wave"):
        plan_migration(hosts[:1], [], max_wave=0)


@pytest.mark.parametrize("exact", [False, True])
def test_a_host_over_its_bookable_capacity_receives_nothing(exact: bool) -> None:
    # "a" holds more than it may book now (its allocation ratio was lowered after the fact):
    # it may be drained, never filled further; "c" then takes b's VM.
    hosts = [HostState("a", 4, 8192, 100), HostState("b", 8, 16384, 200), HostState("c", 8, 16384, 200)]
    vms = [
        VmState("big", "a", 6, 1024, 10, movable=False),
        VmState("small", "b", 1, 512, 1),
        VmState("other", "c", 1, 512, 1),
    ]
    plan = plan_migration(hosts, vms, exact=exact)
    assert "a" not in plan.emptied
    assert all(m.target != "a" for m in plan.moves)
    assert plan.emptied in (["b"], ["c"])
    # CP-SAT still answers (an over-full host does not make the whole model infeasible).
    assert plan.method == ("cp-sat" if exact else "greedy")


@pytest.mark.parametrize("exact", [False, True])
def test_drains_fill_used_hosts_before_empty_ones(exact: bool) -> None:
    # At most two hosts can be empty at the end. Moving b and c to the empty host e takes two
    # moves; emptying a onto the used hosts takes three, and leaves e untouched: that is the plan.
    hosts = [HostState(h, 10, 10, 10) for h in "abcd"] + [HostState("e", 12, 12, 12)]
    vms = [VmState(f"a{k}", "a", 2, 2, 2) for k in range(3)] + [VmState(f"{h}1", h, 6, 6, 6) for h in "bcd"]
    plan = plan_migration(hosts, vms, exact=exact)
    replay(hosts, vms, plan, 20)
    assert plan.emptied == ["a"]
    assert all(m.target != "e" for m in plan.moves)
    assert plan.method == ("cp-sat" if exact else "greedy")
