"""The planner's improvement pass (numba): empty hosts by moving and swapping servers.

A packing that is a little above the optimum has its spare room spread thinly over many
hosts: no server of the least-filled host fits anywhere whole. This pass takes a host's servers
out (into a *pool*) and puts each back elsewhere, largest first: where it fits (best fit), or
else in place of a smaller server of a host where the swap fits, that smaller server going into
the pool. Servers in the pool only get smaller, down to the small ones that fill the last gaps.
When the pool empties the host is free; when it does not within a number of steps, every move
is undone. The work is bounded (``budget`` server checks), so the pass costs at most a fixed
share of the packing, and the same input gives the same result everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cloudmgr.capacity.planner._kernels import _group_members, _host_loads, jit, jit_inline

MAX_STEPS = 64  # moves and swaps while emptying one host


@jit
def repack_hosts(dem: Any, cap: Any, assign: Any, nbins: int, groups: Any, max_tries: int, budget: int) -> int:
    """Try to empty up to ``max_tries`` hosts, least filled first (``assign`` updated in place,
    emptied hosts left empty for the caller to renumber). Returns how many were emptied."""
    n = assign.shape[0]
    load, count = _host_loads(dem, assign, nbins)
    gstart, gmem = _group_members(groups)
    share = np.empty(n)
    for i in range(n):
        share[i] = dem[i, 0] / cap[0] + dem[i, 1] / cap[1] + dem[i, 2] / cap[2]
    head = np.full(nbins, -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    prv = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        if assign[i] >= 0:
            _link(head, nxt, prv, i, assign[i])
    fill = np.empty(nbins)
    for b in range(nbins):
        fill[b] = load[b, 0] / cap[0] + load[b, 1] / cap[1] + load[b, 2] / cap[2]
    order = np.argsort(fill)
    closed = np.zeros(nbins, dtype=np.bool_)
    pool = np.empty(n, dtype=np.int64)
    log_item = np.empty(n + 2 * MAX_STEPS, dtype=np.int64)
    log_from = np.empty(n + 2 * MAX_STEPS, dtype=np.int64)
    work = np.zeros(1, dtype=np.int64)
    emptied = 0
    for t in range(min(max_tries, nbins - 1)):
        c = order[t]
        if count[c] == 0:
            continue
        if work[0] > budget:
            break
        # the host's servers into the pool
        npool = 0
        nlog = 0
        closed[c] = True
        while head[c] >= 0:
            i = head[c]
            log_item[nlog] = i
            log_from[nlog] = c
            nlog += 1
            _move(dem, assign, load, count, head, nxt, prv, i, -1)
            pool[npool] = i
            npool += 1
        steps = 0
        while npool > 0 and steps < MAX_STEPS and work[0] <= budget:
            steps += 1
            _sort_by_share_desc(pool, npool, share)
            # the largest server of the pool that fits somewhere goes there (best fit)
            done = False
            for a in range(npool):
                i = pool[a]
                b = _best_fit(dem, cap, assign, load, count, closed, groups, gstart, gmem, i, work)
                if b >= 0:
                    _move(dem, assign, load, count, head, nxt, prv, i, b)
                    log_item[nlog] = i
                    log_from[nlog] = -1
                    nlog += 1
                    pool[a] = pool[npool - 1]
                    npool -= 1
                    done = True
                    break
            if done:
                continue
            # else the largest that can takes the place of a smaller server
            for a in range(npool):
                i = pool[a]
                j = _best_swap(dem, cap, assign, load, count, closed, groups, gstart, gmem, share, head, nxt, i, work)
                if j < 0:
                    continue
                b = assign[j]
                _move(dem, assign, load, count, head, nxt, prv, j, -1)
                log_item[nlog] = j
                log_from[nlog] = b
                nlog += 1
                _move(dem, assign, load, count, head, nxt, prv, i, b)
                log_item[nlog] = i
                log_from[nlog] = -1
                nlog += 1
                pool[a] = j
                done = True
                break
            if not done:
                break
        if npool == 0:
            emptied += 1
            continue
        # undo, last move first: every server back where it was
        for a in range(nlog - 1, -1, -1):
            i = log_item[a]
            _move(dem, assign, load, count, head, nxt, prv, i, log_from[a])
        closed[c] = False
    return emptied


@jit_inline
def _link(head: Any, nxt: Any, prv: Any, i: int, b: int) -> None:
    nxt[i] = head[b]
    prv[i] = -1
    if head[b] >= 0:
        prv[head[b]] = i
    head[b] = i


@jit
def _move(dem: Any, assign: Any, load: Any, count: Any, head: Any, nxt: Any, prv: Any, i: int, to: int) -> None:
    """Move server ``i`` to host ``to`` (-1: into the pool), keeping loads and lists."""
    b = assign[i]
    if b >= 0:
        if prv[i] >= 0:
            nxt[prv[i]] = nxt[i]
        else:
            head[b] = nxt[i]
        if nxt[i] >= 0:
            prv[nxt[i]] = prv[i]
        count[b] -= 1
        for k in range(3):
            load[b, k] -= dem[i, k]
    assign[i] = to
    if to >= 0:
        _link(head, nxt, prv, i, to)
        count[to] += 1
        for k in range(3):
            load[to, k] += dem[i, k]


@jit_inline
def _group_elsewhere(gstart: Any, gmem: Any, assign: Any, g: int, i: int, skip: int, b: int) -> bool:
    """Whether a member of group ``g`` other than ``i`` and ``skip`` is on host ``b``."""
    for q in range(gstart[g], gstart[g + 1]):
        m = gmem[q]
        if m != i and m != skip and assign[m] == b:
            return True
    return False


@jit
def _best_fit(
    dem: Any, cap: Any, assign: Any, load: Any, count: Any, closed: Any, groups: Any, gstart: Any, gmem: Any,
    i: int, work: Any,
) -> int:  # fmt: skip
    """The open, non-empty host where server ``i`` fits with the least room left; -1 if none."""
    g = groups[i]
    best = np.inf
    bb = -1
    nbins = load.shape[0]
    work[0] += nbins
    for b in range(nbins):
        if closed[b] or count[b] == 0:
            continue
        if load[b, 0] + dem[i, 0] > cap[0] or load[b, 1] + dem[i, 1] > cap[1] or load[b, 2] + dem[i, 2] > cap[2]:
            continue
        slack = 0.0
        for k in range(3):
            slack += (cap[k] - load[b, k] - dem[i, k]) / cap[k]
        if slack < best and not (g >= 0 and _group_elsewhere(gstart, gmem, assign, g, i, -1, b)):
            best = slack
            bb = b
    return bb


@jit
def _best_swap(
    dem: Any, cap: Any, assign: Any, load: Any, count: Any, closed: Any, groups: Any, gstart: Any, gmem: Any,
    share: Any, head: Any, nxt: Any, i: int, work: Any,
) -> int:  # fmt: skip
    """A smaller server ``j`` whose place server ``i`` can take (same host, capacities and
    anti-affinity kept), the one leaving its host the least room; -1 if none."""
    g = groups[i]
    best = np.inf
    bj = -1
    nbins = load.shape[0]
    for b in range(nbins):
        if closed[b] or count[b] == 0:
            continue
        # room the host would need freed, per resource
        n0 = load[b, 0] + dem[i, 0] - cap[0]
        n1 = load[b, 1] + dem[i, 1] - cap[1]
        n2 = load[b, 2] + dem[i, 2] - cap[2]
        room = (cap[0] - load[b, 0]) / cap[0] + (cap[1] - load[b, 1]) / cap[1] + (cap[2] - load[b, 2]) / cap[2]
        j = head[b]
        while j >= 0:
            work[0] += 1
            if share[j] < share[i] and dem[j, 0] >= n0 and dem[j, 1] >= n1 and dem[j, 2] >= n2:
                left = room - share[i] + share[j]
                if left < best and not (g >= 0 and _group_elsewhere(gstart, gmem, assign, g, i, j, b)):
                    best = left
                    bj = j
            j = nxt[j]
    return bj


@jit
def _sort_by_share_desc(pool: Any, npool: int, share: Any) -> None:
    for x in range(1, npool):
        v = pool[x]
        y = x - 1
        while y >= 0 and share[pool[y]] < share[v]:
            pool[y + 1] = pool[y]
            y -= 1
        pool[y + 1] = v


@jit
def fill_hosts_one_by_one(dem: Any, cap: Any, items: Any, groups: Any) -> tuple[Any, int]:
    """Bin-centric packing: fill one host at a time, each time with the server that fits and
    leaves the host's free room closest to nothing (least squares over the resources'
    shares); open the next host when none fits. O(items²): for small pools, where it often
    beats the item-centric packers on servers that fit together exactly (hosts cut in
    pieces). Anti-affinity: a group's members go to distinct hosts. Returns (assign, hosts)."""
    n = items.shape[0]
    rem = items.copy()
    nrem = n
    assign = np.full(dem.shape[0], -1, dtype=np.int64)
    ngroups = 0
    for t in range(n):
        if groups[items[t]] + 1 > ngroups:
            ngroups = groups[items[t]] + 1
    on_host = np.full(max(ngroups, 1), -1, dtype=np.int64)  # the last host a group's member went to
    hosts = 0
    r = np.empty(3)
    while nrem > 0:
        for k in range(3):
            r[k] = cap[k]
        placed = 0
        while True:
            best = np.inf
            bt = -1
            for t in range(nrem):
                i = rem[t]
                if dem[i, 0] <= r[0] and dem[i, 1] <= r[1] and dem[i, 2] <= r[2]:
                    g = groups[i]
                    if g >= 0 and on_host[g] == hosts:
                        continue
                    a = (r[0] - dem[i, 0]) / cap[0]
                    b = (r[1] - dem[i, 1]) / cap[1]
                    c = (r[2] - dem[i, 2]) / cap[2]
                    s = a * a + b * b + c * c
                    if s < best:
                        best = s
                        bt = t
            if bt < 0:
                break
            i = rem[bt]
            assign[i] = hosts
            if groups[i] >= 0:
                on_host[groups[i]] = hosts
            for k in range(3):
                r[k] -= dem[i, k]
            nrem -= 1
            rem[bt] = rem[nrem]
            placed += 1
        if placed == 0:  # what is left fits no empty host
            break
        hosts += 1
    return assign, hosts


