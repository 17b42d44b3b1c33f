"""Does a wave fit?  Pure functions over plain data (the services read the database and the cloud).

1. **Sizes.** Each system is right-sized with the capacity planner's rule
   (:func:`cloudmgr.capacity.planner.model.demand_of`: ``ceil(size * p95 * 1.25)``, never more
   than declared) and mapped to the smallest flavor of the target cloud's catalog that holds
   the right-sized vCPUs and RAM (offered flavors first).  The flavor's vCPUs and RAM are what
   the quota and the host book, with the flavor's root disk (the system's own disks are copied
   to volumes, which the hosts do not hold).
2. **Quota.** Per owning department: cores, RAM and instances of its systems against the
   ledger's headroom (``limit - used - reserved``) on the target cloud; any shortfall is listed.
3. **Capacity.** The flavors are placed on the target cloud's enabled hosts' *free* capacity
   (Placement's capacity minus usage): best fit, largest first; when that leaves a system out
   and the problem is small, OR-Tools CP-SAT (as in the consolidation planner) looks for a
   placement of more systems.  ``hosts_needed`` is the consolidation planner's answer for the
   wave on empty hosts of the cloud's host size (:func:`~cloudmgr.capacity.planner.pack_vectors`),
   ``hosts_free`` the enabled hosts that are empty now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cloudmgr.messages import N_, Message, message

MIB_PER_GB = 1024
EXACT_ITEMS = 200  # CP-SAT is tried for waves up to this size …
EXACT_HOSTS = 64  # … on clouds up to this many hosts
EXACT_SECONDS = 5.0


@dataclass(frozen=True)
class SystemSize:
    system_id: int
    hostname: str
    department_key: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    cpu_p95_pct: float | None
    ram_p95_pct: float | None


@dataclass(frozen=True)
class FlavorOption:
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    offered: bool = True


@dataclass(frozen=True)
class HostFree:
    name: str
    vcpus: int  # free (bookable) vCPUs
    ram_mb: int
    disk_gb: int
    total_vcpus: int
    total_ram_mb: int
    total_disk_gb: int
    empty: bool  # nothing allocated on it


@dataclass(frozen=True)
class Sized:
    system: SystemSize
    flavor: FlavorOption | None
    want_vcpus: int  # right-sized
    want_ram_mb: int

    @property
    def demand(self) -> tuple[int, int, int]:
        """What the host books: (vCPUs, RAM MB, root disk GB), the flavor's."""
        assert self.flavor is not None
        return self.flavor.vcpus, self.flavor.ram_mb, self.flavor.disk_gb

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "system_id": self.system.system_id,
            "hostname": self.system.hostname,
            "department": self.system.department_key,
            "declared": {"vcpus": self.system.vcpus, "ram_mb": self.system.ram_mb},
            "right_sized": {"vcpus": self.want_vcpus, "ram_mb": self.want_ram_mb},
            "flavor": self.flavor.name if self.flavor else None,
        }
        if self.flavor is not None:
            vcpus, ram_mb, disk_gb = self.demand
            out.update(vcpus=vcpus, ram_mb=ram_mb, disk_gb=disk_gb)
        return out


def right_size(system: SystemSize) -> tuple[int, int]:
    """(vCPUs, RAM MB) after the planner's right-sizing by the measured p95."""
    from cloudmgr.capacity.planner.model import ServerRecord, demand_of

    record = ServerRecord(
        name=system.hostname,
        vcpus=max(system.vcpus, 1),
        ram_gb=max(system.ram_mb, 1) / MIB_PER_GB,
        disk_gb=float(system.disk_gb),
        cpu_p95=None if system.cpu_p95_pct is None else min(max(system.cpu_p95_pct, 0.0), 100.0) / 100,
        ram_p95=None if system.ram_p95_pct is None else min(max(system.ram_p95_pct, 0.0), 100.0) / 100,
    )
    vcpus, ram_mib, _disk = demand_of(record)
    return vcpus, ram_mib


def choose_flavor(vcpus: int, ram_mb: int, flavors: Sequence[FlavorOption]) -> FlavorOption | None:
    """The smallest flavor holding ``vcpus`` and ``ram_mb``; offered flavors before the others."""
    fitting = [f for f in flavors if f.vcpus >= vcpus and f.ram_mb >= ram_mb]
    if not fitting:
        return None
    return min(fitting, key=lambda f: (not f.offered, f.vcpus, f.ram_mb, f.disk_gb, f.name))


