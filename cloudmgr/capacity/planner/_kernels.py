"""Numba-compiled kernels of the planner (compiled on first use, cached on disk in this
package's ``__pycache__``; set NUMBA_CACHE_DIR where that is read-only).

Arrays of demands are float64 holding exact integers (vCPUs, MiB), so the SIMD-friendly
float comparisons are exact: every value stays far below 2**53. No fast-math: the same
input gives the same plan on every machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def jit(fn: F) -> F:
    return cast(F, numba.njit(cache=True, nogil=True)(fn))


def jit_inline(fn: F) -> F:
    """For the small steps of the kernels' per-item loops: numba inlines them into the caller
    so that splitting a kernel into named steps costs no call per item."""
    return cast(F, numba.njit(cache=True, nogil=True, inline="always")(fn))


@jit
def _scores(
    r0: Any, r1: Any, r2: Any, nact: int, d0: float, d1: float, d2: float, w0: float, w1: float, w2: float, out: Any
) -> None:
    # Branch-free so that it vectorises: -1 marks a host the item does not fit.
    for b in range(nact):
        ok = (r0[b] >= d0) & (r1[b] >= d1) & (r2[b] >= d2)
        s = d0 * w0 * r0[b] + d1 * w1 * r1[b] + d2 * w2 * r2[b]
        out[b] = s if ok else -1.0


@jit
def vector_schedule(
    dem: Any, cap: Any, items: Any, nbins: int, groups: Any, grp_head: Any, grp_next: Any, assign: Any, bin_base: int
) -> Any:
    """Place ``items`` (already in decreasing size order) into ``nbins`` empty hosts, all open at once.

    Each item goes to the host where it fits that maximises the dot product of its demand
    with the host's remaining capacity, each resource weighted by 1 / (its average load per
    host): big items spread over the hosts, complementary items meet, the small ones last
    fill the gaps. Anti-affinity: a host already holding a member of the item's group is
    skipped. Returns the items that fit no host (the overflow).
    """
    n = items.shape[0]
    w0, w1, w2 = _resource_weights(dem, cap, items, nbins)
    r0 = np.full(nbins, cap[0])
    r1 = np.full(nbins, cap[1])
    r2 = np.full(nbins, cap[2])
    host = np.arange(nbins)  # host at each active slot
    slot = np.arange(nbins)  # active slot of each host
    nact = nbins
    sc = np.empty(nbins)
    smin = _suffix_minima(dem, items)
    over = np.empty(n, dtype=np.int64)
    nover = 0
    for t in range(n):
        # every 32 items only: the sweep costs O(active hosts) and hosts fill up slowly
        if (t & 31) == 0:
            nact = _retire_full_hosts(r0, r1, r2, host, slot, nact, smin[t, 0], smin[t, 1], smin[t, 2])
        i = items[t]
        d0 = dem[i, 0]
        d1 = dem[i, 1]
        d2 = dem[i, 2]
        _scores(r0, r1, r2, nact, d0, d1, d2, w0, w1, w2, sc)
        g = groups[i]
        if g >= 0:
            _exclude_group_hosts(sc, g, grp_head, grp_next, assign, bin_base, nbins, slot, nact)
        bb = _best_slot(sc, nact)
        if bb >= 0:
            assign[i] = bin_base + host[bb]
            r0[bb] -= d0
            r1[bb] -= d1
            r2[bb] -= d2
            if g >= 0:
                grp_next[i] = grp_head[g]
                grp_head[g] = i
        else:
            over[nover] = i
            nover += 1
    return over[:nover]


@jit
def _resource_weights(dem: Any, cap: Any, items: Any, nbins: int) -> tuple[float, float, float]:
    """weight_k = 1 / (cap_k * average load_k per host) / cap_k; 0 for a resource no item asks for."""
    tot0 = 0.0
    tot1 = 0.0
    tot2 = 0.0
    for t in range(items.shape[0]):
        i = items[t]
        tot0 += dem[i, 0]
        tot1 += dem[i, 1]
        tot2 += dem[i, 2]
    w0 = nbins / (tot0 * cap[0]) if tot0 > 0 else 0.0
    w1 = nbins / (tot1 * cap[1]) if tot1 > 0 else 0.0
    w2 = nbins / (tot2 * cap[2]) if tot2 > 0 else 0.0
    return w0, w1, w2


@jit
def _suffix_minima(dem: Any, items: Any) -> Any:
    """Row t: the smallest demand of each resource among ``items[t:]`` (row n: infinity).

    A host with less free than these in any resource can take none of the items still to
    come, so the kernels close it for good and their searches stay short.
    """
    n = items.shape[0]
    smin = np.empty((n + 1, 3))
    for k in range(3):
        smin[n, k] = np.inf
    for t in range(n - 1, -1, -1):
        i = items[t]
        for k in range(3):
            v = dem[i, k]
            smin[t, k] = v if v < smin[t + 1, k] else smin[t + 1, k]
    return smin


@jit_inline
def _retire_full_hosts(
    r0: Any, r1: Any, r2: Any, host: Any, slot: Any, nact: int, m0: float, m1: float, m2: float
) -> int:
    """Swap the hosts that can take none of the remaining items (free below ``m0, m1, m2``)
    behind the active slots; returns the new number of active slots."""
    a = 0
    while a < nact:
        if r0[a] < m0 or r1[a] < m1 or r2[a] < m2:
            nact -= 1
            r0[a], r0[nact] = r0[nact], r0[a]
            r1[a], r1[nact] = r1[nact], r1[a]
            r2[a], r2[nact] = r2[nact], r2[a]
            ha = host[a]
            hb = host[nact]
            host[a] = hb
            host[nact] = ha
            slot[hb] = a
            slot[ha] = nact
        else:
            a += 1
    return nact


@jit_inline
def _exclude_group_hosts(
    sc: Any, g: int, grp_head: Any, grp_next: Any, assign: Any, bin_base: int, nbins: int, slot: Any, nact: int
) -> None:
    """Anti-affinity: mark as not fitting every active host of this round that already holds
    a member of group ``g`` (members placed in earlier rounds are on other hosts)."""
    j = grp_head[g]
    while j >= 0:
        b = assign[j] - bin_base
        if b >= 0 and b < nbins:
            s = slot[b]
            if s < nact:
                sc[s] = -1.0
        j = grp_next[j]


@jit_inline
def _best_slot(sc: Any, nact: int) -> int:
    """The active slot with the highest score, the first on ties; -1 when no host fits."""
    best = -0.5
    bb = -1
    for a in range(nact):
        if sc[a] > best:
            best = sc[a]
            bb = a
    return bb


@jit
def pack_chunks(
    dem: Any,
    cap: Any,
    flat: Any,
    bounds: Any,
    final_bins: int,
    groups: Any,
    grp_head: Any,
    grp_next: Any,
    assign: Any,
    bin_base: int,
) -> Any:
    """Pack each chunk ``flat[bounds[j]:bounds[j+1]]`` into floor(its continuous bound) hosts.

    With ``final_bins > 0`` there is one chunk and it gets that many hosts. Returns
    (overflow items of all chunks, hosts opened).
    """
    nchunks = bounds.shape[0] - 1
    over_all = np.empty(flat.shape[0], dtype=np.int64)
    nover = 0
    opened = 0
    for j in range(nchunks):
        items = flat[bounds[j] : bounds[j + 1]]
        if items.shape[0] == 0:
            continue
        if final_bins > 0:
            nb = final_bins
        else:
            mx = 0.0
            for k in range(3):
                s = 0.0
                for t in range(items.shape[0]):
                    s += dem[items[t], k]
                s /= cap[k]
                if s > mx:
                    mx = s
            nb = int(np.floor(mx))
            if nb < 1:
                nb = 1
        over = vector_schedule(dem, cap, items, nb, groups, grp_head, grp_next, assign, bin_base + opened)
        for t in range(over.shape[0]):
            over_all[nover] = over[t]
            nover += 1
        opened += nb
    return over_all[:nover], opened


@jit
def eliminate_bins(dem: Any, cap: Any, assign: Any, nbins: int, groups: Any, max_tries: int) -> int:
    """Try to empty the least-filled hosts by moving their servers into the others (best fit).

    ``assign`` holds host indices 0..nbins-1 and is updated in place; emptied hosts are left
    empty (the caller renumbers). Returns how many hosts were emptied.
    """
    n = assign.shape[0]
    load, count = _host_loads(dem, assign, nbins)
    gstart, gmem = _group_members(groups)
    order = _hosts_by_fill(load, cap, nbins)
    closed = np.zeros(nbins, dtype=np.bool_)
    moved_item = np.empty(n, dtype=np.int64)
    moved_to = np.empty(n, dtype=np.int64)
    emptied = 0
    tries = min(max_tries, nbins - 1)
    for t in range(tries):
        c = order[t]
        if count[c] == 0:
            continue
        nmoved, ok = _move_out(dem, cap, assign, load, count, closed, groups, gstart, gmem, c, moved_item, moved_to)
        if ok:
            closed[c] = True
            count[c] = 0
            emptied += 1
            for a in range(nmoved):
                count[moved_to[a]] += 1
        else:
            # all or nothing: a host left half-emptied saves nothing and costs migrations
            _undo_moves(dem, assign, load, c, moved_item, moved_to, nmoved)
    return emptied


@jit
def _host_loads(dem: Any, assign: Any, nbins: int) -> tuple[Any, Any]:
    """Per host: the summed demand of its items (nbins, 3) and how many items it holds."""
    load = np.zeros((nbins, 3))
    count = np.zeros(nbins, dtype=np.int64)
    for i in range(assign.shape[0]):
        b = assign[i]
        if b >= 0:
            count[b] += 1
            for k in range(3):
                load[b, k] += dem[i, k]
    return load, count


@jit
def _group_members(groups: Any) -> tuple[Any, Any]:
    """The members of each anti-affinity group in CSR form: group g's items are
    ``gmem[gstart[g]:gstart[g + 1]]``, so a conflict check reads only that group."""
    n = groups.shape[0]
    ng = 0
    for i in range(n):
        if groups[i] + 1 > ng:
            ng = groups[i] + 1
    gstart = np.zeros(ng + 1, dtype=np.int64)
    for i in range(n):
        if groups[i] >= 0:
            gstart[groups[i] + 1] += 1
    for g in range(ng):
        gstart[g + 1] += gstart[g]
    gpos = gstart[:-1].copy()
    gmem = np.empty(gstart[ng], dtype=np.int64)
    for i in range(n):
        g = groups[i]
        if g >= 0:
            gmem[gpos[g]] = i
            gpos[g] += 1
    return gstart, gmem


@jit
def _hosts_by_fill(load: Any, cap: Any, nbins: int) -> Any:
    """Hosts from the least to the most filled, a host's fill being its fullest resource."""
    fill = np.empty(nbins)
    for b in range(nbins):
        f = 0.0
        for k in range(3):
            v = load[b, k] / cap[k]
            if v > f:
                f = v
        fill[b] = f
    return np.argsort(fill)


