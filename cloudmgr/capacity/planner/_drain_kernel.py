"""The drain planner's greedy pass as one compiled kernel (see ``migration._greedy``).

The same decisions as the NumPy version it replaced, step for step (the drain tests and the
property tests hold it to the rules): per candidate host, its VMs largest first (stable), each to
the best-fitting allowed host, ties to hosts less likely to be drained later; a host whose VMs do
not all fit is left as it was.  Compiled, it plans a 200-hypervisor cloud of 1,641 servers in
about a millisecond instead of 0.12 s of per-VM NumPy calls over every host.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cloudmgr.capacity.planner._kernels import jit


@jit
def greedy_drain(
    cur: Any,  # (V,) int64 current host of each VM
    dem: Any,  # (V, 3) int64
    cap: Any,  # (H, 3) int64
    capf: Any,  # (3,) float64, the largest capacity per resource (at least 1)
    enabled: Any,  # (H,) bool
    zone_of: Any,  # (H,) int64
    group: Any,  # (V,) int64, -1 none
    gcount: Any,  # (G, H) int64: members of each anti-affinity group per host (updated)
    prev_target: Any,  # (V,) int64: the target an earlier plan gave, -1 none
    candidates: Any,  # (C,) int64: hosts to try to empty, in order
    keep_rank: Any,  # (H,) float64
) -> tuple[Any, Any, int]:
    nh = cap.shape[0]
    nv = cur.shape[0]
    load = np.zeros((nh, 3), dtype=np.int64)
    count = np.zeros(nh, dtype=np.int64)
    for i in range(nv):
        h = cur[i]
        count[h] += 1
        for r in range(3):
            load[h, r] += dem[i, r]
    final = cur.copy()
    drained = np.zeros(nh, dtype=np.bool_)
    order = np.empty(candidates.shape[0], dtype=np.int64)
    n_order = 0
    trial_vm = np.empty(nv, dtype=np.int64)
    trial_host = np.empty(nv, dtype=np.int64)
    for c in range(candidates.shape[0]):
        h = candidates[c]
        # its VMs now, largest share of a resource first (a stable sort, as NumPy's)
        n_on = 0
        for i in range(nv):
            if final[i] == h:
                trial_vm[n_on] = i
                n_on += 1
        on_h = trial_vm[:n_on].copy()
        key = np.empty(n_on, dtype=np.float64)
        for k in range(n_on):
            i = on_h[k]
            m = dem[i, 0] / capf[0]
            for r in range(1, 3):
                v = dem[i, r] / capf[r]
                if v > m:
                    m = v
            key[k] = -m
        on_h = on_h[np.argsort(key, kind="mergesort")]
        n_trial = 0
        ok = True
        for k in range(n_on):
            i = on_h[k]
            g = group[i]
            best = -1
            best_score = np.inf
            want = prev_target[i]
            want_fits = False
            for t in range(nh):
                if t == h or not enabled[t] or drained[t] or zone_of[t] != zone_of[h] or count[t] <= 0:
                    continue
                if load[t, 0] + dem[i, 0] > cap[t, 0] or load[t, 1] + dem[i, 1] > cap[t, 1]:
                    continue
                if load[t, 2] + dem[i, 2] > cap[t, 2]:
                    continue
                if g >= 0 and gcount[g, t] > 0:
                    continue
                if t == want:
                    want_fits = True
                slack = (cap[t, 0] - load[t, 0] - dem[i, 0]) / capf[0]
                slack = slack + (cap[t, 1] - load[t, 1] - dem[i, 1]) / capf[1]
                slack = slack + (cap[t, 2] - load[t, 2] - dem[i, 2]) / capf[2]
                score = slack - 1e-6 * keep_rank[t]
                if score < best_score:
                    best_score = score
                    best = t
            if best < 0:
                ok = False
                break
            t = want if want_fits else best
            trial_vm[n_trial] = i
            trial_host[n_trial] = t
            n_trial += 1
            for r in range(3):
                load[t, r] += dem[i, r]
                load[h, r] -= dem[i, r]
            if g >= 0:
                gcount[g, t] += 1
                gcount[g, h] -= 1
        if ok:
            for k in range(n_trial):
                final[trial_vm[k]] = trial_host[k]
            drained[h] = True
            order[n_order] = h
            n_order += 1
        else:
            for k in range(n_trial):
                i = trial_vm[k]
                t = trial_host[k]
                for r in range(3):
                    load[t, r] -= dem[i, r]
                    load[h, r] += dem[i, r]
                g = group[i]
                if g >= 0:
                    gcount[g, t] -= 1
                    gcount[g, h] += 1
    return final, order, n_order
