"""Exact refinement of small pools with OR-Tools CP-SAT.

Model (one zone's pool, hosts identical): x[i, b] = server i on host b, y[b] = host b used.
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

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


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
    from ortools.sat.python import cp_model

    started = time.perf_counter()
    n = demand.shape[0]
    upper = int(initial.max()) + 1 if n else 0
    if n == 0 or upper <= lower_bound:
        return ExactAnswer(initial, upper, "optimal", upper, time.perf_counter() - started)
    cap = np.asarray(capacity, dtype=np.float64)
    size = (demand / cap).max(axis=1)
    order = np.argsort(-size, kind="stable")  # position -> item
    # hint: renumber the heuristic's hosts by their first server in this order
    first_pos: dict[int, int] = {}
    for pos, i in enumerate(order.tolist()):
        first_pos.setdefault(int(initial[i]), pos)
    relabel = {b: r for r, (b, _) in enumerate(sorted(first_pos.items(), key=lambda kv: kv[1]))}

    model = cp_model.CpModel()
    y = [model.new_bool_var(f"y{b}") for b in range(upper)]
    x: list[dict[int, cp_model.IntVar]] = []
    per_host: list[list[tuple[int, cp_model.IntVar]]] = [[] for _ in range(upper)]
    for pos, i in enumerate(order.tolist()):
        row = {b: model.new_bool_var(f"x{i}_{b}") for b in range(min(pos + 1, upper))}
        model.add_exactly_one(row.values())
        x.append(row)
        for b, v in row.items():
            per_host[b].append((i, v))
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
    model.add(sum(y) >= lower_bound)
    model.minimize(sum(y))
    for pos, i in enumerate(order.tolist()):
        target = relabel[int(initial[i])]
        for b, v in x[pos].items():
            model.add_hint(v, b == target)
    for b in range(upper):
        model.add_hint(y[b], True)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, time_limit - (time.perf_counter() - started))
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    elapsed = time.perf_counter() - started
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