@jit
def concentrate_room(dem: Any, cap: Any, assign: Any, nbins: int, groups: Any, focus: int, budget: int) -> int:
    """Local search that gathers the hosts' free room on fewer hosts, so that the improvement
    pass can then empty them: moves of a server to another host and swaps of two servers of
    different hosts, each kept when it raises the sum over hosts and resources of the squared
    load shares (a fuller host gets fuller, an emptier one emptier), capacities and
    anti-affinity kept. Passes over all pairs of servers until one changes nothing or
    ``budget`` pair checks are spent. Returns the number of moves and swaps made."""
    n = assign.shape[0]
    load, count = _host_loads(dem, assign, nbins)
    gstart, gmem = _group_members(groups)
    s = np.empty((n, 3))
    for i in range(n):
        for k in range(3):
            s[i, k] = dem[i, k] / cap[k]
    ls = np.empty((nbins, 3))
    for b in range(nbins):
        for k in range(3):
            ls[b, k] = load[b, k] / cap[k]
    items = np.flatnonzero(assign >= 0)
    m = items.shape[0]
    work = 0
    changed = 0
    fill = np.empty(nbins)
    while work < budget:
        before = changed
        # the servers of the ``focus`` least-filled hosts, each tried against every other server
        for b in range(nbins):
            fill[b] = ls[b, 0] + ls[b, 1] + ls[b, 2] if count[b] > 0 else np.inf
        low = np.argsort(fill)[: min(focus, nbins)]
        mine = np.zeros(nbins, dtype=np.bool_)
        for b in low:
            mine[b] = True
        for x in range(m):
            i = items[x]
            if not mine[assign[i]]:
                continue
            a = assign[i]
            gi = groups[i]
            # moves of i to another host
            bestd = 1e-12
            bb = -1
            bj = -1
            work += nbins
            for b in range(nbins):
                if b == a or count[b] == 0:
                    continue
                if (
                    load[b, 0] + dem[i, 0] > cap[0]
                    or load[b, 1] + dem[i, 1] > cap[1]
                    or load[b, 2] + dem[i, 2] > cap[2]
                ):
                    continue
                dl = 0.0
                for k in range(3):
                    dl += s[i, k] * (ls[b, k] - ls[a, k] + s[i, k])
                if dl > bestd and not (gi >= 0 and _group_elsewhere(gstart, gmem, assign, gi, i, -1, b)):
                    bestd = dl
                    bb = b
            # swaps of i with a server j of another host
            work += m
            for y in range(m):
                j = items[y]
                b = assign[j]
                if b == a:
                    continue
                f = True
                dl = 0.0
                for k in range(3):
                    dk = s[j, k] - s[i, k]  # what host a gains
                    if dem[j, k] - dem[i, k] > cap[k] - load[a, k] or dem[i, k] - dem[j, k] > cap[k] - load[b, k]:
                        f = False
                        break
                    dl += dk * (ls[a, k] - ls[b, k] + dk)
                if f and dl > bestd:
                    gj = groups[j]
                    if gi >= 0 and _group_elsewhere(gstart, gmem, assign, gi, i, j, b):
                        continue
                    if gj >= 0 and _group_elsewhere(gstart, gmem, assign, gj, j, i, a):
                        continue
                    bestd = dl
                    bb = b
                    bj = j
            if bb < 0:
                continue
            changed += 1
            if bj < 0:
                _shift(dem, s, assign, load, ls, count, i, bb)
            else:
                _shift(dem, s, assign, load, ls, count, i, bb)
                _shift(dem, s, assign, load, ls, count, bj, a)
            if work >= budget:
                break
        if changed == before:
            break
    return changed


