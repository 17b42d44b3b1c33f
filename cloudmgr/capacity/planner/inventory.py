"""The planner's columnar view of a server inventory, built from records or read from CSV.

The CSV has a header line with the columns ``name,vcpus,ram_gb,disk_gb`` and, optionally,
``cpu_p95,ram_p95`` (0–1 fractions), ``anti_affinity`` (a group name: members go to distinct
hosts), ``department``, ``zone`` (``internet`` | ``extranet``; empty means the default zone)
and ``classification`` (``classified`` | ``non-classified``).  An empty classification is
*unknown*, kept apart in ``classification_blank``: the planner library reads it as
non-classified, but every entry point a person uses (API, page, ``cloudmgr plan consolidate``)
goes through :mod:`cloudmgr.capacity.planner.guard`, which refuses it unless the operator says
blanks are non-classified, and takes the classification of a row named after an inventory
system from the inventory.
Columns may come in any order; unknown columns are ignored. Every problem is reported with
its line number, all at once (up to a limit).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from cloudmgr.capacity.planner.fast_csv import read_fast
from cloudmgr.capacity.planner.model import (
    CLASSIFICATION_SPELLINGS,
    DEFAULT_HEADROOM,
    MIB_PER_GB,
    Classification,
    PlannerInputError,
    ServerRecord,
    Zone,
    parse_classification,
)
from cloudmgr.messages import Message
from cloudmgr.text import bidi_problem, has_bidi_control

REQUIRED_COLUMNS = ("name", "vcpus", "ram_gb", "disk_gb")
OPTIONAL_COLUMNS = ("cpu_p95", "ram_p95", "anti_affinity", "department", "zone", "classification")
MAX_PROBLEMS = 20
ZONE_CODES: dict[str, int] = {Zone.INTERNET.value: 0, Zone.EXTRANET.value: 1}
ZONE_NAMES: tuple[str, str] = (Zone.INTERNET.value, Zone.EXTRANET.value)
NO_DEPARTMENT = "(none)"
EMPTY_CSV = "line 1: the CSV is empty (expected a header: name,vcpus,ram_gb,disk_gb,…)"
Raw = str | float | None  # a CSV field, or a record's number


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
    #: the row did not say whether it is classified (empty cell, or no column)
    classification_blank: npt.NDArray[np.bool_]
    #: why a refused server is refused, when not simply "classified" (row index → reason)
    refusal_reasons: dict[int, str] = field(default_factory=dict)
    #: the same reasons as messages, to translate where they are shown
    refusal_messages: dict[int, Message] = field(default_factory=dict)

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
    """Accumulates validated servers in compact columns (chunks of arrays), then builds the
    :class:`Inventory`. Rows come one at a time (records, or CSV lines with a problem nearby)
    or as whole batches of clean CSV lines, converted with numpy in one go."""

    def __init__(self, default_zone: Zone, problems: _Collector) -> None:
        self.default_zone = ZONE_CODES[default_zone.value]
        self.p = problems
        self.names: list[str] = []
        self.seen: set[str] = set()
        self.group_ids: dict[str, int] = {}
        self.dept_ids: dict[str, int] = {}  # in order of first appearance
        self.chunks: dict[str, list[npt.NDArray[Any]]] = {
            k: [] for k in ("declared", "cpu95", "ram95", "group", "dept", "zone", "classified", "lines", "blank")
        }
        self.rows: list[tuple[float, float, float, float, float, int, int, int, bool, int, bool]] = []

    # -- one row ----------------------------------------------------------------------------

    def add(
        self,
        line: int,
        name: str,
        vcpus: Raw,
        ram_gb: Raw,
        disk_gb: Raw,
        cpu_p95: Raw,
        ram_p95: Raw,
        group: str | None,
        department: str | None,
        zone: str | None,
        classification: str | None,
    ) -> None:
        p = self.p
        where = line or None
        bad = False
        name = name.strip()
        if not name:
            p.add(where, "empty server name")
            bad = True
        elif name in self.seen:
            p.add(where, f"duplicate server name {name!r}" + self._first_line(name))
            bad = True
        label = name or "server"
        v = _number(p, where, label, "vcpus", vcpus, minimum=1, integer=True)
        r = _number(p, where, label, "ram_gb", ram_gb, minimum=0, strict=True)
        d = _number(p, where, label, "disk_gb", disk_gb, minimum=0)
        cp = _fraction(p, where, label, "cpu_p95", cpu_p95)
        rp = _fraction(p, where, label, "ram_p95", ram_p95)
        z = self.default_zone
        if zone and zone.strip():
            code = ZONE_CODES.get(zone.strip().lower())
            if code is None:
                p.add(where, f"{label}: zone must be 'internet' or 'extranet', got {zone!r}")
                bad = True
            else:
                z = code
        classified = False
        blank = not (classification and classification.strip())
        if not blank:
            assert classification is not None
            try:
                classified = parse_classification(classification) is Classification.CLASSIFIED
            except ValueError as exc:
                p.add(where, f"{label}: {exc}")
                bad = True
        if name and not bad:
            self.seen.add(name)
        if bad or v is None or r is None or d is None or cp is False or rp is False:
            return
        self.names.append(name)
        g = (group or "").strip()
        self.rows.append(
            (
                v,
                r,
                d,
                math.nan if cp is None else float(cp),
                math.nan if rp is None else float(rp),
                self.group_ids.setdefault(g, len(self.group_ids)) if g else -1,
                self.dept_ids.setdefault((department or "").strip(), len(self.dept_ids)),
                z,
                classified,
                line,
                blank,
            )
        )

    def _first_line(self, name: str) -> str:
        if self.rows or self.chunks["lines"]:
            self._flush()
            at = self.names.index(name) if name in self.names else -1
            lines = np.concatenate(self.chunks["lines"]) if self.chunks["lines"] else np.zeros(0, dtype=np.int64)
            if 0 <= at < lines.shape[0] and lines[at]:
                return f" (first on line {int(lines[at])})"
        return ""

    def _flush(self) -> None:
        if not self.rows:
            return
        cols = list(zip(*self.rows, strict=True))
        self.rows = []
        self.chunks["declared"].append(np.asarray(cols[0:3], dtype=np.float64).T.copy())
        self.chunks["cpu95"].append(np.asarray(cols[3], dtype=np.float64))
        self.chunks["ram95"].append(np.asarray(cols[4], dtype=np.float64))
        self.chunks["group"].append(np.asarray(cols[5], dtype=np.int64))
        self.chunks["dept"].append(np.asarray(cols[6], dtype=np.int64))
        self.chunks["zone"].append(np.asarray(cols[7], dtype=np.int8))
        self.chunks["classified"].append(np.asarray(cols[8], dtype=np.bool_))
        self.chunks["lines"].append(np.asarray(cols[9], dtype=np.int64))
        self.chunks["blank"].append(np.asarray(cols[10], dtype=np.bool_))

    # -- a batch of clean CSV rows ------------------------------------------------------------

    def add_columns(self, cols: dict[str, list[str]], n: int, lines: npt.NDArray[np.int64]) -> bool:
        """Convert a batch of CSV rows, given column by column, at once (C-level maps, numpy).

        False, keeping nothing, when any value needs a closer look: the caller then goes row
        by row and names each problem's line."""
        if n == 0:
            return False
        names = list(map(str.strip, cols["name"]))
        if "" in names or len(set(names)) != n or not self.seen.isdisjoint(names):
            return False
        try:
            declared = np.empty((n, 3), dtype=np.float64)
            for k, name in enumerate(("vcpus", "ram_gb", "disk_gb")):
                declared[:, k] = np.fromiter(map(float, cols[name]), dtype=np.float64, count=n)
            p95 = []
            for name in ("cpu_p95", "ram_p95"):
                col = cols.get(name)
                if col is None:
                    p95.append(np.full(n, np.nan))
                    continue
                blank = np.fromiter(map(operator.not_, col), dtype=np.bool_, count=n)
                values = np.fromiter(map(float, [x or "nan" for x in col]), dtype=np.float64, count=n)
                given = values[~blank]
                if np.isnan(given).any() or ((given < 0) | (given > 1)).any():
                    return False
                p95.append(values)
        except ValueError:
            return False
        v, r, d = declared[:, 0], declared[:, 1], declared[:, 2]
        if not np.isfinite(declared).all() or (v < 1).any() or (v != np.floor(v)).any():
            return False
        if (r <= 0).any() or (d < 0).any():
            return False
        zones = np.full(n, self.default_zone, dtype=np.int8)
        classified = np.zeros(n, dtype=np.bool_)
        blank_class = np.ones(n, dtype=np.bool_)
        try:
            if "zone" in cols:
                z = np.fromiter(map(_ZONES_EXACT.__getitem__, cols["zone"]), dtype=np.int8, count=n)
                zones = np.where(z >= 0, z, zones).astype(np.int8)
            if "classification" in cols:
                c = np.fromiter(map(_CLASSES_EXACT.__getitem__, cols["classification"]), dtype=np.int8, count=n)
                classified = c == 1
                blank_class = c == -1
        except KeyError:
            return False
        # all clean: keep the batch
        self._flush()
        groups = (
            self._codes(cols["anti_affinity"], self.group_ids, blank=-1)
            if "anti_affinity" in cols
            else np.full(n, -1, dtype=np.int64)
        )
        depts = (
            self._codes(cols["department"], self.dept_ids, blank=None)
            if "department" in cols
            else np.full(n, self.dept_ids.setdefault("", len(self.dept_ids)), dtype=np.int64)
        )
        self.names.extend(names)
        self.seen.update(names)
        for key, value in (
            ("declared", declared),
            ("cpu95", p95[0]),
            ("ram95", p95[1]),
            ("group", groups),
            ("dept", depts),
            ("zone", zones),
            ("classified", classified),
            ("lines", lines),
            ("blank", blank_class),
        ):
            self.chunks[key].append(value)
        return True

    @staticmethod
    def _codes(col: list[str], ids: dict[str, int], blank: int | None) -> npt.NDArray[np.int64]:
        """Codes of a label column (few distinct values): ids in order of first appearance."""
        code: dict[str, int] = {}
        for raw in dict.fromkeys(col):  # distinct, in order
            label = raw.strip()
            code[raw] = blank if (blank is not None and not label) else ids.setdefault(label, len(ids))
        return np.fromiter(map(code.__getitem__, col), dtype=np.int64, count=len(col))

    # -- the result ---------------------------------------------------------------------------

    def build(self, headroom: float) -> Inventory:
        self._flush()
        empty: dict[str, npt.NDArray[Any]] = {
            "declared": np.zeros((0, 3)),
            "cpu95": np.zeros(0),
            "ram95": np.zeros(0),
            "group": np.zeros(0, dtype=np.int64),
            "dept": np.zeros(0, dtype=np.int64),
            "zone": np.zeros(0, dtype=np.int8),
            "classified": np.zeros(0, dtype=np.bool_),
            "lines": np.zeros(0, dtype=np.int64),
            "blank": np.zeros(0, dtype=np.bool_),
        }
        col: dict[str, npt.NDArray[Any]] = {k: (np.concatenate(v) if v else empty[k]) for k, v in self.chunks.items()}
        # departments: codes in name order, those without a department last
        seen_order = list(self.dept_ids)
        dept_names = sorted(d for d in seen_order if d)
        final = {d: i for i, d in enumerate(dept_names)}
        if "" in self.dept_ids:
            final[""] = len(dept_names)
            dept_names.append(NO_DEPARTMENT)
        remap = np.asarray([final[d] for d in seen_order], dtype=np.int64)
        department = remap[col["dept"]] if col["dept"].shape[0] else col["dept"]
        return Inventory(
            names=self.names,
            demand=right_size(col["declared"], col["cpu95"], col["ram95"], headroom),
            declared=col["declared"],
            group=col["group"],
            group_names=list(self.group_ids),
            department=department,
            department_names=dept_names,
            zone=col["zone"],
            classified=col["classified"],
            lines=col["lines"],
            classification_blank=col["blank"],
        )


