"""Multi-dimensional (vCPU, RAM, disk) packing of one pool of servers onto identical hosts.

The algorithm ("chunked vector scheduling"):

1. Order the servers by decreasing size, the size being the largest of the three
   demands relative to the host capacity; equal sizes are put in a seeded random order
   (so that the input order, e.g. a CSV sorted by department, cannot line up alike
   servers).
2. Large pools are cut into chunks of about ``chunk_hosts`` hosts' worth of servers that
   look alike: servers are sorted by the *shape* of their demand (the shares of RAM and
   disk in it), then by size, and dealt to the chunks in snake order, so every chunk holds
   the same mix. Each chunk is packed into floor(its continuous bound) hosts by
   :func:`~._kernels.vector_schedule` (all hosts open at once, each server to the host
   that fits it with the largest weighted dot product of its demand and the host's free
   capacity). What does not fit goes on to the next round; the last round gets
   max(L1, L2, anti-affinity) hosts, rounds repeat until everything is placed.
3. The least-filled hosts are then emptied where their servers fit elsewhere (best fit).
4. Pools of up to ``REPACK_LIMIT`` servers get an improvement pass
   (:mod:`~._repack`): a host's servers go back elsewhere by moves and by swaps with smaller
   servers, until the host is free (or every move is undone).
5. Pools of up to ``BIN_CENTRIC_LIMIT`` servers are also packed one host at a time (each host
   filled with the servers that leave it the least room): on servers that fit together
   exactly (hosts cut in pieces) it needs half the extra hosts of steps 1-3.
6. Pools of up to ``SEARCH_LIMIT`` servers whose packing is still well above the lower bound
   (more than 0.5% and 2 hosts) get an iterated local search (:func:`search`): moves and
   swaps that gather the free room of the least-filled hosts, the improvement pass, random
   swaps, for a bounded number of rounds. Hosts cut in pieces: 1.015-1.03x -> about 1.01x.

Cost: O(n * chunk_hosts) per round, independent of the total number of hosts: 2 million
servers take a few seconds on one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cloudmgr.capacity.planner._kernels import eliminate_bins, first_fit, pack_chunks
from cloudmgr.capacity.planner._repack import concentrate_room, fill_hosts_one_by_one, repack_hosts, shake
from cloudmgr.capacity.planner.bounds import anti_affinity_bound, resource_bounds

CHUNK_HOSTS = 256
ELIMINATION_TRIES = 64
PORTFOLIO_LIMIT = 5000
PORTFOLIO_SEEDS = 4
REPACK_TRIES = 1 << 20  # hosts the improvement pass may try to empty, least filled first…
REPACK_WORK_PER_ITEM = 200  # …within this many server checks per server
REPACK_LIMIT = 20_000  # servers: above, the pass is skipped (it rarely frees a host of a large pool)
BIN_CENTRIC_LIMIT = 8_000  # servers: up to this many, hosts filled one by one are tried too (O(n²))
SHAPE_LEVELS = 8
SEARCH_LIMIT = 20_000  # servers: up to this many, a packing well above the bound gets the search below…
SEARCH_GAP = 0.005  # …when it needs more than this share of hosts above the bound, and 2 hosts or more
SEARCH_ROUNDS = 200  # rounds of the search at most…
SEARCH_STALL = 20  # …and at most this many in a row that free no host
SEARCH_FOCUS = 100  # the servers of this many least-filled hosts are moved in a round
SEARCH_PASSES = 1  # the moves of a round cost at most one pass over those servers and all others
SEARCH_SHAKE = 0.02  # random swaps between rounds, per server

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class PackResult:
    assign: IntArray  # host index (0..hosts-1) of every item; -1 when it fits no empty host
    hosts: int


def pool_bound(demand: IntArray, capacity: tuple[int, int, int], groups: IntArray | None = None) -> int:
    l1, l2 = resource_bounds(demand, capacity)
    aa = anti_affinity_bound(groups) if groups is not None else 0
    return max(*l1, *l2, aa)


def fits_empty_host(demand: IntArray, capacity: tuple[int, int, int]) -> npt.NDArray[np.bool_]:
    cap = np.asarray(capacity, dtype=np.int64)
    result: npt.NDArray[np.bool_] = np.all(demand <= cap, axis=1)
    return result


def _normalise_groups(groups: IntArray | None, n: int) -> IntArray:
    if groups is None:
        return np.full(n, -1, dtype=np.int64)
    g = np.asarray(groups, dtype=np.int64)
    if g.shape[0] and g.max() >= 0:
        # compact the group ids so the kernels' tables stay small
        used = g >= 0
        _, compact = np.unique(g[used], return_inverse=True)
        g = g.copy()
        g[used] = compact
    return g


def renumber(assign: IntArray) -> tuple[IntArray, int]:
    """Renumber the used hosts 0..k-1 keeping their order; -1 stays -1."""
    placed = assign >= 0
    if not placed.any():
        return assign, 0
    used, inverse = np.unique(assign[placed], return_inverse=True)
    out = assign.copy()
    out[placed] = inverse
    return out, int(used.shape[0])


def pack_vectors(
    demand: IntArray,
    capacity: tuple[int, int, int],
    groups: IntArray | None = None,
    *,
    seed: int = 0,
    chunk_hosts: int = CHUNK_HOSTS,
    elimination_tries: int = ELIMINATION_TRIES,
    portfolio_limit: int = PORTFOLIO_LIMIT,
    repack_tries: int = REPACK_TRIES,
    bin_centric_limit: int = BIN_CENTRIC_LIMIT,
    search_rounds: int = SEARCH_ROUNDS,
) -> PackResult:
    """Pack items of shape (n, 3) (integer demands) onto hosts of ``capacity``.

    ``groups`` (optional, shape (n,), -1 for none) are anti-affinity groups: members of
    one group land on distinct hosts. Items larger than an empty host get -1.

    Pools of at most ``portfolio_limit`` items are cheap: they are packed a few more ways
    (other tie-breaking seeds, first fit decreasing by sum and by maximum) and the packing
    with the fewest hosts wins.
    """
    _check_capacity(capacity)
    best = _pack(demand, capacity, groups, seed, chunk_hosts, elimination_tries, repack_tries)
    n = demand.shape[0]
    if 0 < n <= portfolio_limit:
        bound = _fitting_bound(demand, capacity, groups)
        attempts = [("vs", s) for s in range(1, PORTFOLIO_SEEDS)] + [("ffd", "sum"), ("ffd", "max")]
        for kind, arg in attempts:
            if best.hosts <= bound:
                break
            if kind == "vs":
                other = _pack(demand, capacity, groups, seed + int(arg), chunk_hosts, elimination_tries, repack_tries)
            else:
                other = first_fit_decreasing(demand, capacity, groups, by=str(arg))
            if other.hosts < best.hosts:
                best = other
    if n == 0 or n > max(bin_centric_limit, SEARCH_LIMIT):
        return best  # (the bound of a large pool costs time for nothing here)
    bound = _fitting_bound(demand, capacity, groups)
    far = _far_above(best.hosts, bound)
    if best.hosts > bound and bin_centric_limit > 0 and (n <= bin_centric_limit or (far and n <= SEARCH_LIMIT)):
        other = fill_one_by_one(demand, capacity, groups, repack_tries=repack_tries)
        if other.hosts < best.hosts:
            best = other
    if search_rounds > 0 and n <= SEARCH_LIMIT and _far_above(best.hosts, bound):
        best = search(demand, capacity, groups, best, bound, rounds=search_rounds, seed=seed)
    return best


def _far_above(hosts: int, bound: int) -> bool:
    """Whether a packing is worth the search: near the bound, the bound itself is often out of
    reach (on the synthetic mix the planner is within 0.3% of it) and the search would spend
    its rounds for nothing; packings of servers that fit together exactly (hosts cut in pieces)
    come out 1.5-3% above it."""
    return hosts - bound >= 2 and hosts > (1.0 + SEARCH_GAP) * bound


def search(
    demand: IntArray,
    capacity: tuple[int, int, int],
    groups: IntArray | None,
    start: PackResult,
    bound: int,
    *,
    rounds: int = SEARCH_ROUNDS,
    seed: int = 0,
) -> PackResult:
    """Iterated local search from ``start``: each round gathers the free room of the
    least-filled hosts (:func:`~._repack.concentrate_room`), runs the improvement pass to free
    hosts, then makes a few random swaps (:func:`~._repack.shake`) to leave the local optimum.
    The best packing seen wins. Stops at ``bound``, after ``rounds`` rounds, or after
    :data:`SEARCH_STALL` rounds in a row that free no host. Seeded: the same input gives the
    same packing."""
    demand = np.ascontiguousarray(demand, dtype=np.int64)
    n = demand.shape[0]
    capf = np.asarray(capacity, dtype=np.float64)
    dem = demand.astype(np.float64)
    grp = _normalise_groups(groups, n)
    assign = start.assign.copy()
    hosts = start.hosts
    best = start
    stall = 0
    for r in range(rounds):
        if best.hosts <= bound or stall >= SEARCH_STALL:
            break
        focus_items = min(n, max(1, round(n * SEARCH_FOCUS / hosts)))
        concentrate_room(dem, capf, assign, hosts, grp, SEARCH_FOCUS, SEARCH_PASSES * focus_items * (hosts + n))
        repack_hosts(dem, capf, assign, hosts, grp, REPACK_TRIES, REPACK_WORK_PER_ITEM * n)
        assign, hosts = renumber(assign)
        if hosts < best.hosts:
            best = PackResult(assign.copy(), hosts)
            stall = 0
        else:
            stall += 1
        shake(dem, capf, assign, hosts, grp, max(1, round(SEARCH_SHAKE * n)), seed + r)
    return best


def _fitting_bound(demand: IntArray, capacity: tuple[int, int, int], groups: IntArray | None) -> int:
    """The lower bound of the servers that fit an empty host."""
    ok = fits_empty_host(demand, capacity)
    return pool_bound(demand[ok], capacity, None if groups is None else np.asarray(groups)[ok])


def fill_one_by_one(
    demand: IntArray,
    capacity: tuple[int, int, int],
    groups: IntArray | None = None,
    *,
    repack_tries: int = REPACK_TRIES,
) -> PackResult:
    """Hosts filled one at a time (see :func:`~._repack.fill_hosts_one_by_one`), then the
    improvement pass."""
    demand = np.ascontiguousarray(demand, dtype=np.int64)
    _check_capacity(capacity)
    capf = np.asarray(capacity, dtype=np.float64)
    dem = demand.astype(np.float64)
    grp = _normalise_groups(groups, demand.shape[0])
    items = np.flatnonzero(fits_empty_host(demand, capacity)).astype(np.int64)
    assign, hosts = fill_hosts_one_by_one(dem, capf, items, grp)
    hosts = int(hosts)
    if repack_tries > 0 and hosts > 1:
        emptied = repack_hosts(dem, capf, assign, hosts, grp, repack_tries, REPACK_WORK_PER_ITEM * demand.shape[0])
        if emptied:
            assign, hosts = renumber(assign)
    return PackResult(assign, hosts)


def _pack(
    demand: IntArray,
    capacity: tuple[int, int, int],
    groups: IntArray | None,
    seed: int,
    chunk_hosts: int,
    elimination_tries: int,
    repack_tries: int,
) -> PackResult:
    demand = np.ascontiguousarray(demand, dtype=np.int64)
    n = demand.shape[0]
    assign = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return PackResult(assign, 0)
    grp = _normalise_groups(groups, n)
    capf = np.asarray(capacity, dtype=np.float64)
    dem = demand.astype(np.float64)
    share = dem / capf
    size = share.max(axis=1)
    rng = np.random.default_rng(seed)
    # ties in size are broken at random: distinct sizes differ by >= 1/capacity >> 1e-10
    key = size + rng.random(n) * 1e-10
    total = share.sum(axis=1)
    total[total <= 0] = 1.0
    shape = (np.minimum(SHAPE_LEVELS - 1, (share[:, 1] / total * SHAPE_LEVELS).astype(np.int16)) * SHAPE_LEVELS) + (
        np.minimum(SHAPE_LEVELS - 1, (share[:, 2] / total * SHAPE_LEVELS).astype(np.int16))
    )
    shape = shape.astype(np.int16)

    ok = fits_empty_host(demand, capacity)
    pool = np.flatnonzero(ok).astype(np.int64)
    pool = pool[np.argsort(-key[pool], kind="stable")]
    ngroups = int(grp.max()) + 1 if n else 0
    grp_head = np.full(max(ngroups, 1), -1, dtype=np.int64)
    grp_next = np.full(n, -1, dtype=np.int64)
    opened = 0
    while pool.shape[0]:
        bulk = float(share[pool].sum(axis=0).max())
        nchunks = round(bulk / chunk_hosts)
        if nchunks <= 1:
            final = max(1, pool_bound(demand[pool], capacity, grp[pool]))
            bounds = np.array([0, pool.shape[0]], dtype=np.int64)
            flat = pool  # already in decreasing size order
        else:
            final = 0
            flat, bounds = _deal(pool, shape, nchunks)
        over, used = pack_chunks(dem, capf, flat, bounds, final, grp, grp_head, grp_next, assign, opened)
        opened += int(used)
        pool = over[np.argsort(-key[over], kind="stable")] if over.shape[0] else over
    assign, hosts = renumber(assign)
    if elimination_tries > 0 and hosts > 1:
        emptied = eliminate_bins(dem, capf, assign, hosts, grp, elimination_tries)
        if emptied:
            assign, hosts = renumber(assign)
    if repack_tries > 0 and hosts > 1 and n <= REPACK_LIMIT:
        emptied = repack_hosts(dem, capf, assign, hosts, grp, repack_tries, REPACK_WORK_PER_ITEM * n)
        if emptied:
            assign, hosts = renumber(assign)
    return PackResult(assign, hosts)


def _deal(pool: IntArray, shape: npt.NDArray[np.int16], nchunks: int) -> tuple[IntArray, IntArray]:
    """Deal ``pool`` (in decreasing size order) to ``nchunks`` alike chunks.

    Returns the items chunk after chunk, each chunk still in decreasing size order, and
    the chunk boundaries.
    """
    s_order = np.argsort(shape[pool], kind="stable")  # by shape, then size (stable)
    position = np.empty(pool.shape[0], dtype=np.int64)
    position[s_order] = np.arange(pool.shape[0], dtype=np.int64)
    row = position // nchunks
    col = position % nchunks
    chunk_of_pool = np.where((row & 1) == 0, col, nchunks - 1 - col)
    dtype = np.int16 if nchunks < 32000 else np.int32
    order = np.argsort(chunk_of_pool.astype(dtype), kind="stable")
    flat = pool[order]
    counts = np.bincount(chunk_of_pool, minlength=nchunks)
    bounds = np.zeros(nchunks + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    return flat.astype(np.int64), bounds


def first_fit_decreasing(
    demand: IntArray, capacity: tuple[int, int, int], groups: IntArray | None = None, *, by: str = "sum"
) -> PackResult:
    """The baseline: first fit, servers by decreasing size relative to the host (``by`` the
    sum of the three shares, or their maximum)."""
    demand = np.ascontiguousarray(demand, dtype=np.int64)
    _check_capacity(capacity)
    capf = np.asarray(capacity, dtype=np.float64)
    dem = demand.astype(np.float64)
    share = dem / capf
    key = share.sum(axis=1) if by == "sum" else share.max(axis=1)
    order = np.argsort(-key, kind="stable").astype(np.int64)
    order = order[np.all(demand[order] <= np.asarray(capacity), axis=1)]
    grp = _normalise_groups(groups, demand.shape[0])
    assign, used = first_fit(dem, capf, order, grp)
    return PackResult(assign, int(used))


def _check_capacity(capacity: tuple[int, int, int]) -> None:
    if len(capacity) != 3 or min(capacity) < 1:
        raise ValueError(f"capacity must be three positive integers, got {capacity!r}")
