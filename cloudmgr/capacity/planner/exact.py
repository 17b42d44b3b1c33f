"""Exact refinement of small pools with OR-Tools CP-SAT.

Two ways, by pool size:

* up to :data:`FULL_MODEL_LIMIT` servers, one CP-SAT model of the whole pool (below), which
  proves the optimum or reports the gap to the solver's bound;
* above that (a whole-pool model of 2,000 servers and ~100 hosts has ~200,000 booleans and
  CP-SAT does not get through its presolve in a minute), large-neighbourhood search with
  exact sub-problems: take the least-filled host and a few others, and ask CP-SAT to pack
  their servers on one host fewer; each success removes a host. The answer is optimal when
  it reaches the lower bound, otherwise feasible with the gap to the bound.

Whole-pool model (hosts identical): x[i, b] = server i on host b, y[b] = host b used.
Servers are numbered by decreasing size and server i may only use hosts 0..i (every
packing can be renumbered so: a host is numbered by its first server), which removes most
of the symmetry between identical hosts. Capacities hold per resource, members of an
anti-affinity group use distinct hosts, and sum(y) >= the lower bound. The heuristic's
packing is the starting hint; the answer is proven optimal, or feasible with the gap to the
solver's best bound when the time limit comes first.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

IntArray = npt.NDArray[np.int64]

FULL_MODEL_LIMIT = 300
MAX_NEIGHBOURHOOD = 24  # hosts in one sub-problem
GIVE_UP_AFTER = 80  # failed sub-problems in a row


@dataclass(frozen=True, slots=True)
class ExactAnswer:
    assign: IntArray
    hosts: int
    status: str  # optimal | feasible | unknown
    best_bound: int
    seconds: float


def solve_exact(
    demand: IntArray,
    capacity: tuple[int, int, int],
    groups: IntArray,
    initial: IntArray,
    lower_bound: int,
    *,
    time_limit: float = 60.0,
    workers: int = 2,
    seed: int = 0,
) -> ExactAnswer:
    started = time.perf_counter()
    n = demand.shape[0]
    upper = int(initial.max()) + 1 if n else 0
    if n == 0 or upper <= lower_bound:
        return ExactAnswer(initial, upper, "optimal", upper, time.perf_counter() - started)
    if n > FULL_MODEL_LIMIT:
        return _neighbourhood_search(demand, capacity, groups, initial, lower_bound, time_limit, seed, started)
    return _whole_pool(demand, capacity, groups, initial, lower_bound, time_limit, workers, seed, started)


def _whole_pool(
    demand: IntArray,
    capacity: tuple[int, int, int],
    groups: IntArray,
    initial: IntArray,
    lower_bound: int,
    time_limit: float,
    workers: int,
    seed: int,
    started: float,
) -> ExactAnswer:
    from ortools.sat.python import cp_model

    upper = int(initial.max()) + 1
    cap = np.asarray(capacity, dtype=np.float64)
    order = np.argsort(-(demand / cap).max(axis=1), kind="stable")  # position -> item
    model = cp_model.CpModel()
    y = [model.new_bool_var(f"y{b}") for b in range(upper)]
    x, per_host = _placement_vars(model, order, upper)
    _add_host_constraints(model, demand, capacity, y, per_host)
    _add_anti_affinity(model, groups, order, x, upper)
    model.add(sum(y) >= lower_bound)
    model.minimize(sum(y))
    _add_heuristic_hint(model, order, initial, x, y)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, time_limit - (time.perf_counter() - started))
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    elapsed = time.perf_counter() - started
    return _whole_pool_answer(solver, status, order, x, initial, upper, lower_bound, elapsed)


def _placement_vars(
    model: cp_model.CpModel, order: IntArray, upper: int
) -> tuple[list[dict[int, cp_model.IntVar]], list[list[tuple[int, cp_model.IntVar]]]]:
    """x[pos][b]: the server at ``pos`` (decreasing size) on host b, for hosts 0..pos only
    (the symmetry breaking), each server on exactly one host. Also returns, per host, the
    (server, variable) pairs that may use it."""
    x: list[dict[int, cp_model.IntVar]] = []
    per_host: list[list[tuple[int, cp_model.IntVar]]] = [[] for _ in range(upper)]
    for pos, i in enumerate(order.tolist()):
        row = {b: model.new_bool_var(f"x{i}_{b}") for b in range(min(pos + 1, upper))}
        model.add_exactly_one(row.values())
        x.append(row)
        for b, v in row.items():
            per_host[b].append((i, v))
    return x, per_host


def _add_host_constraints(
    model: cp_model.CpModel,
    demand: IntArray,
    capacity: tuple[int, int, int],
    y: list[cp_model.IntVar],
    per_host: list[list[tuple[int, cp_model.IntVar]]],
) -> None:
    """Capacities per host and resource; a host with a server is used; hosts are used in
    order (host b + 1 only after host b), another cut of the symmetry."""
    upper = len(y)
    for b in range(upper):
        if not per_host[b]:
            model.add(y[b] == 0)
            continue
        for k in range(3):
            terms = [(int(demand[i, k]), v) for i, v in per_host[b] if demand[i, k] > 0]
            if terms:
                model.add(sum(c * v for c, v in terms) <= int(capacity[k]) * y[b])
        for _, v in per_host[b]:
            model.add_implication(v, y[b])
        if b + 1 < upper:
            model.add_implication(y[b + 1], y[b])


def _add_anti_affinity(
    model: cp_model.CpModel, groups: IntArray, order: IntArray, x: list[dict[int, cp_model.IntVar]], upper: int
) -> None:
    """At most one member of an anti-affinity group per host."""
    n = order.shape[0]
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    g_members: dict[int, list[int]] = {}
    for i in np.flatnonzero(groups >= 0).tolist():
        g_members.setdefault(int(groups[i]), []).append(int(position[i]))
    for members in g_members.values():
        if len(members) < 2:
            continue
        for b in range(upper):
            vs = [x[p][b] for p in members if b in x[p]]
            if len(vs) > 1:
                model.add_at_most_one(vs)


def _add_heuristic_hint(
    model: cp_model.CpModel,
    order: IntArray,
    initial: IntArray,
    x: list[dict[int, cp_model.IntVar]],
    y: list[cp_model.IntVar],
) -> None:
    """Start CP-SAT from the heuristic's packing, its hosts renumbered by their first server
    in ``order`` so that the hint obeys the model's symmetry breaking."""
    first_pos: dict[int, int] = {}
    for pos, i in enumerate(order.tolist()):
        first_pos.setdefault(int(initial[i]), pos)
    relabel = {b: r for r, (b, _) in enumerate(sorted(first_pos.items(), key=lambda kv: kv[1]))}
    for pos, i in enumerate(order.tolist()):
        target = relabel[int(initial[i])]
        for b, v in x[pos].items():
            model.add_hint(v, b == target)
    for v in y:
        model.add_hint(v, True)


