"""Checks shared by the planner tests: every rule of a plan, verified from scratch."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from cloudmgr.capacity.planner import ConsolidationPlan, HostSpec, ServerRecord, Zone, demand_of
from cloudmgr.capacity.planner.model import DEFAULT_HEADROOM


def check_plan(
    plan: ConsolidationPlan,
    servers: Sequence[ServerRecord],
    host: HostSpec,
    max_wave: int,
    headroom: float = DEFAULT_HEADROOM,
    default_zone: Zone = Zone.EXTRANET,
) -> None:
    cap = host.capacity()
    by_name = {s.name: s for s in servers}
    refused = {r.name for r in plan.refused}
    unplaced = {r.name for r in plan.unplaced}
    # classified servers are refused and never placed; nothing else is refused
    assert refused == {s.name for s in servers if s.classified}
    assert not refused & set(plan.placements)
    assert all("intranet" in r.reason for r in plan.refused)
    # every other server is placed exactly once, unless it fits no empty host (then reported)
    for s in servers:
        if s.classified:
            continue
        d = demand_of(s, headroom)
        too_big = any(d[k] > cap[k] for k in range(3))
        assert (s.name in unplaced) == too_big, s
        assert (s.name in plan.placements) != too_big, s
    assert len(plan.placements) + len(refused) + len(unplaced) == len(servers)
    # capacities, zones, anti-affinity
    load = np.zeros((plan.hosts_used, 3), dtype=np.int64)
    zones: dict[int, set[str]] = {}
    groups: dict[tuple[str, int], int] = {}
    for name, h in plan.placements.items():
        s = by_name[name]
        assert 0 <= h < plan.hosts_used
        load[h] += demand_of(s, headroom)
        zone = (s.zone or default_zone).value
        zones.setdefault(h, set()).add(zone)
        assert plan.hosts[h].zone == zone
        if s.anti_affinity:
            key = (s.anti_affinity, h)
            groups[key] = groups.get(key, 0) + 1
            assert groups[key] == 1, f"anti-affinity group {s.anti_affinity} twice on host {h}"
    assert (load <= np.asarray(cap)).all()
    assert all(len(z) == 1 for z in zones.values())
    assert all(plan.hosts[h].servers > 0 for h in range(plan.hosts_used)), "no empty host in a plan"
    for used in plan.hosts:
        assert (used.vcpus, used.ram_mib, used.disk_mib) == tuple(int(x) for x in load[used.index])
    # waves: each one department, at most max_wave, every placed server exactly once
    waved = [n for w in plan.waves for n in w]
    assert sorted(waved) == sorted(plan.placements)
    for wave, dept in zip(plan.waves, plan.wave_departments, strict=True):
        assert 1 <= len(wave) <= max_wave
        assert {by_name[n].department or "(none)" for n in wave} == {dept}
    # departments are contiguous in the wave order
    seen: list[str] = []
    for dept in plan.wave_departments:
        if not seen or seen[-1] != dept:
            assert dept not in seen
            seen.append(dept)
    # the bound is a lower bound
    assert plan.lower_bound <= plan.hosts_used


def brute_force_bins(demand: np.ndarray, cap: tuple[int, int, int], groups: Sequence[int] | None = None) -> int:  # type: ignore[type-arg]
    """Optimal number of bins by exhaustive search (small n only)."""
    n = int(demand.shape[0])
    if n == 0:
        return 0
    grp = list(groups) if groups is not None else [-1] * n
    order = sorted(range(n), key=lambda i: -max(demand[i, k] / cap[k] for k in range(3)))
    best = n
    loads: list[list[int]] = []
    members: list[set[int]] = []

    def rec(t: int) -> None:
        nonlocal best
        if len(loads) >= best:
            return
        if t == n:
            best = len(loads)
            return
        i = order[t]
        for b in range(len(loads)):
            if grp[i] >= 0 and grp[i] in members[b]:
                continue
            if all(loads[b][k] + demand[i, k] <= cap[k] for k in range(3)):
                for k in range(3):
                    loads[b][k] += int(demand[i, k])
                members[b].add(grp[i])
                rec(t + 1)
                members[b].discard(grp[i])
                for k in range(3):
                    loads[b][k] -= int(demand[i, k])
        loads.append([int(demand[i, k]) for k in range(3)])
        members.append({grp[i]})
        rec(t + 1)
        loads.pop()
        members.pop()

    rec(0)
    return best


def all_assignments(n_items: int, n_bins: int) -> itertools.product[tuple[int, ...]]:
    return itertools.product(range(n_bins), repeat=n_items)
