"""The inventory CSV file read in one pass over its bytes, for the common case of a clean file.

Millions of rows read with the csv module (or even ``str.split``) cost a Python object per
field; here numba kernels find the fields in the file's bytes and parse the numbers where they
lie, and only the names (and the distinct labels of the label columns) become Python strings.

This path takes a file only when it is plain: UTF-8 without quotes, bidirectional controls or
carriage returns (but those of CR LF line ends), every line with exactly the header's number of
fields, numbers written as plain decimals (``8``, ``0.75``, at most 15 digits), every value
valid and every name distinct. Anything else, whether a problem or an unusual spelling, makes
:func:`read_fast` answer None and the caller reads the file with the general reader, which
names each problem's line; so both readers give the same inventory for every file this one
takes (the tests compare them).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cloudmgr.capacity.planner._kernels import jit
from cloudmgr.capacity.planner.model import Classification, parse_classification

#: 10**k as exact doubles (every power up to 10**22 is exact)
_POW10 = np.array([10.0**k for k in range(23)])
_MAX_DIGITS = 15  # below 2**53: the digits are exact and one division rounds correctly, as float() does
_UTF8_CHUNK = 1 << 22
_BOM = b"\xef\xbb\xbf"


# -- kernels --------------------------------------------------------------------------------


@jit
def _scan_fields(buf: Any, start: int, width: int, rows: int) -> tuple[int, Any]:
    """Field starts of the ``rows`` data lines: row r's field j is ``buf[f[r, j] : f[r, j + 1] - 1]``.

    Lines may end in CR LF (as spreadsheets write them): the CR is not part of the last field.
    Returns (0, f), or (problem, empty) when the file is not plain: 1 a line with another
    number of fields (blank lines too), 2 a bidirectional control, 3 a carriage return not
    followed by a line feed. The caller has checked that there is no quote.
    """
    n = buf.shape[0]
    empty = np.empty((0, width + 1), dtype=np.int32)
    fields = np.empty((rows, width + 1), dtype=np.int32)
    if rows == 0:
        return 0, fields
    r = 0
    j = 0
    fields[0, 0] = start
    for p in range(start, n):
        c = buf[p]
        if c == 44:
            j += 1
            if j >= width:
                return 1, empty
            fields[r, j] = p + 1
        elif c == 10:
            if j != width - 1:
                return 1, empty
            fields[r, width] = p if p > start and buf[p - 1] == 13 else p + 1
            r += 1
            j = 0
            if r < rows:
                fields[r, 0] = p + 1
        elif c == 13:
            if p + 1 >= n or buf[p + 1] != 10:
                return 3, empty
        elif c == 0xE2 and p + 2 < n:
            c1 = buf[p + 1]
            c2 = buf[p + 2]
            # U+200E, U+200F, U+202A..U+202E; U+2066..U+2069
            if c1 == 0x80 and (c2 == 0x8E or c2 == 0x8F or (c2 >= 0xAA and c2 <= 0xAE)):
                return 2, empty
            if c1 == 0x81 and c2 >= 0xA6 and c2 <= 0xA9:
                return 2, empty
        elif c == 0xD8 and p + 1 < n and buf[p + 1] == 0x9C:  # U+061C
            return 2, empty
    if r < rows:  # the last line has no line break
        if j != width - 1:
            return 1, empty
        fields[r, width] = n + 1
    return 0, fields


@jit
def _parse_decimals(buf: Any, fields: Any, col: int, blank_is_nan: bool) -> tuple[Any, int]:
    """Column ``col`` as float64, exactly as ``float()`` reads it; (values, -1), or (…, row)
    of the first field that is not a plain decimal (or is blank, unless ``blank_is_nan``)."""
    rows = fields.shape[0]
    out = np.empty(rows)
    for r in range(rows):
        a = fields[r, col]
        b = fields[r, col + 1] - 1
        if a == b:
            if blank_is_nan:
                out[r] = np.nan
                continue
            return out, r
        m = 0
        digits = 0
        frac = -1
        for p in range(a, b):
            c = buf[p]
            if c >= 48 and c <= 57:
                m = m * 10 + (c - 48)
                digits += 1
                if frac >= 0:
                    frac += 1
            elif c == 46 and frac < 0:
                frac = 0
            else:
                return out, r
        if digits == 0 or digits > _MAX_DIGITS:
            return out, r
        out[r] = m / _POW10[frac] if frac > 0 else float(m)
    return out, -1


@jit
def _label_codes(buf: Any, fields: Any, col: int) -> tuple[Any, Any]:
    """Distinct values of field ``col`` (compared byte for byte, through a hash table): each
    row's code, the codes numbered in order of first appearance, and the first row of each."""
    rows = fields.shape[0]
    size = 16
    while size < 2 * rows:
        size *= 2
    table = np.full(size, -1, dtype=np.int64)  # slot -> code
    codes = np.empty(rows, dtype=np.int64)
    first = np.empty(rows, dtype=np.int64)
    distinct = 0
    prime = np.uint64(1099511628211)
    mask = np.uint64(size - 1)
    for r in range(rows):
        a = fields[r, col]
        length = fields[r, col + 1] - 1 - a
        h = np.uint64(14695981039346656037)
        for p in range(a, a + length):
            h = (h ^ np.uint64(buf[p])) * prime
        s = np.int64(h & mask)
        while True:
            code = table[s]
            if code < 0:
                table[s] = distinct
                first[distinct] = r
                codes[r] = distinct
                distinct += 1
                break
            q = first[code]
            b = fields[q, col]
            if fields[q, col + 1] - 1 - b == length:
                same = True
                for k in range(length):
                    if buf[a + k] != buf[b + k]:
                        same = False
                        break
                if same:
                    codes[r] = code
                    break
            s = (s + np.int64(1)) & np.int64(size - 1)
    return codes, first[:distinct].copy()


