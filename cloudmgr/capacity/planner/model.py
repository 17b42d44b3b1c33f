"""What the consolidation planner reads and answers: server records, host sizes, plans.

Units inside the planner are integers so that every capacity check is exact:
vCPUs are counted whole, RAM and disk are counted in MiB (the CSV and the API speak GB,
meaning GiB, as people do). Demands are *right-sized*: when a server's 95th percentile
utilisation is known, the planner books ``ceil(size * p95 * headroom)`` instead of the
declared size, never less than one unit and never more than the declared size.
"""

from __future__ import annotations

import enum
import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from cloudmgr.errors import ValidationFailed
from cloudmgr.inventory.models import Classification as Classification  # one enum: the inventory's
from cloudmgr.messages import N_, Message

MIB_PER_GB = 1024
# Right-sizing headroom above the measured 95th percentile: 25 % leaves room for the
# peaks above p95 and for growth until the next planning round.
DEFAULT_HEADROOM = 1.25
DEFAULT_MAX_WAVE = 50
RESOURCES: tuple[str, str, str] = ("vcpus", "ram", "disk")


class Zone(enum.StrEnum):
    """Network zones of the cloud. Servers of different zones never share a host."""

    INTERNET = "internet"
    EXTRANET = "extranet"


#: How a classification may be written in a file or a request: the inventory's own values,
#: and "non-classified", the spelling planners type (and the planner's CSV always took).
CLASSIFICATION_SPELLINGS: dict[str, Classification] = {
    "classified": Classification.CLASSIFIED,
    "non_classified": Classification.NON_CLASSIFIED,
    "non-classified": Classification.NON_CLASSIFIED,
}


def parse_classification(text: str) -> Classification:
    """The classification ``text`` names (any case, padded); ValueError for anything else."""
    try:
        return CLASSIFICATION_SPELLINGS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"classification must be 'classified' or 'non-classified', got {text!r}") from None


CLASSIFIED_MESSAGE = Message(
    N_("classified system: goes to the separate e-government intranet, never to the extranet cloud")
)
CLASSIFIED_REASON = str(CLASSIFIED_MESSAGE)


class PlannerInputError(ValidationFailed):
    """The planner's input has problems; ``problems`` holds each one, naming the CSV line where there is one."""

    code = "planner_input_invalid"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """One server to consolidate (a line of the inventory CSV, or a row of the imported inventory)."""

    name: str
    vcpus: int
    ram_gb: float
    disk_gb: float
    cpu_p95: float | None = None
    ram_p95: float | None = None
    anti_affinity: str | None = None
    department: str | None = None
    zone: Zone | None = None
    classification: Classification = Classification.NON_CLASSIFIED
    line: int | None = None  # where it came from, for messages

    @property
    def classified(self) -> bool:
        return self.classification is Classification.CLASSIFIED