@jit_inline
def _shift(dem: Any, s: Any, assign: Any, load: Any, ls: Any, count: Any, i: int, to: int) -> None:
    a = assign[i]
    count[a] -= 1
    count[to] += 1
    for k in range(3):
        load[a, k] -= dem[i, k]
        load[to, k] += dem[i, k]
        ls[a, k] -= s[i, k]
        ls[to, k] += s[i, k]
    assign[i] = to


@jit
def shake(dem: Any, cap: Any, assign: Any, nbins: int, groups: Any, swaps: int, seed: int) -> int:
    """``swaps`` random swaps of two servers of different hosts that keep capacities and
    anti-affinity, whatever they do to the packing: to leave a local optimum of
    :func:`concentrate_room`. Seeded; returns the swaps made."""
    np.random.seed(seed)
    load, _ = _host_loads(dem, assign, nbins)
    gstart, gmem = _group_members(groups)
    items = np.flatnonzero(assign >= 0)
    m = items.shape[0]
    made = 0
    for _ in range(swaps):
        i = items[np.random.randint(m)]
        a = assign[i]
        start = np.random.randint(m)
        for y in range(m):
            j = items[(start + y) % m]
            b = assign[j]
            if b == a:
                continue
            f = True
            for k in range(3):
                if dem[j, k] - dem[i, k] > cap[k] - load[a, k] or dem[i, k] - dem[j, k] > cap[k] - load[b, k]:
                    f = False
                    break
            if not f:
                continue
            if groups[i] >= 0 and _group_elsewhere(gstart, gmem, assign, groups[i], i, j, b):
                continue
            if groups[j] >= 0 and _group_elsewhere(gstart, gmem, assign, groups[j], j, i, a):
                continue
            for k in range(3):
                load[a, k] += dem[j, k] - dem[i, k]
                load[b, k] += dem[i, k] - dem[j, k]
            assign[i] = b
            assign[j] = a
            made += 1
            break
    return made
