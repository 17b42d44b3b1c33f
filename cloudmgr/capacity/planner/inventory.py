"""The planner's columnar view of a server inventory, built from records or read from CSV.

The CSV has a header line with the columns ``name,vcpus,ram_gb,disk_gb`` and, optionally,
``cpu_p95,ram_p95`` (0–1 fractions), ``anti_affinity`` (a group name: members go to distinct
hosts), ``department``, ``zone`` (``internet`` | ``extranet``; empty means the default zone)
and ``classification`` (``classified`` | ``non-classified``; empty means non-classified).
Columns may come in any order; unknown columns are ignored. Every problem is reported with
its line number, all at once (up to a limit).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import numpy.typing as npt

from cloudmgr.capacity.planner.model import (
    DEFAULT_HEADROOM,
    MIB_PER_GB,
    Classification,
    PlannerInputError,
    ServerRecord,
    Zone,
)

REQUIRED_COLUMNS = ("name", "vcpus", "ram_gb", "disk_gb")
OPTIONAL_COLUMNS = ("cpu_p95", "ram_p95", "anti_affinity", "department", "zone", "classification")
MAX_PROBLEMS = 20
ZONE_CODES: dict[str, int] = {Zone.INTERNET.value: 0, Zone.EXTRANET.value: 1}
ZONE_NAMES: tuple[str, str] = (Zone.INTERNET.value, Zone.EXTRANET.value)
NO_DEPARTMENT = "(none)"


@dataclass(slots=True)
class Inventory:
    """Servers as parallel columns. ``demand`` is right-sized, in planner units (vCPUs, MiB, MiB)."""

    names: list[str]
    demand: npt.NDArray[np.int64]  # (n, 3)
    declared: npt.NDArray[np.float64]  # (n, 3): vcpus, ram_gb, disk_gb as declared
    group: npt.NDArray[np.int64]  # -1: no anti-affinity group
    group_names: list[str]
    department: npt.NDArray[np.int64]  # index into department_names
    department_names: list[str]
    zone: npt.NDArray[np.int8]  # 0 internet, 1 extranet
    classified: npt.NDArray[np.bool_]
    lines: npt.NDArray[np.int64]  # CSV line of each server, 0 when unknown

    def __len__(self) -> int:
        return len(self.names)


class _Collector:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.more = 0

    def add(self, line: int | None, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"line {line}: {message}" if line else message)
        else:
            self.more += 1

    def raise_if_any(self) -> None:
        if self.problems:
            problems = list(self.problems)
            if self.more:
                problems.append(f"… and {self.more} more problems")
            raise PlannerInputError(problems)


def right_size(
    declared: npt.NDArray[np.float64],
    cpu_p95: npt.NDArray[np.float64],
    ram_p95: npt.NDArray[np.float64],
    headroom: float = DEFAULT_HEADROOM,
) -> npt.NDArray[np.int64]:
    """Right-sized demand (see :func:`cloudmgr.capacity.planner.model.demand_of`); NaN p95 means unknown."""
    vcpus = declared[:, 0].astype(np.int64)
    want_cpu = np.ceil(declared[:, 0] * np.nan_to_num(cpu_p95) * headroom - 1e-9).astype(np.int64)
    cpu = np.where(np.isnan(cpu_p95), vcpus, np.minimum(vcpus, np.maximum(1, want_cpu)))
    ram_declared = np.ceil(declared[:, 1] * MIB_PER_GB - 1e-9).astype(np.int64)
    want_ram = np.ceil(declared[:, 1] * np.nan_to_num(ram_p95) * headroom - 1e-9).astype(np.int64) * MIB_PER_GB
    ram = np.where(np.isnan(ram_p95), ram_declared, np.minimum(ram_declared, np.maximum(MIB_PER_GB, want_ram)))
    disk = np.ceil(declared[:, 2] * MIB_PER_GB - 1e-9).astype(np.int64)
    return np.ascontiguousarray(np.stack((cpu, ram, disk), axis=1), dtype=np.int64)


class _Builder:
    """Accumulates validated rows, then builds the :class:`Inventory`."""

    def __init__(self, default_zone: Zone) -> None:
        self.default_zone = ZONE_CODES[default_zone.value]
        self.names: list[str] = []
        self.vcpus: list[float] = []
        self.ram: list[float] = []
        self.disk: list[float] = []
        self.cpu_p95: list[float] = []
        self.ram_p95: list[float] = []
        self.groups: list[int] = []
        self.group_ids: dict[str, int] = {}
        self.departments: list[str] = []
        self.zones: list[int] = []
        self.classified: list[bool] = []
        self.lines: list[int] = []
        self.seen: dict[str, int] = {}

    def add(
        self,
        p: _Collector,
        line: int,
        name: str,
        vcpus: object,
        ram_gb: object,
        disk_gb: object,
        cpu_p95: object,
        ram_p95: object,
        group: str | None,
        department: str | None,
        zone: str | None,
        classification: str | None,
    ) -> None:
        where = line or None
        bad = False
        name = name.strip()
        if not name:
            p.add(where, "empty server name")
            bad = True
        elif name in self.seen:
            first = self.seen[name]
            p.add(where, f"duplicate server name {name!r}" + (f" (first on line {first})" if first else ""))
            bad = True
        label = name or "server"
        v = _number(p, where, label, "vcpus", vcpus, minimum=1, integer=True)
        r = _number(p, where, label, "ram_gb", ram_gb, minimum=0, strict=True)
        d = _number(p, where, label, "disk_gb", disk_gb, minimum=0)
        cp = _fraction(p, where, label, "cpu_p95", cpu_p95)
        rp = _fraction(p, where, label, "ram_p95", ram_p95)
        z = self.default_zone
        if zone:
            code = ZONE_CODES.get(zone.strip().lower())
            if code is None:
                p.add(where, f"{label}: zone must be 'internet' or 'extranet', got {zone!r}")
                bad = True
            else:
                z = code
        classified = False
        if classification:
            c = classification.strip().lower()
            if c == Classification.CLASSIFIED.value:
                classified = True
            elif c != Classification.NON_CLASSIFIED.value:
                p.add(where, f"{label}: classification must be 'classified' or 'non-classified', got {classification!r}")
                bad = True
        if bad or v is None or r is None or d is None or cp is False or rp is False:
            return
        self.seen[name] = line
        self.names.append(name)
        self.vcpus.append(v)
        self.ram.append(r)
        self.disk.append(d)
        self.cpu_p95.append(math.nan if cp is None else float(cp))
        self.ram_p95.append(math.nan if rp is None else float(rp))
        g = (group or "").strip()
        self.groups.append(self.group_ids.setdefault(g, len(self.group_ids)) if g else -1)
        self.departments.append((department or "").strip())
        self.zones.append(z)
        self.classified.append(classified)
        self.lines.append(line)

    def build(self, headroom: float) -> Inventory:
        n = len(self.names)
        declared = np.empty((n, 3), dtype=np.float64)
        declared[:, 0] = self.vcpus
        declared[:, 1] = self.ram
        declared[:, 2] = self.disk
        demand = right_size(
            declared, np.asarray(self.cpu_p95, dtype=np.float64), np.asarray(self.ram_p95, dtype=np.float64), headroom
        )
        dept_names = sorted({d for d in self.departments if d})
        code = {d: i for i, d in enumerate(dept_names)}
        if any(not d for d in self.departments):
            code[""] = len(dept_names)
            dept_names.append(NO_DEPARTMENT)
        return Inventory(
            names=self.names,
            demand=demand,
            declared=declared,
            group=np.asarray(self.groups, dtype=np.int64),
            group_names=list(self.group_ids),
            department=np.asarray([code[d] for d in self.departments], dtype=np.int64),
            department_names=dept_names,
            zone=np.asarray(self.zones, dtype=np.int8),
            classified=np.asarray(self.classified, dtype=np.bool_),
            lines=np.asarray(self.lines, dtype=np.int64),
        )


def _number(
    p: _Collector,
    line: int | None,
    label: str,
    column: str,
    raw: object,
    *,
    minimum: float,
    integer: bool = False,
    strict: bool = False,
) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        p.add(line, f"{label}: {column} is missing")
        return None
    try:
        value = float(raw) if not isinstance(raw, str) else float(raw.strip())
    except (TypeError, ValueError):
        p.add(line, f"{label}: {column} is not a number: {raw!r}")
        return None
    if not math.isfinite(value):
        p.add(line, f"{label}: {column} is not a finite number: {raw!r}")
        return None
    if value < 0:
        p.add(line, f"{label}: {column} is negative: {raw!r}")
        return None
    if integer and value != int(value):
        p.add(line, f"{label}: {column} must be a whole number, got {raw!r}")
        return None
    if value < minimum or (strict and value <= minimum):
        relation = "greater than" if strict else "at least"
        p.add(line, f"{label}: {column} must be {relation} {minimum:g}, got {raw!r}")
        return None
    return value


def _fraction(p: _Collector, line: int | None, label: str, column: str, raw: object) -> float | None | bool:
    """None when absent, the value when valid, False when invalid (reported)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = float(raw) if not isinstance(raw, str) else float(raw.strip())
    except (TypeError, ValueError):
        p.add(line, f"{label}: {column} is not a number: {raw!r}")
        return False
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        p.add(line, f"{label}: {column} must be a fraction between 0 and 1, got {raw!r}")
        return False
    return value