@jit
def _gather(buf: Any, fields: Any, col: int, rows: Any) -> Any:
    """The bytes of field ``col`` of ``rows``, joined by line breaks."""
    total = 0
    for t in range(rows.shape[0]):
        r = rows[t]
        total += fields[r, col + 1] - 1 - fields[r, col] + 1
    out = np.empty(max(total - 1, 0), dtype=np.uint8)
    w = 0
    for t in range(rows.shape[0]):
        r = rows[t]
        if t > 0:
            out[w] = 10
            w += 1
        for p in range(fields[r, col], fields[r, col + 1] - 1):
            out[w] = buf[p]
            w += 1
    return out


@jit
def _padded_names(buf: Any, fields: Any, col: int) -> bool:
    """Whether a name may carry spaces to strip or be empty: it is empty, or starts or ends
    with ASCII white space or a non-ASCII byte (maybe a Unicode space)."""
    for r in range(fields.shape[0]):
        a = fields[r, col]
        b = fields[r, col + 1] - 2
        if b < a:
            return True
        if buf[a] <= 32 or buf[a] >= 128 or buf[b] <= 32 or buf[b] >= 128:
            return True
    return False


# -- the reader -----------------------------------------------------------------------------


def _strings(buf: npt.NDArray[np.uint8], fields: npt.NDArray[np.int32], col: int, rows: npt.NDArray[Any]) -> list[str]:
    if rows.shape[0] == 0:
        return []
    return bytes(_gather(buf, fields, col, rows.astype(np.int64))).decode("utf-8").split("\n")


def _labels(
    buf: npt.NDArray[np.uint8], fields: npt.NDArray[np.int32], col: int
) -> tuple[list[str], npt.NDArray[np.int64]]:
    """The distinct raw values of a label column in order of first appearance, and each row's
    index into them."""
    codes, first = _label_codes(buf, fields, col)
    return _strings(buf, fields, col, first), codes


def _check_utf8(data: bytes) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for at in range(0, len(data), _UTF8_CHUNK):
            decoder.decode(view[at : at + _UTF8_CHUNK], final=at + _UTF8_CHUNK >= len(data))
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Columns:
    """What :func:`read_fast` read: the columns of the planner's inventory, before right-sizing
    (:class:`~cloudmgr.capacity.planner.inventory.Inventory` has their meaning)."""

    names: list[str]
    declared: npt.NDArray[np.float64]
    cpu_p95: npt.NDArray[np.float64]
    ram_p95: npt.NDArray[np.float64]
    group: npt.NDArray[np.int64]
    group_names: list[str]
    department: npt.NDArray[np.int64]
    department_names: list[str]
    zone: npt.NDArray[np.int8]
    classified: npt.NDArray[np.bool_]
    classification_blank: npt.NDArray[np.bool_]