@jit
def _items_largest_first(dem: Any, cap: Any, assign: Any, c: int, nitems: int) -> Any:
    """The ``nitems`` items on host ``c``, by decreasing summed share of the host."""
    its = np.empty(nitems, dtype=np.int64)
    m = 0
    for i in range(assign.shape[0]):
        if assign[i] == c:
            its[m] = i
            m += 1
    sizes = np.empty(its.shape[0])
    for a in range(its.shape[0]):
        i = its[a]
        sizes[a] = -(dem[i, 0] / cap[0] + dem[i, 1] / cap[1] + dem[i, 2] / cap[2])
    return its[np.argsort(sizes)]


@jit
def _move_out(
    dem: Any,
    cap: Any,
    assign: Any,
    load: Any,
    count: Any,
    closed: Any,
    groups: Any,
    gstart: Any,
    gmem: Any,
    c: int,
    moved_item: Any,
    moved_to: Any,
) -> tuple[int, bool]:
    """Move host ``c``'s items, largest first, each to its best-fitting other host, recording
    each move in ``moved_item``/``moved_to``. Stops at the first item that fits nowhere.
    Returns (moves made, whether the host is now empty)."""
    its = _items_largest_first(dem, cap, assign, c, count[c])
    nmoved = 0
    for a in range(its.shape[0]):
        i = its[a]
        bb = _best_fit_host(dem, cap, assign, load, count, closed, groups, gstart, gmem, i, c)
        if bb < 0:
            return nmoved, False
        assign[i] = bb
        for k in range(3):
            load[bb, k] += dem[i, k]
            load[c, k] -= dem[i, k]
        moved_item[nmoved] = i
        moved_to[nmoved] = bb
        nmoved += 1
    return nmoved, True