def _whole_pool_answer(
    solver: cp_model.CpSolver,
    status: Any,
    order: IntArray,
    x: list[dict[int, cp_model.IntVar]],
    initial: IntArray,
    upper: int,
    lower_bound: int,
    elapsed: float,
) -> ExactAnswer:
    """The solver's packing with its status and bound, or the heuristic's (``initial``) as
    "unknown" when the solver found nothing better to report."""
    from ortools.sat.python import cp_model

    n = order.shape[0]
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        assign = np.empty(n, dtype=np.int64)
        for pos, i in enumerate(order.tolist()):
            for b, v in x[pos].items():
                if solver.boolean_value(v):
                    assign[i] = b
                    break
        used, assign = np.unique(assign, return_inverse=True)
        hosts = int(used.shape[0])
        bound = max(lower_bound, math.ceil(solver.best_objective_bound - 1e-6))
        if status == cp_model.OPTIMAL:
            bound = hosts
        if hosts <= upper:
            label = "optimal" if status == cp_model.OPTIMAL or bound >= hosts else "feasible"
            return ExactAnswer(assign.astype(np.int64), hosts, label, min(bound, hosts), elapsed)
    bound = lower_bound
    if status == cp_model.INFEASIBLE:  # cannot happen with the hint's solution in the model
        bound = upper
    return ExactAnswer(initial, upper, "unknown", bound, elapsed)