def inventory_from_records(
    servers: Iterable[ServerRecord],
    *,
    headroom: float = DEFAULT_HEADROOM,
    default_zone: Zone = Zone.EXTRANET,
) -> Inventory:
    """Validate records (all problems at once) and build the columnar inventory."""
    p = _Collector()
    b = _Builder(default_zone)
    for s in servers:
        line = s.line or 0
        b.add(
            p,
            line,
            s.name if s.name else "",
            s.vcpus,
            s.ram_gb,
            s.disk_gb,
            s.cpu_p95,
            s.ram_p95,
            s.anti_affinity,
            s.department,
            s.zone.value if s.zone is not None else None,
            s.classification.value,
        )
    p.raise_if_any()
    return b.build(headroom)


def read_servers_csv(
    source: str | Path | TextIO,
    *,
    headroom: float = DEFAULT_HEADROOM,
    default_zone: Zone = Zone.EXTRANET,
) -> Inventory:
    """Read and validate the inventory CSV (UTF-8, a BOM is accepted)."""
    if isinstance(source, str | Path):
        with open(source, encoding="utf-8-sig", newline="") as fh:
            return _read(fh, headroom, default_zone)
    return _read(source, headroom, default_zone)


def read_servers_csv_text(text: str, **kwargs: object) -> Inventory:
    return read_servers_csv(io.StringIO(text.lstrip("\ufeff")), **kwargs)  # type: ignore[arg-type]