@jit_inline
def _best_fit_host(
    dem: Any,
    cap: Any,
    assign: Any,
    load: Any,
    count: Any,
    closed: Any,
    groups: Any,
    gstart: Any,
    gmem: Any,
    i: int,
    c: int,
) -> int:
    """The open, non-empty host other than ``c`` where item ``i`` fits leaving the least
    summed slack, skipping hosts that hold a member of its group; -1 when none."""
    g = groups[i]
    best = np.inf
    bb = -1
    for b in range(load.shape[0]):
        if b == c or closed[b] or count[b] == 0:
            continue
        if load[b, 0] + dem[i, 0] > cap[0] or load[b, 1] + dem[i, 1] > cap[1] or load[b, 2] + dem[i, 2] > cap[2]:
            continue
        slack = 0.0
        for k in range(3):
            slack += (cap[k] - load[b, k] - dem[i, k]) / cap[k]
        # the group check walks the group's members, so it runs only for a would-be best host
        if slack < best and not (g >= 0 and _group_on_host(gstart, gmem, assign, g, i, b)):
            best = slack
            bb = b
    return bb


@jit_inline
def _group_on_host(gstart: Any, gmem: Any, assign: Any, g: int, i: int, b: int) -> bool:
    """Whether another member of item ``i``'s group ``g`` is on host ``b``."""
    for q in range(gstart[g], gstart[g + 1]):
        j = gmem[q]
        if j != i and assign[j] == b:
            return True
    return False


