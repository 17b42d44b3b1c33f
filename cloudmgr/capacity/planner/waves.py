"""Migration waves: one department per wave, at most ``max_wave`` servers, in a fixed order.

Departments come in the order of their names (servers without a department last); inside a
department servers are ordered by destination host, then by their order in the inventory,
so a wave fills few hosts and the same input always gives the same waves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from cloudmgr.capacity.planner._kernels import jit


def build_waves(
    names: list[str] | npt.NDArray[np.object_],
    department: npt.NDArray[np.int64],
    department_names: list[str],
    host: npt.NDArray[np.int64],
    items: npt.NDArray[np.int64],
    max_wave: int,
) -> tuple[list[list[str]], list[str]]:
    """Waves of the ``items`` (indices into ``names``): (names per wave, department of each wave)."""
    if max_wave < 1:
        raise ValueError("max_wave must be at least 1")
    if items.shape[0] == 0:
        return [], []
    if (np.diff(items) <= 0).any():
        items = np.unique(items)
    # by department, then host, then inventory order: one key, sorted stably (the items ascend)
    hosts = int(host[items].max()) + 1
    key = department[items] * hosts + host[items]
    size = int(key.max()) + 1
    order = items[_stable_order(key, size) if size <= 4 * key.shape[0] else np.argsort(key, kind="stable")]
    depts = department[order]
    cuts = np.flatnonzero(np.diff(depts)) + 1
    starts = np.concatenate(([0], cuts)).tolist()
    ends = np.concatenate((cuts, [order.shape[0]])).tolist()
    ordered: list[str] = np.asarray(names, dtype=object)[order].tolist()
    waves: list[list[str]] = []
    labels: list[str] = []
    for s, e in zip(starts, ends, strict=True):
        label = department_names[int(depts[s])]
        for w in range(s, e, max_wave):
            waves.append(ordered[w : min(e, w + max_wave)])
            labels.append(label)
    return waves, labels


@jit
def _stable_order(key: Any, size: int) -> Any:
    """``np.argsort(key, kind="stable")`` for keys in 0..size-1, by counting: O(n + size)."""
    start = np.zeros(size + 1, dtype=np.int64)
    for t in range(key.shape[0]):
        start[key[t] + 1] += 1
    for v in range(size):
        start[v + 1] += start[v]
    order = np.empty(key.shape[0], dtype=np.int64)
    for t in range(key.shape[0]):
        order[start[key[t]]] = t
        start[key[t]] += 1
    return order