def read_fast(
    path: str | Path,
    *,
    header_columns: Callable[[list[str]], tuple[dict[str, int], int]],
    zone_codes: dict[str, int],
    default_zone: str,
    no_department: str,
) -> Columns | None:
    """The file's columns when the file is plain (see the module's docstring), else None: the
    general reader must read it. ``header_columns`` checks the header (raising the reader's
    errors); zones are coded with ``zone_codes``; rows without a department get ``no_department``."""
    with open(path, "rb") as fh:
        data = fh.read()
    start = len(_BOM) if data.startswith(_BOM) else 0
    end_of_header = data.find(b"\n", start)
    if end_of_header < 0 or not _check_utf8(data):
        return None
    head = data[start:end_of_header]
    if head.endswith(b"\r"):
        head = head[:-1]
    if b'"' in head or b"\r" in head or not head.strip():
        return None
    header = head.decode("utf-8").split(",")
    idx, width = header_columns(header)
    buf = np.frombuffer(data, dtype=np.uint8)
    if b'"' in data or len(data) >= 2**31 - 1:
        return None
    rows = data.count(b"\n", end_of_header + 1) + (0 if data.endswith(b"\n") else 1)
    problem, fields = _scan_fields(buf, end_of_header + 1, width, rows)
    if problem or rows == 0:
        return None
    declared = np.empty((rows, 3))
    for k, column in enumerate(("vcpus", "ram_gb", "disk_gb")):
        declared[:, k], bad = _parse_decimals(buf, fields, idx[column], False)
        if bad >= 0:
            return None
    p95 = []
    for column in ("cpu_p95", "ram_p95"):
        if column not in idx:
            p95.append(np.full(rows, np.nan))
            continue
        values, bad = _parse_decimals(buf, fields, idx[column], True)
        if bad >= 0 or (values > 1).any():  # NaN (blank) compares False
            return None
        p95.append(values)
    v, r, d = declared[:, 0], declared[:, 1], declared[:, 2]
    if (v < 1).any() or (v != np.floor(v)).any() or (r <= 0).any() or (d < 0).any():
        return None

    names = _strings(buf, fields, idx["name"], np.arange(rows))
    if _padded_names(buf, fields, idx["name"]):
        names = list(map(str.strip, names))
        if "" in names or len(set(names)) != rows:
            return None
    elif _label_codes(buf, fields, idx["name"])[1].shape[0] != rows:  # byte for byte: no duplicate
        return None

    zone = np.full(rows, zone_codes[default_zone], dtype=np.int8)
    classified = np.zeros(rows, dtype=np.bool_)
    blank = np.ones(rows, dtype=np.bool_)
    group = np.full(rows, -1, dtype=np.int64)
    group_names: list[str] = []
    department = np.zeros(rows, dtype=np.int64)
    department_names = [no_department]
    if "zone" in idx:
        raw, codes = _labels(buf, fields, idx["zone"])
        table = [zone_codes.get(x.strip().lower(), -2) if x.strip() else -1 for x in raw]
        if -2 in table:
            return None
        z = np.asarray(table, dtype=np.int8)[codes]
        zone = np.where(z >= 0, z, zone).astype(np.int8)
    if "classification" in idx:
        raw, codes = _labels(buf, fields, idx["classification"])
        try:
            kinds = [-1 if not x.strip() else int(parse_classification(x) is Classification.CLASSIFIED) for x in raw]
        except ValueError:
            return None
        c = np.asarray(kinds, dtype=np.int8)[codes]
        classified, blank = c == 1, c == -1
    if "anti_affinity" in idx:
        raw, codes = _labels(buf, fields, idx["anti_affinity"])
        ids: dict[str, int] = {}
        table = [ids.setdefault(x.strip(), len(ids)) if x.strip() else -1 for x in raw]
        group = np.asarray(table, dtype=np.int64)[codes]
        group_names = list(ids)
    if "department" in idx:
        raw, codes = _labels(buf, fields, idx["department"])
        labels = [x.strip() for x in raw]
        department_names = sorted({x for x in labels if x})
        final = {x: i for i, x in enumerate(department_names)}
        if "" in labels:
            final[""] = len(department_names)
            department_names.append(no_department)
        department = np.asarray([final[x] for x in labels], dtype=np.int64)[codes]
    del fields, buf, data
    return Columns(
        names=names,
        declared=declared,
        cpu_p95=p95[0],
        ram_p95=p95[1],
        group=group,
        group_names=group_names,
        department=department,
        department_names=department_names,
        zone=zone,
        classified=classified,
        classification_blank=blank,
    )