@jit
def _undo_moves(dem: Any, assign: Any, load: Any, c: int, moved_item: Any, moved_to: Any, nmoved: int) -> None:
    """Put the first ``nmoved`` recorded moves back on host ``c``."""
    for a in range(nmoved):
        i = moved_item[a]
        b = moved_to[a]
        assign[i] = c
        for k in range(3):
            load[b, k] -= dem[i, k]
            load[c, k] += dem[i, k]


@jit
def first_fit(dem: Any, cap: Any, order: Any, groups: Any) -> Any:
    """First fit in the given order (the FFD baseline when ``order`` is by decreasing size).

    A segment tree keeps, per node, the largest remaining capacity of each resource below
    it, so the leftmost host that fits is usually found in O(log hosts). Anti-affinity: a
    host holding a member of the item's group is passed over. Returns (assign, hosts).
    """
    n = order.shape[0]
    size = 1
    while size < max(n, 1):
        size *= 2
    tree = _empty_hosts_tree(size, cap)
    assign = np.full(dem.shape[0], -1, dtype=np.int64)
    grp_head, grp_next = _group_lists(groups, dem.shape[0])
    stack = np.empty(128, dtype=np.int64)
    smin = _suffix_minima(dem, order)
    used = 0
    for t in range(n):
        # every 4096 items only: the sweep costs O(hosts used)
        if (t & 4095) == 0 and t > 0:
            _close_full_leaves(tree, size, used, smin[t, 0], smin[t, 1], smin[t, 2])
        i = order[t]
        g = groups[i]
        leaf = _leftmost_fit(tree, size, stack, dem, i, g, grp_head, grp_next, assign)
        if leaf < 0:
            continue  # larger than an empty host
        b = leaf - size
        assign[i] = b
        if g >= 0:
            grp_next[i] = grp_head[g]
            grp_head[g] = i
        if b + 1 > used:
            used = b + 1
        for k in range(3):
            tree[leaf, k] -= dem[i, k]
        if tree[leaf, 0] < smin[t + 1, 0] or tree[leaf, 1] < smin[t + 1, 1] or tree[leaf, 2] < smin[t + 1, 2]:
            _close_leaf(tree, leaf)
        else:
            _update_up(tree, leaf)
    return assign, used