@dataclass(frozen=True, slots=True)
class HostSpec:
    """The size of one (identical) consolidation host and the overcommit ratios."""

    vcpus: int
    ram_gb: float
    disk_gb: float
    cpu_ratio: float = 1.0
    ram_ratio: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        for label, value in (("host vcpus", self.vcpus), ("host RAM", self.ram_gb), ("host disk", self.disk_gb)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                problems.append(f"{label} must be a positive number, got {value!r}")
        for label, value in (("cpu ratio", self.cpu_ratio), ("ram ratio", self.ram_ratio)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                problems.append(f"{label} must be a positive number, got {value!r}")
        if problems:
            raise PlannerInputError(problems)

    def capacity(self) -> tuple[int, int, int]:
        """Bookable capacity per host in planner units (vCPUs, MiB, MiB), ratios applied."""
        return (
            math.floor(self.vcpus * self.cpu_ratio + 1e-9),
            math.floor(self.ram_gb * MIB_PER_GB * self.ram_ratio + 1e-9),
            math.floor(self.disk_gb * MIB_PER_GB + 1e-9),
        )


def _ceil(x: float) -> int:
    return math.ceil(x - 1e-9)


def demand_of(server: ServerRecord, headroom: float = DEFAULT_HEADROOM) -> tuple[int, int, int]:
    """Right-sized demand of one server in planner units (vCPUs, MiB, MiB).

    vCPUs: ``ceil(vcpus * cpu_p95 * headroom)``, at least 1, at most ``vcpus``.
    RAM: ``ceil(ram_gb * ram_p95 * headroom)`` whole GB, at least 1 GB, at most the declared size.
    Disk is allocated, not used on average: it is never right-sized.
    """
    vcpus = server.vcpus
    if server.cpu_p95 is not None:
        vcpus = min(server.vcpus, max(1, _ceil(server.vcpus * server.cpu_p95 * headroom)))
    declared_ram = _ceil(server.ram_gb * MIB_PER_GB)
    ram = declared_ram
    if server.ram_p95 is not None:
        ram = min(declared_ram, max(MIB_PER_GB, _ceil(server.ram_gb * server.ram_p95 * headroom) * MIB_PER_GB))
    disk = _ceil(server.disk_gb * MIB_PER_GB)
    return vcpus, ram, disk


@dataclass(frozen=True, slots=True)
class Refusal:
    name: str
    reason: str
    line: int | None = None
    message: Message | None = None  # the reason, to translate where it is shown

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "reason": self.reason}
        if self.message is not None:
            out.update(self.message.as_dict())
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass(frozen=True, slots=True)
class HostUsage:
    index: int
    zone: str
    servers: int
    vcpus: int  # booked, planner units
    ram_mib: int
    disk_mib: int

    def as_dict(self, capacity: tuple[int, int, int]) -> dict[str, Any]:
        return {
            "index": self.index,
            "zone": self.zone,
            "servers": self.servers,
            "vcpus": self.vcpus,
            "ram_gb": round(self.ram_mib / MIB_PER_GB, 3),
            "disk_gb": round(self.disk_mib / MIB_PER_GB, 3),
            "vcpus_capacity": capacity[0],
            "ram_gb_capacity": round(capacity[1] / MIB_PER_GB, 3),
            "disk_gb_capacity": round(capacity[2] / MIB_PER_GB, 3),
        }


@dataclass(frozen=True, slots=True)
class BoundDetail:
    """Lower bounds of one zone's pool: per resource L1 and Martello–Toth L2, and the anti-affinity bound."""

    zone: str
    servers: int
    l1: tuple[int, int, int]
    l2: tuple[int, int, int]
    anti_affinity: int

    @property
    def bound(self) -> int:
        return max(*self.l1, *self.l2, self.anti_affinity)

    def as_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "servers": self.servers,
            "l1": dict(zip(RESOURCES, self.l1, strict=True)),
            "l2": dict(zip(RESOURCES, self.l2, strict=True)),
            "anti_affinity": self.anti_affinity,
            "bound": self.bound,
        }


@dataclass(frozen=True, slots=True)
class ExactResult:
    """What the exact solver (OR-Tools CP-SAT) said about one zone's pool."""

    zone: str
    status: str  # optimal | feasible | unknown (no answer within the time limit)
    method: str  # "bound": the heuristic already meets the lower bound; "cp-sat": the solver ran
    hosts: int
    best_bound: int
    seconds: float

    @property
    def gap(self) -> float:
        return 0.0 if self.hosts == 0 else (self.hosts - self.best_bound) / self.hosts

    def as_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "status": self.status,
            "method": self.method,
            "hosts": self.hosts,
            "best_bound": self.best_bound,
            "gap": round(self.gap, 6),
            "seconds": round(self.seconds, 3),
        }