def size_systems(systems: Sequence[SystemSize], flavors: Sequence[FlavorOption]) -> list[Sized]:
    out = []
    for system in systems:
        vcpus, ram_mb = right_size(system)
        out.append(Sized(system, choose_flavor(vcpus, ram_mb, flavors), vcpus, ram_mb))
    return out


# --- quota ---------------------------------------------------------------------------------------

QUOTA_RESOURCES = ("cores", "ram_mb", "instances")


@dataclass
class QuotaLine:
    department: str
    needs: dict[str, int]
    free: dict[str, int] | None  # None: the department has no quota on the cloud
    systems: list[str] = field(default_factory=list)

    @property
    def shortfall(self) -> dict[str, int]:
        if self.free is None:
            return dict(self.needs)
        return {r: self.needs[r] - self.free.get(r, 0) for r in QUOTA_RESOURCES if self.needs[r] > self.free.get(r, 0)}

    @property
    def ok(self) -> bool:
        return not self.shortfall

    def as_dict(self) -> dict[str, Any]:
        return {
            "department": self.department,
            "systems": self.systems,
            "needs": self.needs,
            "free": self.free,
            "no_quota": self.free is None,
            "shortfall": self.shortfall,
            "ok": self.ok,
        }


def quota_lines(sized: Sequence[Sized], free_by_department: dict[str, dict[str, int] | None]) -> list[QuotaLine]:
    """Per department, what its sized systems need against its headroom on the cloud."""
    lines: dict[str, QuotaLine] = {}
    for s in sized:
        if s.flavor is None:
            continue
        key = s.system.department_key
        line = lines.get(key)
        if line is None:
            line = lines[key] = QuotaLine(key, dict.fromkeys(QUOTA_RESOURCES, 0), free_by_department.get(key))
        line.needs["cores"] += s.flavor.vcpus
        line.needs["ram_mb"] += s.flavor.ram_mb
        line.needs["instances"] += 1
        line.systems.append(s.system.hostname)
    return sorted(lines.values(), key=lambda q: q.department)


# --- capacity ------------------------------------------------------------------------------------


@dataclass
class Placement:
    assign: dict[str, str]  # hostname -> host
    unplaced: list[tuple[str, str]]  # (hostname, reason)
    method: str  # best-fit | cp-sat


def _reason(demand: tuple[int, int, int], hosts: Sequence[HostFree]) -> str:
    return str(unplaced_message(demand, hosts))


def unplaced_message(demand: tuple[int, int, int], hosts: Sequence[HostFree]) -> Message:
    """Why a system of ``demand`` (vCPUs, RAM MB, disk GB) found no host, as a Message."""
    vcpus, ram_mb, disk_gb = demand
    needs = {"vcpus": vcpus, "ram_gb": f"{ram_mb / MIB_PER_GB:g}", "disk_gb": disk_gb}
    if not hosts:
        return message(
            N_("needs %(vcpus)s vCPUs, %(ram_gb)s GB RAM, %(disk_gb)s GB disk: the cloud has no enabled host"), **needs
        )
    if not any(h.vcpus >= vcpus and h.ram_mb >= ram_mb and h.disk_gb >= disk_gb for h in hosts):
        best = max(hosts, key=lambda h: (min(h.vcpus / max(vcpus, 1), h.ram_mb / max(ram_mb, 1)), h.name))
        return message(
            N_(
                "needs %(vcpus)s vCPUs, %(ram_gb)s GB RAM, %(disk_gb)s GB disk: no host has that much free "
                "(the roomiest, %(host)s, has %(host_vcpus)s vCPUs, %(host_ram_gb)s GB RAM, "
                "%(host_disk_gb)s GB disk free)"
            ),
            host=best.name,
            host_vcpus=best.vcpus,
            host_ram_gb=f"{best.ram_mb / MIB_PER_GB:g}",
            host_disk_gb=best.disk_gb,
            **needs,
        )
    return message(
        N_(
            "needs %(vcpus)s vCPUs, %(ram_gb)s GB RAM, %(disk_gb)s GB disk: "
            "no host has room left once the rest of the wave is placed"
        ),
        **needs,
    )


