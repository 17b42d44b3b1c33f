"""Synthetic server inventories for tests and benchmarks (seeded, reproducible).

The mix: department servers after right-sizing, of three kinds, with RAM and disk both
nearly binding on the reference host (64 cores at CPU ratio 4 = 256 vCPUs, 768 GB RAM,
7680 GB disk):

* databases (RAM-heavy): 4–32 vCPUs, 32–256 GB RAM, 80–400 GB disk;
* file, archive and GIS servers (disk-heavy): 2–8 vCPUs, 4–16 GB RAM, 1–4 TB disk;
* applications: 2–16 vCPUs, 4–32 GB RAM, 80–640 GB disk.

The share of databases is ``ram_heavy`` (0.25 by default); the share of disk-heavy servers
is chosen so that the expected RAM and disk totals are equal, relative to the host. Plain
first-fit-decreasing needs 1.2–1.5x the lower bound on such mixes (the RAM-heavy servers
come first and fill the first hosts' RAM, leaving their disk empty).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

import numpy as np
import numpy.typing as npt

from cloudmgr.capacity.planner.model import MIB_PER_GB, HostSpec

REFERENCE_HOST = HostSpec(vcpus=64, ram_gb=768, disk_gb=7680, cpu_ratio=4.0, ram_ratio=1.0)

# (vcpus choices, ram GB choices, disk GB choices)
PROFILES: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {
    "database": ((4, 8, 16, 32), (32, 64, 96, 128, 192, 256), (80, 160, 200, 320, 400)),
    "file": ((2, 4, 8), (4, 8, 16), (1000, 2000, 3000, 4000)),
    "application": ((2, 4, 8, 16), (4, 8, 16, 32), (80, 160, 320, 640)),
}
DEPARTMENTS = (
    "发展改革委",
    "教育厅",
    "公安厅",
    "民政厅",
    "财政厅",
    "人社厅",
    "自然资源厅",
    "生态环境厅",
    "住建厅",
    "交通运输厅",
    "农业农村厅",
    "商务厅",
    "卫生健康委",
    "应急管理厅",
    "市场监管局",
    "统计局",
)


def _shares(host: HostSpec, ram_heavy: float) -> tuple[float, float, float]:
    cap = host.capacity()
    mean = {
        k: (np.mean(v) / cap[0], np.mean(r) * MIB_PER_GB / cap[1], np.mean(d) * MIB_PER_GB / cap[2])
        for k, (v, r, d) in PROFILES.items()
    }
    db, fs, app = mean["database"], mean["file"], mean["application"]
    # ram_heavy*db + p*fs + (1-ram_heavy-p)*app equal in RAM and disk; solve for p
    a = (fs[1] - app[1]) - (fs[2] - app[2])
    b = ram_heavy * ((db[2] - app[2]) - (db[1] - app[1])) + (app[2] - app[1])
    p_file = float(b / a)
    if not 0.0 <= p_file <= 1.0 - ram_heavy:
        raise ValueError(f"no balanced mix with {ram_heavy} RAM-heavy servers")
    return ram_heavy, p_file, 1.0 - ram_heavy - p_file


def synthetic_demand(
    n: int, *, seed: int = 0, ram_heavy: float = 0.25, host: HostSpec = REFERENCE_HOST
) -> npt.NDArray[np.int64]:
    """Demands (n, 3) in planner units (vCPUs, MiB, MiB) of the mix described above."""
    rng = np.random.default_rng(seed)
    shares = _shares(host, ram_heavy)
    counts = [round(shares[0] * n), round(shares[1] * n)]
    counts.append(n - sum(counts))
    kind = rng.permutation(np.repeat(np.arange(3), counts))
    out = np.empty((n, 3), dtype=np.int64)
    for k, (v, r, d) in enumerate(PROFILES.values()):
        mask = kind == k
        m = int(mask.sum())
        out[mask, 0] = rng.choice(np.asarray(v), m)
        out[mask, 1] = rng.choice(np.asarray(r), m) * MIB_PER_GB
        out[mask, 2] = rng.choice(np.asarray(d), m) * MIB_PER_GB
    return out


def write_synthetic_csv(
    out: str | Path | TextIO,
    n: int,
    *,
    seed: int = 0,
    ram_heavy: float = 0.25,
    internet_share: float = 0.3,
    classified_share: float = 0.02,
    grouped_share: float = 0.06,
    with_p95: bool = False,
) -> None:
    """An inventory CSV of ``n`` servers of the mix, with departments, zones, some classified
    servers and anti-affinity pairs/triples. With ``with_p95`` the declared sizes are the
    mix's demands and p95 columns are added (so demands shrink after right-sizing)."""
    rng = np.random.default_rng(seed + 1)
    dem = synthetic_demand(n, seed=seed, ram_heavy=ram_heavy)
    dept = rng.integers(0, len(DEPARTMENTS), n)
    zone = np.where(rng.random(n) < internet_share, "internet", "extranet")
    classified = rng.random(n) < classified_share
    grouped = rng.random(n) < grouped_share
    group_id = np.cumsum(rng.integers(2, 4, n))  # consecutive grouped servers share a group
    cpu95 = rng.uniform(0.2, 0.9, n)
    ram95 = rng.uniform(0.4, 1.0, n)
    header = ["name", "vcpus", "ram_gb", "disk_gb", "department", "zone", "classification", "anti_affinity"]
    if with_p95:
        header += ["cpu_p95", "ram_p95"]

    def rows(fh: TextIO) -> None:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        for i in range(n):
            g = f"ha-{group_id[i] // 3}" if grouped[i] else ""
            row = [
                f"srv-{i:07d}",
                int(dem[i, 0]),
                int(dem[i, 1] // MIB_PER_GB),
                int(dem[i, 2] // MIB_PER_GB),
                DEPARTMENTS[int(dept[i])],
                str(zone[i]),
                "classified" if classified[i] else "non-classified",
                g,
            ]
            if with_p95:
                row += [f"{cpu95[i]:.2f}", f"{ram95[i]:.2f}"]
            w.writerow(row)

    if isinstance(out, str | Path):
        with open(out, "w", encoding="utf-8", newline="") as fh:
            rows(fh)
    else:
        rows(out)


#: the units hosts are cut in: whole vCPUs, whole GB of RAM, 10 GB of disk
PERFECT_UNITS = (1, MIB_PER_GB, 10 * MIB_PER_GB)


def perfect_packing_demand(
    hosts: int, *, seed: int = 0, pieces: tuple[int, int] = (3, 10), host: HostSpec = REFERENCE_HOST
) -> npt.NDArray[np.int64]:
    """Demands (n, 3) whose optimum is exactly ``hosts`` hosts: each of ``hosts`` full hosts is
    cut into ``pieces`` (at random between the two, inclusive) servers, each resource cut
    independently at random (in :data:`PERFECT_UNITS`, every piece at least one unit), and the
    servers of all hosts shuffled together. The servers fill the hosts exactly in every
    resource, so fewer hosts cannot hold them (the L1 bound is ``hosts``) and ``hosts`` can."""
    if hosts < 1 or not 1 <= pieces[0] <= pieces[1]:
        raise ValueError(f"need at least one host and 1 <= pieces[0] <= pieces[1], got {hosts}, {pieces}")
    rng = np.random.default_rng(seed)
    cap = host.capacity()
    counts = rng.integers(pieces[0], pieces[1] + 1, hosts)
    owner = np.repeat(np.arange(hosts), counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.empty((owner.shape[0], 3), dtype=np.int64)
    for k in range(3):
        whole = cap[k] // PERFECT_UNITS[k]
        if whole < pieces[1]:
            raise ValueError(f"a host has {whole} units of resource {k}: too few for {pieces[1]} pieces")
        weight = rng.random(owner.shape[0])
        share = weight / np.add.reduceat(weight, starts)[owner]
        part = 1 + np.floor(share * (whole - counts[owner])).astype(np.int64)
        part[starts] += whole - np.add.reduceat(part, starts)  # the rounding left over, to each host's first piece
        out[:, k] = part * PERFECT_UNITS[k]
    return out[rng.permutation(owner.shape[0])]
