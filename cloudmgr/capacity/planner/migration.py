"""In-cloud consolidation: empty as many hosts as possible with the fewest live migrations.

A pure function over a snapshot of the cloud (hosts with capacities, VMs with sizes and
their current host); it calls no cloud. Units are OpenStack's: vCPUs (bookable, i.e.
allocation ratio applied), RAM in MB, disk in GB.

Plans are *drain plans*: a VM moves only off a host that the plan empties, straight to its
final host, and hosts that are kept never lose a VM. So every move finds its room whatever
the order: the moves can run in waves of any size and be stopped between waves, each
intermediate state respecting capacities, zones and anti-affinity.

* the greedy planner tries hosts from the fewest VMs (least load) upward and drains one
  when all its VMs fit on the kept hosts (best fit, largest VM first; VMs prefer hosts that
  are less likely to be drained later);
* for small clouds (``exact=None``: at most :data:`EXACT_VMS` VMs) CP-SAT finds the plan
  that empties the most hosts and, among those, moves the fewest VMs;
* re-planning with ``previous=`` keeps the previous plan's choices where they still hold
  (same hosts drained first, same destinations), so a small change moves few VMs.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from cloudmgr.capacity.planner.model import PlannerInputError

EXACT_VMS = 300
EXACT_TIME_LIMIT = 30.0
DEFAULT_WAVE_MOVES = 20


@dataclass(frozen=True, slots=True)
class HostState:
    name: str
    vcpus: int  # bookable vCPUs (cores x allocation ratio)
    ram_mb: int
    disk_gb: int
    zone: str | None = None
    enabled: bool = True  # a disabled host receives no VM (it may still be emptied)


@dataclass(frozen=True, slots=True)
class VmState:
    name: str
    host: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    anti_affinity: str | None = None
    movable: bool = True  # pinned VMs stay; their host is never emptied
    # How a movable VM moves: "live" (a running server) or "cold" (a stopped one, restarted
    # elsewhere while it is off).  The planner only reads ``movable``; the executor reads this.
    migration: str = "live"


@dataclass(frozen=True, slots=True)
class Move:
    vm: str
    source: str
    target: str


@dataclass(slots=True)
class MigrationPlan:
    moves: list[Move]
    waves: list[list[Move]]
    emptied: list[str]  # hosts the plan empties, in the order they empty
    already_empty: list[str]
    hosts_bound: int  # lower bound on the hosts the VMs need (per zone: max of L1, L2, anti-affinity)
    max_emptiable: int  # non-empty hosts minus that bound: no plan frees more hosts in all
    min_moves_bound: int  # moves needed at least to empty len(emptied) hosts (their smallest VM counts)
    method: str  # greedy | cp-sat
    status: str  # greedy: "heuristic"; cp-sat: optimal | feasible
    seconds: float = 0.0
    final_host: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "moves": [{"vm": m.vm, "from": m.source, "to": m.target} for m in self.moves],
            "waves": [[{"vm": m.vm, "from": m.source, "to": m.target} for m in w] for w in self.waves],
            "emptied": self.emptied,
            "already_empty": self.already_empty,
            "hosts_bound": self.hosts_bound,
            "max_emptiable": self.max_emptiable,
            "min_moves_bound": self.min_moves_bound,
            "method": self.method,
            "status": self.status,
            "seconds": round(self.seconds, 3),
        }


@dataclass(slots=True)
class _Snapshot:
    hosts: list[HostState]
    vms: list[VmState]
    cap: npt.NDArray[np.int64]  # (H, 3)
    dem: npt.NDArray[np.int64]  # (V, 3)
    cur: npt.NDArray[np.int64]  # (V,) current host index
    zone: list[str]  # per host ('' when unknown)
    enabled: npt.NDArray[np.bool_]
    movable: npt.NDArray[np.bool_]
    group: npt.NDArray[np.int64]  # per VM, -1 none


def _snapshot(hosts: Sequence[HostState], vms: Sequence[VmState]) -> _Snapshot:
    problems: list[str] = []
    index: dict[str, int] = {}
    for h in hosts:
        if h.name in index:
            problems.append(f"duplicate host {h.name!r}")
        index[h.name] = len(index)
        if min(h.vcpus, h.ram_mb, h.disk_gb) < 0:
            problems.append(f"host {h.name}: negative capacity")
    seen: set[str] = set()
    groups: dict[str, int] = {}
    cur = np.empty(len(vms), dtype=np.int64)
    group = np.full(len(vms), -1, dtype=np.int64)
    for i, v in enumerate(vms):
        if v.name in seen:
            problems.append(f"duplicate VM {v.name!r}")
        seen.add(v.name)
        if v.host not in index:
            problems.append(f"VM {v.name}: unknown host {v.host!r}")
            cur[i] = 0
        else:
            cur[i] = index[v.host]
        if min(v.vcpus, v.ram_mb, v.disk_gb) < 0:
            problems.append(f"VM {v.name}: negative size")
        if v.anti_affinity:
            group[i] = groups.setdefault(v.anti_affinity, len(groups))
    if problems:
        raise PlannerInputError(problems[:20])
    cap = np.array([[h.vcpus, h.ram_mb, h.disk_gb] for h in hosts], dtype=np.int64).reshape(len(hosts), 3)
    dem = np.array([[v.vcpus, v.ram_mb, v.disk_gb] for v in vms], dtype=np.int64).reshape(len(vms), 3)
    return _Snapshot(
        hosts=list(hosts),
        vms=list(vms),
        cap=cap,
        dem=dem,
        cur=cur,
        zone=[h.zone or "" for h in hosts],
        enabled=np.array([h.enabled for h in hosts], dtype=np.bool_),
        movable=np.array([v.movable for v in vms], dtype=np.bool_),
        group=group,
    )


def _hosts_bound(s: _Snapshot) -> int:
    """Per zone (and host size), the packing lower bound of the VMs on hosts of the largest size there."""
    from cloudmgr.capacity.planner.bounds import anti_affinity_bound, resource_bounds

    total = 0
    for z in sorted(set(s.zone)):
        hz = [h for h in range(len(s.hosts)) if s.zone[h] == z]
        vz = np.flatnonzero(np.isin(s.cur, hz))
        if vz.shape[0] == 0:
            continue
        big = s.cap[hz].max(axis=0)
        capacity = (max(1, int(big[0])), max(1, int(big[1])), max(1, int(big[2])))
        l1, l2 = resource_bounds(s.dem[vz], capacity)
        total += max(*l1, *l2, anti_affinity_bound(s.group[vz]))
    return total


def plan_migration(
    hosts: Sequence[HostState],
    vms: Sequence[VmState],
    *,
    max_wave: int = DEFAULT_WAVE_MOVES,
    previous: MigrationPlan | None = None,
    exact: bool | None = None,
    time_limit: float = EXACT_TIME_LIMIT,
) -> MigrationPlan:
    """Plan live migrations that empty hosts; see the module documentation."""
    started = time.perf_counter()
    if max_wave < 1:
        raise PlannerInputError([f"max wave must be at least 1, got {max_wave}"])
    s = _snapshot(hosts, vms)
    nh = len(s.hosts)
    count = np.bincount(s.cur, minlength=nh) if len(s.vms) else np.zeros(nh, dtype=np.int64)
    already_empty = [s.hosts[h].name for h in range(nh) if count[h] == 0]
    use_exact = exact if exact is not None else 0 < len(s.vms) <= EXACT_VMS
    method, status = "greedy", "heuristic"
    final, order = _greedy(s, previous)
    if use_exact:
        answer = _exact(s, final, time_limit)
        if answer is not None and _score(s, answer[0]) >= _score(s, final):
            final, order, status = answer
            method = "cp-sat"
    moves_by_host: dict[int, list[Move]] = defaultdict(list)
    for i in np.flatnonzero(final != s.cur).tolist():
        v = s.vms[i]
        moves_by_host[int(s.cur[i])].append(Move(v.name, v.host, s.hosts[int(final[i])].name))
    moves: list[Move] = []
    for h in order:
        moves.extend(sorted(moves_by_host.get(h, []), key=lambda m: m.vm))
    waves = [moves[w : w + max_wave] for w in range(0, len(moves), max_wave)]
    bound = _hosts_bound(s)
    nonempty = int((count > 0).sum())
    counts = sorted(int(count[h]) for h in range(nh) if count[h] > 0)
    return MigrationPlan(
        moves=moves,
        waves=waves,
        emptied=[s.hosts[h].name for h in order],
        already_empty=already_empty,
        hosts_bound=bound,
        max_emptiable=max(0, nonempty - bound),
        min_moves_bound=sum(counts[: len(order)]),
        method=method,
        status=status,
        seconds=time.perf_counter() - started,
        final_host={s.vms[i].name: s.hosts[int(final[i])].name for i in range(len(s.vms))},
    )


def _score(s: _Snapshot, final: npt.NDArray[np.int64]) -> tuple[int, int, int]:
    """(hosts empty at the end, minus the VMs put on hosts that were empty, minus the moves):
    larger is better."""
    empty = len(s.hosts) - len(set(final.tolist()))
    was_empty = np.bincount(s.cur, minlength=len(s.hosts)) == 0
    return empty, -int(was_empty[final].sum()), -int((final != s.cur).sum())


def _greedy(s: _Snapshot, previous: MigrationPlan | None) -> tuple[npt.NDArray[np.int64], list[int]]:
    """Drain the candidate hosts one by one (fewest VMs and least filled first; an earlier plan's
    order first), each VM to the best-fitting host that keeps running; the loop itself is the
    compiled ``_drain_kernel.greedy_drain``."""
    from cloudmgr.capacity.planner._drain_kernel import greedy_drain

    nh = len(s.hosts)
    capf = np.maximum(s.cap.max(axis=0), 1).astype(np.float64)
    load = np.zeros((nh, 3), dtype=np.int64)
    np.add.at(load, s.cur, s.dem)
    count = np.bincount(s.cur, minlength=nh)
    pinned = np.zeros(nh, dtype=np.bool_)
    pinned[s.cur[~s.movable]] = True
    # members of each anti-affinity group per host
    groups = int(s.group.max()) + 1 if len(s.group) else 0
    gcount = np.zeros((max(groups, 1), nh), dtype=np.int64)
    member = s.group >= 0
    np.add.at(gcount, (s.group[member], s.cur[member]), 1)
    fill = (load / capf).sum(axis=1)
    prev_first: dict[str, int] = {}
    prev_target = np.full(len(s.vms), -1, dtype=np.int64)
    host_index = {h.name: k for k, h in enumerate(s.hosts)}
    if previous is not None:
        prev_first = {name: r for r, name in enumerate(previous.emptied)}
        wanted = {m.vm: host_index.get(m.target, -1) for m in previous.moves}
        for i, v in enumerate(s.vms):
            prev_target[i] = wanted.get(v.name, -1)
    candidates = [h for h in range(nh) if count[h] > 0 and not pinned[h]]
    candidates.sort(key=lambda h: (prev_first.get(s.hosts[h].name, nh), int(count[h]), float(fill[h]), s.hosts[h].name))
    # targets are hosts that keep running (filling an empty host would gain nothing);
    # hosts more likely to be kept (late in the drain order, or not candidates) are preferred targets
    keep_rank = np.full(nh, len(candidates), dtype=np.float64)
    for r, h in enumerate(candidates):
        keep_rank[h] = r
    zone_codes = {z: k for k, z in enumerate(sorted(set(s.zone)))}
    zone_of = np.array([zone_codes[z] for z in s.zone], dtype=np.int64)
    final, order, n_order = greedy_drain(
        s.cur,
        s.dem,
        s.cap,
        capf,
        s.enabled,
        zone_of,
        s.group,
        gcount,
        prev_target,
        np.array(candidates, dtype=np.int64),
        keep_rank,
    )
    return final, [int(h) for h in order[:n_order]]


def _exact(
    s: _Snapshot, hint: npt.NDArray[np.int64], time_limit: float
) -> tuple[npt.NDArray[np.int64], list[int], str] | None:
    """CP-SAT: choose hosts to empty (most first, then fewest VMs put on hosts that were empty,
    then fewest VMs moved), VMs of the others stay."""
    from ortools.sat.python import cp_model

    nh, nv = len(s.hosts), len(s.vms)
    count = np.bincount(s.cur, minlength=nh)
    # A host already over its bookable capacity (its allocation ratio or reserved amount was
    # lowered after the fact) receives nothing; what is on it may stay or leave.
    load = np.zeros((nh, 3), dtype=np.int64)
    np.add.at(load, s.cur, s.dem)
    overfull = np.any(load > s.cap, axis=1)
    model = cp_model.CpModel()
    empty = [model.new_bool_var(f"e{h}") for h in range(nh)]
    x: list[dict[int, cp_model.IntVar]] = []
    per_host: list[list[tuple[int, cp_model.IntVar]]] = [[] for _ in range(nh)]
    for i in range(nv):
        h0 = int(s.cur[i])
        row: dict[int, cp_model.IntVar] = {}
        for h in range(nh):
            if h == h0 or (
                s.movable[i]
                and s.enabled[h]
                and not overfull[h]
                and s.zone[h] == s.zone[h0]
                and np.all(s.dem[i] <= s.cap[h])
            ):
                row[h] = model.new_bool_var(f"x{i}_{h}")
        model.add_exactly_one(row.values())
        # a VM leaves its host only when that host is emptied
        model.add_implication(empty[h0].negated(), row[h0])
        x.append(row)
        for h, var in row.items():
            per_host[h].append((i, var))
    for h in range(nh):
        for _, var in per_host[h]:
            model.add_implication(empty[h], var.negated())
        if overfull[h]:
            continue  # only its own VMs can be on it (see above): no VM is added
        for k in range(3):
            terms = [(int(s.dem[i, k]), var) for i, var in per_host[h] if s.dem[i, k] > 0]
            if terms:
                model.add(sum(c * var for c, var in terms) <= int(s.cap[h, k]))
    members: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(s.group >= 0).tolist():
        members[int(s.group[i])].append(i)
    for vs in members.values():
        if len(vs) > 1:
            for h in range(nh):
                lits = [x[i][h] for i in vs if h in x[i]]
                if len(lits) > 1:
                    model.add_at_most_one(lits)
    moved = [x[i][int(s.cur[i])].negated() for i in range(nv)]
    # VMs put on a host that was empty: with as many hosts empty at the end, a plan that fills
    # used hosts is preferred (it empties fewer hosts, and the empty ones stay untouched)
    onto_empty = [var for h in range(nh) if count[h] == 0 for _, var in per_host[h]]
    weight = nv + 1
    model.maximize(weight * weight * sum(empty) - weight * sum(onto_empty) - sum(moved))
    for i in range(nv):
        for h, var in x[i].items():
            model.add_hint(var, int(hint[i]) == h)
    # hosts empty at the end count, the already empty ones too (filling one gains nothing)
    hinted_empty = set(np.flatnonzero(np.bincount(hint, minlength=nh) == 0).tolist())
    for h in range(nh):
        model.add_hint(empty[h], h in hinted_empty)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = 2
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    final = np.empty(nv, dtype=np.int64)
    for i in range(nv):
        for h, var in x[i].items():
            if solver.boolean_value(var):
                final[i] = h
                break
    emptied = [h for h in range(nh) if count[h] > 0 and solver.boolean_value(empty[h])]
    moved_per = {h: int(((s.cur == h) & (final != s.cur)).sum()) for h in emptied}
    emptied.sort(key=lambda h: (moved_per[h], s.hosts[h].name))
    return final, emptied, "optimal" if status == cp_model.OPTIMAL else "feasible"