@dataclass(slots=True)
class ConsolidationPlan:
    """The answer of :func:`plan_consolidation`.

    ``placements`` maps every placed server to its host index (0-based, hosts of the
    internet zone first, then the extranet), built on first use from ``placed_names`` and
    ``placed_hosts`` (the same pairs as columns: millions of servers need no dict to be
    written out); ``waves`` lists server names, each wave one department, at most
    ``max_wave`` servers.
    """

    capacity: tuple[int, int, int]
    hosts: list[HostUsage]
    placed_names: list[str]
    placed_hosts: npt.NDArray[np.int64]
    waves: list[list[str]]
    wave_departments: list[str]
    refused: list[Refusal]
    unplaced: list[Refusal]
    bounds: list[BoundDetail]
    exact: list[ExactResult] = field(default_factory=list)
    seconds: float = 0.0
    _placements: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def placements(self) -> dict[str, int]:
        if self._placements is None:
            self._placements = dict(zip(self.placed_names, self.placed_hosts.tolist(), strict=True))
        return self._placements

    @property
    def hosts_used(self) -> int:
        return len(self.hosts)

    @property
    def lower_bound(self) -> int:
        return sum(b.bound for b in self.bounds)

    @property
    def ratio(self) -> float:
        return self.hosts_used / self.lower_bound if self.lower_bound else 1.0

    def as_dict(self, *, bulk: bool = True) -> dict[str, Any]:
        """The plan as JSON-ready data; without ``bulk`` the placements, waves and hosts are left empty."""
        return {
            "hosts_used": self.hosts_used,
            "lower_bound": self.lower_bound,
            "ratio": round(self.ratio, 6),
            "placements": self.placements if bulk else {},
            "waves": self.waves if bulk else [],
            "wave_departments": self.wave_departments,
            "refused": [r.as_dict() for r in self.refused],
            "unplaced": [r.as_dict() for r in self.unplaced],
            "hosts": [h.as_dict(self.capacity) for h in self.hosts] if bulk else [],
            "bounds": [b.as_dict() for b in self.bounds],
            "exact": [e.as_dict() for e in self.exact],
            "host_capacity": {
                "vcpus": self.capacity[0],
                "ram_gb": round(self.capacity[1] / MIB_PER_GB, 3),
                "disk_gb": round(self.capacity[2] / MIB_PER_GB, 3),
            },
            "seconds": round(self.seconds, 3),
        }

    def write_json(self, out: TextIO) -> None:
        """Write ``json.dumps(self.as_dict(), ensure_ascii=False)`` to ``out`` piece by piece:
        the placements, waves and hosts of millions of servers are written in slices, never
        held whole as Python objects or as one string."""
        dumps = functools.partial(json.dumps, ensure_ascii=False)
        out.write(
            f'{{"hosts_used": {dumps(self.hosts_used)}, "lower_bound": {dumps(self.lower_bound)}, '
            f'"ratio": {dumps(round(self.ratio, 6))}, "placements": {{'
        )
        # names with nothing to escape (the usual case) are copied between quotes as they are
        plain = _JSON_ESCAPED.search("".join(self.placed_names)) is None
        self._write_placements(out, plain)
        out.write('}, "waves": [')
        step = max(1, _JSON_SLICE // 64)  # waves of up to a few dozen names each
        for at in range(0, len(self.waves), step):
            waves = self.waves[at : at + step]
            if plain:
                text = ", ".join(['["' + '", "'.join(w) + '"]' if w else "[]" for w in waves])
            else:
                text = dumps(waves)[1:-1]
            out.write((", " if at else "") + text)
        rest = self.as_dict(bulk=False)
        middle = {k: rest[k] for k in ("wave_departments", "refused", "unplaced")}
        out.write("], " + dumps(middle)[1:-1] + ', "hosts": [')
        capacity = (
            dumps({k: v for k, v in self.hosts[0].as_dict(self.capacity).items() if "capacity" in k})[1:]
            if self.hosts
            else ""
        )
        zones = {zone: dumps(zone) for zone in {h.zone for h in self.hosts}}
        for at in range(0, len(self.hosts), step):
            text = ", ".join(
                f'{{"index": {h.index}, "zone": {zones[h.zone]}, "servers": {h.servers}, "vcpus": {h.vcpus}, '
                f'"ram_gb": {round(h.ram_mib / MIB_PER_GB, 3)!r}, "disk_gb": {round(h.disk_mib / MIB_PER_GB, 3)!r}, '
                + capacity
                for h in self.hosts[at : at + step]
            )
            out.write((", " if at else "") + text)
        out.write("], " + dumps({k: v for k, v in rest.items() if k not in _WRITTEN_FIRST})[1:])

    def _write_placements(self, out: TextIO, plain: bool) -> None:
        count = len(self.placed_names)
        if plain:  # '"' name '": <host>, "' name …: one text per host put between the names
            after = [f'": {h}, "' for h in range(self.hosts_used)]
            out.write('"' if count else "")
        else:
            after = [f": {h}, " for h in range(self.hosts_used)]
        for at in range(0, count, _JSON_SLICE):
            names = self.placed_names[at : at + _JSON_SLICE]
            parts: list[str] = [""] * (2 * len(names))
            parts[0::2] = names if plain else list(map(encode_basestring, names))
            parts[1::2] = list(map(after.__getitem__, self.placed_hosts[at : at + _JSON_SLICE].tolist()))
            if at + _JSON_SLICE >= count:  # no comma after the last pair
                parts[-1] = parts[-1][:-3] if plain else parts[-1][:-2]
            out.write("".join(parts))


_JSON_SLICE = 1 << 16
#: what json.dumps escapes when it keeps non-ASCII text as it is
_JSON_ESCAPED = re.compile(r'[\x00-\x1f\\"]')
_WRITTEN_FIRST = frozenset(
    {"hosts_used", "lower_bound", "ratio", "placements", "waves", "wave_departments", "refused", "unplaced", "hosts"}
)


def as_record(row: Mapping[str, Any]) -> ServerRecord:
    """Build a record from a mapping with the CSV's column names (API convenience)."""
    zone = row.get("zone") or None
    classification = row.get("classification") or Classification.NON_CLASSIFIED.value
    return ServerRecord(
        name=str(row["name"]),
        vcpus=int(row["vcpus"]),
        ram_gb=float(row["ram_gb"]),
        disk_gb=float(row["disk_gb"]),
        cpu_p95=None if row.get("cpu_p95") in (None, "") else float(row["cpu_p95"]),
        ram_p95=None if row.get("ram_p95") in (None, "") else float(row["ram_p95"]),
        anti_affinity=row.get("anti_affinity") or None,
        department=row.get("department") or None,
        zone=Zone(zone) if zone else None,
        classification=parse_classification(str(classification)),
    )