def place(items: Sequence[tuple[str, tuple[int, int, int]]], hosts: Sequence[HostFree]) -> Placement:
    """Place ``items`` (name, demand) on the hosts' free capacity; best fit, largest first,
    then CP-SAT for small problems when best fit leaves something out."""
    room = [[h.vcpus, h.ram_mb, h.disk_gb] for h in hosts]
    scale = [max(max((h.total_vcpus for h in hosts), default=1), 1), 1, 1]
    scale[1] = max(max((h.total_ram_mb for h in hosts), default=1), 1)
    scale[2] = max(max((h.total_disk_gb for h in hosts), default=1), 1)

    def size(d: tuple[int, int, int]) -> float:
        return max(d[k] / scale[k] for k in range(3))

    order = sorted(range(len(items)), key=lambda i: (-size(items[i][1]), items[i][0]))
    assign: dict[str, str] = {}
    left: list[int] = []
    for i in order:
        name, d = items[i]
        best, best_slack = -1, math.inf
        for b, r in enumerate(room):
            if r[0] >= d[0] and r[1] >= d[1] and r[2] >= d[2]:
                slack = sum((r[k] - d[k]) / scale[k] for k in range(3))
                if slack < best_slack:
                    best, best_slack = b, slack
        if best < 0:
            left.append(i)
            continue
        for k in range(3):
            room[best][k] -= d[k]
        assign[name] = hosts[best].name
    method = "best-fit"
    # CP-SAT can only help when a left-out system would fit some host's free capacity on its own
    helpable = any(
        any(h.vcpus >= d[0] and h.ram_mb >= d[1] and h.disk_gb >= d[2] for h in hosts)
        for d in (items[i][1] for i in left)
    )
    if helpable and len(items) <= EXACT_ITEMS and 0 < len(hosts) <= EXACT_HOSTS:
        better = _exact(items, hosts, assign)
        if better is not None and len(better) > len(assign):
            assign, method = better, "cp-sat"
            left = [i for i in range(len(items)) if items[i][0] not in assign]
    unplaced = [(items[i][0], _reason(items[i][1], hosts)) for i in sorted(left, key=lambda i: items[i][0])]
    return Placement(assign, unplaced, method)


def _exact(
    items: Sequence[tuple[str, tuple[int, int, int]]], hosts: Sequence[HostFree], hint: dict[str, str]
) -> dict[str, str] | None:
    """CP-SAT: place as many items as possible (each on at most one host, capacities hold)."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    cap = [(h.vcpus, h.ram_mb, h.disk_gb) for h in hosts]
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    for i, (_name, d) in enumerate(items):
        for b, c in enumerate(cap):
            if d[0] <= c[0] and d[1] <= c[1] and d[2] <= c[2]:
                x[i, b] = model.new_bool_var(f"x{i}_{b}")
        row = [v for (ii, _b), v in x.items() if ii == i]
        if row:
            model.add_at_most_one(row)
    for b, c in enumerate(cap):
        for k in range(3):
            terms = [(items[i][1][k], v) for (i, bb), v in x.items() if bb == b and items[i][1][k] > 0]
            if terms:
                model.add(sum(coef * v for coef, v in terms) <= c[k])
    # redundant: all the hosts together (bounds the objective at once on symmetric hosts)
    for k in range(3):
        terms = [(items[i][1][k], v) for (i, _b), v in x.items() if items[i][1][k] > 0]
        if terms:
            model.add(sum(coef * v for coef, v in terms) <= sum(c[k] for c in cap))
    host_index = {h.name: b for b, h in enumerate(hosts)}
    for (i, b), v in x.items():
        model.add_hint(v, host_index.get(hint.get(items[i][0], ""), -1) == b)
    model.maximize(sum(x.values()))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = EXACT_SECONDS
    solver.parameters.num_workers = 2
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return {items[i][0]: hosts[b].name for (i, b), v in x.items() if solver.boolean_value(v)}


def hosts_needed(demands: Sequence[tuple[int, int, int]], hosts: Sequence[HostFree]) -> int | None:
    """The consolidation planner's host count for the wave on empty hosts of the cloud's largest size."""
    if not demands:
        return 0
    if not hosts:
        return None
    import numpy as np

    from cloudmgr.capacity.planner.packing import pack_vectors

    big = max(hosts, key=lambda h: (h.total_vcpus, h.total_ram_mb, h.total_disk_gb))
    capacity = (max(big.total_vcpus, 1), max(big.total_ram_mb, 1), max(big.total_disk_gb * MIB_PER_GB, 1))
    dem = np.array([[v, r, d * MIB_PER_GB] for v, r, d in demands], dtype=np.int64).reshape(len(demands), 3)
    fits = np.all(dem <= np.asarray(capacity, dtype=np.int64), axis=1)
    if not fits.any():
        return None
    return int(pack_vectors(dem[fits], capacity).hosts)