def _read(fh: TextIO, headroom: float, default_zone: Zone) -> Inventory:
    reader = csv.reader(fh)
    p = _Collector()
    try:
        header = next(reader)
    except StopIteration:
        raise PlannerInputError(["line 1: the CSV is empty (expected a header: name,vcpus,ram_gb,disk_gb,…)"]) from None
    except csv.Error as exc:
        raise PlannerInputError([f"line 1: unreadable CSV: {exc}"]) from None
    columns = [h.strip().lower().lstrip("\ufeff") for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise PlannerInputError([f"line 1: missing column(s) {', '.join(missing)} (the header is {','.join(header)})"])
    dup = sorted({c for c in columns if c and columns.count(c) > 1})
    if dup:
        raise PlannerInputError([f"line 1: duplicate column(s) {', '.join(dup)}"])
    idx = {c: columns.index(c) for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in columns}
    width = len(columns)
    b = _Builder(default_zone)
    i_name, i_v, i_r, i_d = idx["name"], idx["vcpus"], idx["ram_gb"], idx["disk_gb"]
    opt = [idx.get(c, -1) for c in OPTIONAL_COLUMNS]
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) < width:
                row = row + [""] * (width - len(row))
            elif len(row) > width and any(x.strip() for x in row[width:]):
                p.add(line, f"{len(row)} fields but the header has {width}")
                continue
            vals: Sequence[str | None] = [row[j] if j >= 0 else None for j in opt]
            b.add(p, line, row[i_name], row[i_v], row[i_r], row[i_d], *vals)
    except csv.Error as exc:
        p.add(reader.line_num, f"unreadable CSV: {exc}")
    p.raise_if_any()
    return b.build(headroom)