@jit
def _empty_hosts_tree(size: int, cap: Any) -> Any:
    """The segment tree over ``size`` empty hosts: every node holds the full capacity."""
    tree = np.empty((2 * size, 3))
    for v in range(2 * size):
        for k in range(3):
            tree[v, k] = cap[k]
    return tree


@jit
def _group_lists(groups: Any, nitems: int) -> tuple[Any, Any]:
    """Empty linked lists of the placed members of each anti-affinity group: the head item
    per group and the next item per item (-1 ends a list)."""
    ng = 0
    for i in range(groups.shape[0]):
        if groups[i] + 1 > ng:
            ng = groups[i] + 1
    grp_head = np.full(max(ng, 1), -1, dtype=np.int64)
    grp_next = np.full(nitems, -1, dtype=np.int64)
    return grp_head, grp_next


@jit
def _close_full_leaves(tree: Any, size: int, used: int, m0: float, m1: float, m2: float) -> None:
    """Close the open hosts among the first ``used`` with less free than ``m0, m1, m2`` in
    any resource: none of the items still to come fits them."""
    for b in range(used):
        leaf = size + b
        if tree[leaf, 0] >= 0 and (tree[leaf, 0] < m0 or tree[leaf, 1] < m1 or tree[leaf, 2] < m2):
            _close_leaf(tree, leaf)


@jit_inline
def _leftmost_fit(
    tree: Any, size: int, stack: Any, dem: Any, i: int, g: int, grp_head: Any, grp_next: Any, assign: Any
) -> int:
    """The leaf of the leftmost host where item ``i`` fits and no member of its group ``g``
    is; -1 when none. Depth-first, left child first, skipping subtrees too full for it."""
    sp = 1
    stack[0] = 1
    while sp > 0:
        sp -= 1
        v: int = stack[sp]
        if tree[v, 0] < dem[i, 0] or tree[v, 1] < dem[i, 1] or tree[v, 2] < dem[i, 2]:
            continue
        if v >= size:
            if g >= 0 and _group_member_on(grp_head, grp_next, assign, g, v - size):
                continue
            return v
        stack[sp] = 2 * v + 1
        sp += 1
        stack[sp] = 2 * v
        sp += 1
    return -1


@jit_inline
def _group_member_on(grp_head: Any, grp_next: Any, assign: Any, g: int, b: int) -> bool:
    """Whether a placed member of group ``g`` is on host ``b``."""
    j = grp_head[g]
    while j >= 0:
        if assign[j] == b:
            return True
        j = grp_next[j]
    return False


@jit
def _update_up(tree: Any, leaf: int) -> None:
    v = leaf // 2
    while v >= 1:
        for k in range(3):
            x = tree[2 * v, k]
            y = tree[2 * v + 1, k]
            tree[v, k] = x if x > y else y
        v //= 2


@jit
def _close_leaf(tree: Any, leaf: int) -> None:
    for k in range(3):
        tree[leaf, k] = -1.0
    _update_up(tree, leaf)