_ZONES_EXACT: dict[str, int] = {**ZONE_CODES, "": -1}
_CLASSES_EXACT: dict[str, int] = {
    "": -1,
    **{text: int(c is Classification.CLASSIFIED) for text, c in CLASSIFICATION_SPELLINGS.items()},
}
BATCH_ROWS = 65536
BLOCK_CHARS = 4 << 20  # characters of CSV text converted at once


def _number(
    p: _Collector,
    line: int | None,
    label: str,
    column: str,
    raw: Raw,
    *,
    minimum: float,
    integer: bool = False,
    strict: bool = False,
) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        p.add(line, f"{label}: {column} is missing")
        return None
    try:
        value = float(raw.strip()) if isinstance(raw, str) else float(raw)
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


def _fraction(p: _Collector, line: int | None, label: str, column: str, raw: Raw) -> float | None | bool:
    """None when absent, the value when valid, False when invalid (reported)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = float(raw.strip()) if isinstance(raw, str) else float(raw)
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
    b = _Builder(default_zone, p)
    for s in servers:
        b.add(
            s.line or 0,
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
    """Read and validate the inventory CSV (UTF-8, a BOM is accepted).

    A file is first read by :mod:`~cloudmgr.capacity.planner.fast_csv` (a plain file of
    millions of rows in a second or two); what that reader does not take is read here."""
    if isinstance(source, str | Path):
        fast = read_fast(
            source,
            header_columns=header_columns,
            zone_codes=ZONE_CODES,
            default_zone=default_zone.value,
            no_department=NO_DEPARTMENT,
        )
        if fast is not None:
            return Inventory(
                names=fast.names,
                demand=right_size(fast.declared, fast.cpu_p95, fast.ram_p95, headroom),
                declared=fast.declared,
                group=fast.group,
                group_names=fast.group_names,
                department=fast.department,
                department_names=fast.department_names,
                zone=fast.zone,
                classified=fast.classified,
                lines=np.arange(2, len(fast.names) + 2, dtype=np.int64),
                classification_blank=fast.classification_blank,
            )
        with open(source, encoding="utf-8-sig", newline="") as fh:
            return _read(fh, headroom, default_zone)
    return _read(source, headroom, default_zone)


Batch = tuple[list[list[str]], list[int]] | tuple[str, int]


def _batches(fh: TextIO) -> tuple[list[str], Iterator[Batch]]:
    """The header, and the data in batches: ``(text, first line)`` blocks of whole lines while
    there is no quote character, else ``(rows, line of each row)`` read by the csv module
    (quoted fields may hold commas and line breaks). Blank lines are skipped."""
    first = fh.readline()
    if not first.strip():
        raise PlannerInputError([EMPTY_CSV])
    try:
        header = next(csv.reader(io.StringIO(first)))
    except (csv.Error, StopIteration) as exc:
        raise PlannerInputError([f"line 1: unreadable CSV header: {exc}"]) from None

    def batches() -> Iterator[Batch]:
        number = 2  # line number of the next line
        while True:
            block = fh.read(BLOCK_CHARS)
            if not block:
                return
            if not block.endswith("\n"):
                block += fh.readline()
            if '"' in block:
                break
            if "\r" in block:
                block = block.replace("\r\n", "\n").replace("\r", "\n")
            yield block, number
            number += block.count("\n")
        # from here on the csv module reads (from the start of this block)
        reader = csv.reader(itertools.chain(io.StringIO(block), fh))
        rows: list[list[str]] = []
        lines: list[int] = []
        try:
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                rows.append(row)
                lines.append(number - 1 + reader.line_num)
                if len(rows) >= BATCH_ROWS:
                    yield rows, lines
                    rows, lines = [], []
        except csv.Error as exc:
            raise PlannerInputError([f"line {number - 1 + reader.line_num}: unreadable CSV: {exc}"]) from None
        if rows:
            yield rows, lines

    return header, batches()


def _block_rows(block: str, number: int) -> tuple[list[list[str]], list[int]]:
    rows: list[list[str]] = []
    lines: list[int] = []
    for no, text in enumerate(block.split("\n"), start=number):
        if text and not text.isspace():
            rows.append(text.split(","))
            lines.append(no)
    return rows, lines


def _block_columns(
    block: str, number: int, idx: dict[str, int], width: int
) -> tuple[dict[str, list[str]], int, npt.NDArray[np.int64]] | None:
    """Columns of a block whose every line has ``width`` fields (None otherwise)."""
    text = block[:-1] if block.endswith("\n") else block
    if not text:
        return None
    split = text.split("\n")
    if set(map(str.count, split, itertools.repeat(","))) != {width - 1}:
        return None  # blank lines, or lines with too few or too many fields
    flat = text.replace("\n", ",").split(",")
    cols = {name: flat[j::width] for name, j in idx.items()}
    return cols, len(split), np.arange(number, number + len(split), dtype=np.int64)


def _rows_columns(
    rows: list[list[str]], lines: list[int], idx: dict[str, int], width: int
) -> tuple[dict[str, list[str]], int, npt.NDArray[np.int64]] | None:
    if any(len(r) != width for r in rows):
        return None
    cols = {name: [r[j] for r in rows] for name, j in idx.items()}
    return cols, len(rows), np.asarray(lines, dtype=np.int64)


def _column_names(header: list[str]) -> list[str]:
    return [h.strip().lower().lstrip("\ufeff") for h in header]


def header_columns(header: list[str]) -> tuple[dict[str, int], int]:
    """The position of each known column and the number of fields of the header (line 1);
    PlannerInputError when a required column is missing or a column comes twice."""
    columns = _column_names(header)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise PlannerInputError([f"line 1: missing column(s) {', '.join(missing)} (the header is {','.join(header)})"])
    if any(has_bidi_control(c) for c in columns):
        raise PlannerInputError(["line 1: " + (bidi_problem("the header", ",".join(header)) or "")])
    dup = sorted({c for c in columns if c and columns.count(c) > 1})
    if dup:
        raise PlannerInputError([f"line 1: duplicate column(s) {', '.join(dup)}"])
    return {c: columns.index(c) for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in columns}, len(columns)


def _read(fh: TextIO, headroom: float, default_zone: Zone) -> Inventory:
    header, batches = _batches(fh)
    idx, width = header_columns(header)
    columns = _column_names(header)
    p = _Collector()
    b = _Builder(default_zone, p)
    i_name, i_v, i_r, i_d = idx["name"], idx["vcpus"], idx["ram_gb"], idx["disk_gb"]
    opt = [idx.get(c, -1) for c in OPTIONAL_COLUMNS]
    for batch in batches:
        if isinstance(batch[0], str):
            block, number = batch
            assert isinstance(block, str) and isinstance(number, int)
            fast = _block_columns(block, number, idx, width)
            bidi = has_bidi_control(block)
        else:
            rows_, lines_ = batch
            assert isinstance(rows_, list) and isinstance(lines_, list)
            fast = _rows_columns(rows_, lines_, idx, width)
            bidi = any(has_bidi_control(cell) for r in rows_ for cell in r)
        if not bidi and fast is not None and not p.problems and b.add_columns(*fast):
            continue
        # something is wrong (or unusual) in this batch: row by row, naming every problem's line
        rows, lines = _block_rows(block, number) if isinstance(batch[0], str) else (rows_, lines_)
        for row, line in zip(rows, lines, strict=True):
            if len(row) < width:
                row = row + [""] * (width - len(row))
            elif len(row) > width and any(x.strip() for x in row[width:]):
                p.add(line, f"{len(row)} fields but the header has {width}")
                continue
            directed = [j for j, cell in enumerate(row[:width]) if has_bidi_control(cell)]
            if directed:
                p.add(line, "; ".join(bidi_problem(columns[j] or f"column {j + 1}", row[j]) or "" for j in directed))
                continue
            vals: Sequence[str | None] = [row[j] if j >= 0 else None for j in opt]
            b.add(line, row[i_name], row[i_v], row[i_r], row[i_d], *vals)
    p.raise_if_any()
    return b.build(headroom)
