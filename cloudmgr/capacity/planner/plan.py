"""The consolidation plan: which servers go on which host, in which waves.

Rules that always hold in a plan:

* every host's booked vCPUs, RAM and disk stay within its capacity (ratios applied);
* members of one anti-affinity group are on distinct hosts;
* internet and extranet servers never share a host: each zone is packed separately and
  every host has one zone;
* classified servers are refused (listed with the reason, never placed): they belong on
  the separate e-government intranet;
* a server larger than an empty host is reported as unplaced; every other server is placed
  exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from cloudmgr.capacity.planner.bounds import anti_affinity_bound, resource_bounds
from cloudmgr.capacity.planner.inventory import ZONE_NAMES, Inventory, inventory_from_records
from cloudmgr.capacity.planner.model import (
    CLASSIFIED_MESSAGE,
    CLASSIFIED_REASON,
    DEFAULT_HEADROOM,
    DEFAULT_MAX_WAVE,
    MIB_PER_GB,
    BoundDetail,
    ConsolidationPlan,
    ExactResult,
    HostSpec,
    HostUsage,
    PlannerInputError,
    Refusal,
    ServerRecord,
    Zone,
)
from cloudmgr.capacity.planner.packing import fits_empty_host, pack_vectors
from cloudmgr.capacity.planner.waves import build_waves
from cloudmgr.messages import N_, Message, message

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cloudmgr.organisation.actor import Actor

EXACT_LIMIT = 2000
EXACT_TIME_LIMIT = 60.0


def plan_consolidation(
    servers: Iterable[ServerRecord],
    host: HostSpec,
    *,
    max_wave: int = DEFAULT_MAX_WAVE,
    headroom: float = DEFAULT_HEADROOM,
    default_zone: Zone = Zone.EXTRANET,
    exact: bool | None = None,
    exact_limit: int = EXACT_LIMIT,
    time_limit: float = EXACT_TIME_LIMIT,
    seed: int = 0,
) -> ConsolidationPlan:
    """Plan the consolidation of ``servers`` onto hosts of size ``host``.

    ``exact``: None refines zones of at most ``exact_limit`` servers with CP-SAT when the
    heuristic is above the lower bound; True does so whatever the size; False never does.
    Raises :class:`~cloudmgr.capacity.planner.model.PlannerInputError` on invalid records.
    """
    inventory = inventory_from_records(servers, headroom=headroom, default_zone=default_zone)
    return plan_inventory(
        inventory, host, max_wave=max_wave, exact=exact, exact_limit=exact_limit, time_limit=time_limit, seed=seed
    )


def _describe_too_big(demand: npt.NDArray[np.int64], capacity: tuple[int, int, int]) -> Message:
    parts = []
    if demand[0] > capacity[0]:
        parts.append(f"{int(demand[0])} vCPUs > {capacity[0]}")
    if demand[1] > capacity[1]:
        parts.append(f"{demand[1] / MIB_PER_GB:g} GB RAM > {capacity[1] / MIB_PER_GB:g}")
    if demand[2] > capacity[2]:
        parts.append(f"{demand[2] / MIB_PER_GB:g} GB disk > {capacity[2] / MIB_PER_GB:g}")
    return message(N_("larger than an empty host: %(what)s"), what=", ".join(parts))


def plan_inventory(
    inventory: Inventory,
    host: HostSpec,
    *,
    max_wave: int = DEFAULT_MAX_WAVE,
    exact: bool | None = None,
    exact_limit: int = EXACT_LIMIT,
    time_limit: float = EXACT_TIME_LIMIT,
    seed: int = 0,
) -> ConsolidationPlan:
    started = time.perf_counter()
    if max_wave < 1:
        raise PlannerInputError([f"max wave must be at least 1, got {max_wave}"])
    capacity = host.capacity()
    refused, unplaced, placeable = _sort_out(inventory, capacity)
    host_of = np.full(len(inventory), -1, dtype=np.int64)
    host_zone: list[str] = []
    bounds: list[BoundDetail] = []
    exact_results: list[ExactResult] = []
    # zones are packed apart so that no host ever holds internet and extranet servers together
    for code, zone_name in enumerate(ZONE_NAMES):
        items = np.flatnonzero(placeable & (inventory.zone == code))
        if items.shape[0] == 0:
            continue
        want_exact = exact if exact is not None else items.shape[0] <= exact_limit
        assign, hosts, detail, exact_result = _pack_zone(
            inventory, items, zone_name, capacity, want_exact=want_exact, time_limit=time_limit, seed=seed
        )
        bounds.append(detail)
        if exact_result is not None:
            exact_results.append(exact_result)
        host_of[items] = assign + len(host_zone)
        host_zone.extend([zone_name] * hosts)

    placed = np.flatnonzero(host_of >= 0)
    names = np.asarray(inventory.names, dtype=object)  # once: indexed here and by the waves
    placed_names: list[str] = inventory.names if placed.shape[0] == len(inventory) else names[placed].tolist()
    waves, wave_departments = build_waves(
        names, inventory.department, inventory.department_names, host_of, placed, max_wave
    )
    return ConsolidationPlan(
        capacity=capacity,
        hosts=_host_usage(inventory.demand, host_of, placed, host_zone),
        placed_names=placed_names,
        placed_hosts=host_of[placed],
        waves=waves,
        wave_departments=wave_departments,
        refused=refused,
        unplaced=unplaced,
        bounds=bounds,
        exact=exact_results,
        seconds=time.perf_counter() - started,
    )


def _sort_out(
    inventory: Inventory, capacity: tuple[int, int, int]
) -> tuple[list[Refusal], list[Refusal], npt.NDArray[np.bool_]]:
    """Split the inventory: the classified servers (refused, they belong on the e-government
    intranet), the servers larger than an empty host (unplaced), and the mask of the rest."""
    demand, names, lines = inventory.demand, inventory.names, inventory.lines
    refused = [
        Refusal(
            names[i],
            inventory.refusal_reasons.get(int(i), CLASSIFIED_REASON),
            int(lines[i]) or None,
            inventory.refusal_messages.get(int(i), CLASSIFIED_MESSAGE),
        )
        for i in np.flatnonzero(inventory.classified)
    ]
    fits = fits_empty_host(demand, capacity) if len(inventory) else np.zeros(0, dtype=np.bool_)
    candidates = ~inventory.classified
    too_big = np.flatnonzero(candidates & ~fits)
    unplaced = []
    for i in too_big:
        why = _describe_too_big(demand[i], capacity)
        unplaced.append(Refusal(names[i], str(why), int(lines[i]) or None, why))
    return refused, unplaced, candidates & fits


def _pack_zone(
    inventory: Inventory,
    items: npt.NDArray[np.int64],
    zone_name: str,
    capacity: tuple[int, int, int],
    *,
    want_exact: bool,
    time_limit: float,
    seed: int,
) -> tuple[npt.NDArray[np.int64], int, BoundDetail, ExactResult | None]:
    """Pack one zone's ``items``: the heuristic, then CP-SAT when ``want_exact`` and the
    heuristic is above the lower bound. Returns (host 0..hosts-1 per item, hosts, the zone's
    bound, the exact refinement's result when one was wanted)."""
    dem = inventory.demand[items]
    grp = inventory.group[items]
    l1, l2 = resource_bounds(dem, capacity)
    detail = BoundDetail(zone_name, int(items.shape[0]), l1, l2, anti_affinity_bound(grp))
    packed = pack_vectors(dem, capacity, grp, seed=seed)
    assign, hosts = packed.assign, packed.hosts
    if not want_exact:
        return assign, hosts, detail, None
    if hosts <= detail.bound:
        return assign, hosts, detail, ExactResult(zone_name, "optimal", "bound", hosts, detail.bound, 0.0)
    from cloudmgr.capacity.planner.exact import solve_exact

    answer = solve_exact(dem, capacity, grp, assign, detail.bound, time_limit=time_limit, seed=seed)
    if answer.hosts < hosts:
        assign, hosts = answer.assign, answer.hosts
    result = ExactResult(zone_name, answer.status, "cp-sat", hosts, answer.best_bound, answer.seconds)
    return assign, hosts, detail, result


def _host_usage(
    demand: npt.NDArray[np.int64], host_of: npt.NDArray[np.int64], placed: npt.NDArray[np.int64], host_zone: list[str]
) -> list[HostUsage]:
    """Per host: its zone, how many servers it holds and their summed vCPUs, RAM and disk."""
    nh = len(host_zone)
    on = host_of[placed]
    # float sums of whole units stay exact (far below 2**53)
    load = np.stack([np.bincount(on, weights=demand[placed, k], minlength=nh) for k in range(3)], axis=1)
    load = load.astype(np.int64)
    count = np.bincount(on, minlength=nh).tolist()
    return [HostUsage(b, host_zone[b], count[b], v, r, d) for b, (v, r, d) in enumerate(load.tolist())]


#: Seconds the exact refinement may take when a person waits for the answer (a page, the API).
INTERACTIVE_TIME_LIMIT = 10.0


def plan_servers_csv(
    session: Session,
    text: str,
    host: HostSpec,
    *,
    actor: Actor,
    entry_point: str,
    blank_is_non_classified: bool = False,
    max_wave: int = DEFAULT_MAX_WAVE,
) -> ConsolidationPlan:
    """Plan an uploaded servers CSV (the same columns as `cloudmgr plan consolidate`) while someone
    waits: the inventory's classification and the blank rule first
    (:mod:`cloudmgr.capacity.planner.guard`), each refused row audited in ``session``."""
    import io

    from cloudmgr.capacity.planner.guard import apply_inventory_rules, audit_refusals
    from cloudmgr.capacity.planner.inventory import read_servers_csv

    inventory = read_servers_csv(io.StringIO(text, newline=""))
    refusals = apply_inventory_rules(session, inventory, blank_is_non_classified=blank_is_non_classified)
    plan = plan_inventory(inventory, host, max_wave=max_wave, time_limit=INTERACTIVE_TIME_LIMIT)
    audit_refusals(session, refusals, actor=actor, entry_point=entry_point)
    return plan