def _pack_subset(
    demand: IntArray,
    capacity: tuple[int, int, int],
    groups: IntArray,
    items: IntArray,
    bins: int,
    time_limit: float,
    seed: int,
) -> IntArray | None:
    """CP-SAT: put ``items`` on ``bins`` hosts; their host (0..bins-1) per item, or None."""
    from ortools.sat.python import cp_model

    cap = np.asarray(capacity, dtype=np.float64)
    order = items[np.argsort(-(demand[items] / cap).max(axis=1), kind="stable")]
    model = cp_model.CpModel()
    x = []
    for pos, i in enumerate(order.tolist()):
        row = [model.new_bool_var(f"x{i}_{b}") for b in range(min(pos + 1, bins))]
        model.add_exactly_one(row)
        x.append(row)
    for b in range(bins):
        for k in range(3):
            terms = [(int(demand[i, k]), x[p][b]) for p, i in enumerate(order.tolist()) if b < len(x[p])]
            if sum(c for c, _ in terms) > capacity[k]:
                model.add(sum(c * v for c, v in terms) <= int(capacity[k]))
    members: dict[int, list[int]] = {}
    for p, i in enumerate(order.tolist()):
        if groups[i] >= 0:
            members.setdefault(int(groups[i]), []).append(p)
    for ps in members.values():
        if len(ps) > 1:
            for b in range(bins):
                lits = [x[p][b] for p in ps if b < len(x[p])]
                if len(lits) > 1:
                    model.add_at_most_one(lits)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    out = np.empty(items.shape[0], dtype=np.int64)
    where = {i: p for p, i in enumerate(order.tolist())}
    for a, i in enumerate(items.tolist()):
        row = x[where[i]]
        out[a] = next(b for b, v in enumerate(row) if solver.boolean_value(v))
    return out


def _neighbourhood_search(
    demand: IntArray,
    capacity: tuple[int, int, int],
    groups: IntArray,
    initial: IntArray,
    lower_bound: int,
    time_limit: float,
    seed: int,
    started: float,
) -> ExactAnswer:
    rng = np.random.default_rng(seed)
    cap = np.asarray(capacity, dtype=np.float64)
    assign = initial.copy()
    hosts = int(assign.max()) + 1
    live = np.ones(hosts, dtype=np.bool_)
    load = np.zeros((hosts, 3), dtype=np.int64)
    np.add.at(load, assign, demand)
    k = 4
    failures = 0
    deadline = started + time_limit
    while int(live.sum()) > lower_bound and time.perf_counter() < deadline - 0.05:
        ids = np.flatnonzero(live)
        fill = (load[ids] / cap).max(axis=1)
        slack = (1.0 - load[ids] / cap).sum(axis=1)
        # the host to empty: one of the least filled; partners: the roomiest and some at random
        target = ids[np.argsort(fill, kind="stable")[int(rng.integers(0, min(3, ids.shape[0])))]]
        others = ids[ids != target]
        if others.shape[0] == 0:
            break
        take = min(k - 1, others.shape[0])
        roomy = others[np.argsort(-slack[ids != target], kind="stable")[: max(1, take // 2)]]
        rest = np.setdiff1d(others, roomy)
        extra = (
            rng.choice(rest, size=min(take - roomy.shape[0], rest.shape[0]), replace=False) if rest.shape[0] else rest
        )
        chosen = np.concatenate(([target], roomy, extra)).astype(np.int64)
        items = np.flatnonzero(np.isin(assign, chosen))
        budget = min(2.0, deadline - time.perf_counter())
        if budget <= 0.05:
            break
        sub = _pack_subset(demand, capacity, groups, items, chosen.shape[0] - 1, budget, int(rng.integers(1 << 30)))
        if sub is None:
            failures += 1
            if failures % 8 == 0:
                k = min(k + 2, MAX_NEIGHBOURHOOD)
            if failures >= GIVE_UP_AFTER:
                break  # the neighbourhoods are exhausted: report the gap
            continue
        failures = 0
        keep = chosen[1:]
        assign[items] = keep[sub]
        load[chosen] = 0
        np.add.at(load, assign[items], demand[items])
        live[target] = False
    used, compact = np.unique(assign, return_inverse=True)
    hosts = int(used.shape[0])
    status = "optimal" if hosts <= lower_bound else "feasible"
    return ExactAnswer(compact.astype(np.int64), hosts, status, lower_bound, time.perf_counter() - started)
