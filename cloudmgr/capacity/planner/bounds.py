"""Lower bounds on the number of hosts (one resource at a time).

For each resource, with item sizes ``w`` and host capacity ``C``:

* L1 = ceil(sum(w) / C), the continuous bound;
* L2 (Martello and Toth, 1990) = max over K in [0, C/2] of
  ``|J1| + |J2| + max(0, ceil((sum(J3) - (|J2| C - sum(J2))) / C))`` where
  J1 = {w > C-K}, J2 = {C/2 < w <= C-K}, J3 = {K <= w <= C/2}.
  Only the distinct sizes ``<= C/2`` (and 0) need to be tried as K; evaluated vectorised
  with one sort and prefix sums, O(n log n).

A multi-dimensional packing needs at least the largest of these over the resources.
Members of one anti-affinity group need distinct hosts, so the largest group is a bound too.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def l1_bound(sizes: npt.NDArray[np.int64], capacity: int) -> int:
    total = int(sizes.sum())
    return -(-total // capacity) if total > 0 else 0


def l2_bound(sizes: npt.NDArray[np.int64], capacity: int) -> int:
    w = np.sort(sizes[sizes > 0].astype(np.int64))
    n = w.shape[0]
    if n == 0:
        return 0
    c = int(capacity)
    prefix = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(w, out=prefix[1:])
    ks = np.unique(np.concatenate((np.zeros(1, dtype=np.int64), w[2 * w <= c])))
    half = int(np.searchsorted(2 * w, c, side="right"))  # items with w <= C/2 are w[:half]
    upto_c_minus_k = np.searchsorted(w, c - ks, side="right")  # items with w <= C-K
    from_k = np.searchsorted(w, ks, side="left")  # first item with w >= K
    n_j1 = n - upto_c_minus_k
    n_j2 = np.maximum(upto_c_minus_k - half, 0)
    s_j2 = prefix[np.maximum(upto_c_minus_k, half)] - prefix[half]
    s_j3 = prefix[half] - prefix[np.minimum(from_k, half)]
    extra = s_j3 - (n_j2 * c - s_j2)
    values = n_j1 + n_j2 + np.maximum(0, -(-extra // c))
    return int(max(l1_bound(w, c), int(values.max())))


def anti_affinity_bound(groups: npt.NDArray[np.int64]) -> int:
    g = groups[groups >= 0]
    if g.shape[0] == 0:
        return 0
    return int(np.bincount(g).max())


def resource_bounds(
    demand: npt.NDArray[np.int64], capacity: tuple[int, int, int]
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(L1 per resource, L2 per resource) of a pool with ``demand`` of shape (n, 3)."""
    l1 = tuple(l1_bound(demand[:, k], capacity[k]) for k in range(3))
    l2 = tuple(l2_bound(demand[:, k], capacity[k]) for k in range(3))
    return (l1[0], l1[1], l1[2]), (l2[0], l2[1], l2[2])
