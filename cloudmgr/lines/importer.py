"""Importing lines from CSV or XLSX: all or nothing.  Every row is checked first and every problem
reported with its row number and field as a :class:`~cloudmgr.messages.Message` (shown in the reader's
language; the accepted column titles and values stay the file's own, Chinese or English); only a clean
file is written, in the caller's one unit of work.  Re-importing updates lines in place (matched by ``code``).

Every value is hostile: sizes are limited, text is checked for NUL and bidi controls and refused when a
spreadsheet would read it as a formula (it is also neutralised again on export), an XLSX formula cell
is refused, and the file, its rows and its columns are bounded.

A re-import that makes a planned line classified while its plan is the extranet or the internet
clears the plan (audited): the classified rule holds whatever the file says.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.exports import FORMULA_PREFIXES
from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.lines.errors import LinesInvalid, Problem
from cloudmgr.lines.models import AUDIT_TARGET, CARRIER_LABELS, LINE_TYPE_LABELS, LineState, NetworkLine
from cloudmgr.lines.rules import CLASSIFIED_TARGETS, carries_classified
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Department
from cloudmgr.text import has_bidi_control

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5000
MAX_COLUMNS = 64
MAX_LINKS = 200

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}$")

#: Every column, in the order of the template; the ones that may be empty are in OPTIONAL.
COLUMNS = (
    "code", "department", "carrier", "line_type", "bandwidth_mbps",
    "a_site", "a_city", "a_county", "a_township", "b_site", "b_city", "b_county", "b_township",
    "monthly_rent", "contract_start", "contract_end", "systems", "server_rooms", "classified", "public_facing",
)  # fmt: skip
OPTIONAL = frozenset(
    {"a_county", "a_township", "b_county", "b_township", "systems", "server_rooms", "classified", "public_facing"}
)

#: The Chinese column titles a file may use instead of the keys (input vocabulary, not messages).
FIELD_NAMES = {
    "code": "编号", "department": "部门", "carrier": "运营商", "line_type": "类型", "bandwidth_mbps": "带宽",
    "a_site": "A端", "a_city": "A端市", "a_county": "A端县", "a_township": "A端乡镇", "b_site": "B端",
    "b_city": "B端市", "b_county": "B端县", "b_township": "B端乡镇", "monthly_rent": "月租",
    "contract_start": "合同开始", "contract_end": "合同结束", "systems": "承载系统", "server_rooms": "机房",
    "classified": "涉密", "public_facing": "面向公众",
}  # fmt: skip

#: Each column's name in the problems, in the reader's language (the declaration form's labels).
FIELD_LABELS: dict[str, Message] = {
    "code": Message(N_("Line number")), "department": Message(N_("Department")),
    "carrier": Message(N_("Carrier")), "line_type": Message(N_("Line type")),
    "bandwidth_mbps": Message(N_("Bandwidth (Mbit/s)")), "a_site": Message(N_("End A: site")),
    "a_city": Message(N_("End A: city")), "a_county": Message(N_("End A: county or district")),
    "a_township": Message(N_("End A: township")), "b_site": Message(N_("End B: site")),
    "b_city": Message(N_("End B: city")), "b_county": Message(N_("End B: county or district")),
    "b_township": Message(N_("End B: township")), "monthly_rent": Message(N_("Monthly rent (yuan)")),
    "contract_start": Message(N_("Contract starts")), "contract_end": Message(N_("Contract ends")),
    "systems": Message(N_("Legacy systems it carries")), "server_rooms": Message(N_("Server rooms it links")),
    "classified": Message(N_("It carries classified business")),
    "public_facing": Message(N_("It serves the public")),
}  # fmt: skip
THE_FILE = Message(N_("The file"))

TEXT_LIMITS = {
    "a_site": 128, "b_site": 128, "a_city": 64, "b_city": 64, "a_county": 64, "b_county": 64,
    "a_township": 64, "b_township": 64,
}  # fmt: skip

MAX_BANDWIDTH_MBPS = 400_000  # 400 Gbit/s
MAX_RENT = Decimal("9999999999.99")  # fits Numeric(12, 2)
YES = {"yes", "true", "1", "是", "y"}
NO = {"no", "false", "0", "否", "n", ""}


@dataclass
class Row:
    number: int  # as the spreadsheet shows it (the header is row 1)
    values: dict[str, Any]


@dataclass
class ValidLine:
    code: str
    fields: dict[str, Any]
    systems: list[LegacySystem]
    rooms: list[ServerRoom]


@dataclass
class ImportResult:
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    plans_cleared: list[str] = field(default_factory=list)


# --- reading ----------------------------------------------------------------------------------


def read_rows(data: bytes, filename: str) -> list[Row]:
    """The rows of a CSV (UTF-8, with or without BOM) or XLSX file; LinesInvalid when unreadable."""
    if len(data) > MAX_BYTES:
        raise LinesInvalid(
            _nothing_imported(1), [(0, THE_FILE, message(N_("Larger than %(limit)d bytes"), limit=MAX_BYTES))]
        )
    name = filename.lower()
    if name.endswith(".xlsx"):
        table = _xlsx_table(data)
    elif name.endswith(".csv"):
        table = _csv_table(data)
    else:
        raise LinesInvalid(_nothing_imported(1), [(0, THE_FILE, Message(N_("Only .csv or .xlsx files are accepted")))])
    if not table:
        raise LinesInvalid(_nothing_imported(1), [(0, THE_FILE, Message(N_("The file is empty: no header, no rows")))])
    header = [str(h).strip() if h is not None else "" for h in table[0]]
    known = {**{c: c for c in COLUMNS}, **{v: k for k, v in FIELD_NAMES.items()}}
    problems: list[Problem] = []
    keys: list[str | None] = []
    for title in header:
        key = known.get(title)
        if title and key is None:
            problems.append((1, title[:64], Message(N_("Unknown column"))))
        if key is not None and key in keys:
            problems.append((1, title[:64], Message(N_("The column appears twice"))))
        keys.append(key)
    missing = [c for c in COLUMNS if c not in OPTIONAL and c not in keys]
    problems.extend((1, FIELD_LABELS[c], Message(N_("The column is missing"))) for c in missing)
    if problems:
        raise LinesInvalid(_nothing_imported(len(problems)), problems)
    rows = []
    for number, cells in enumerate(table[1:], start=2):
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        values = {key: cell for key, cell in zip(keys, cells, strict=False) if key is not None}
        rows.append(Row(number, values))
    if len(rows) > MAX_ROWS:
        raise _too_many_rows()
    return rows


def _nothing_imported(count: int) -> Message:
    return message(N_("Nothing was imported: %(count)d problem(s)."), count=count)


def _too_many_rows() -> LinesInvalid:
    return LinesInvalid(_nothing_imported(1), [(0, THE_FILE, message(N_("More than %(limit)d rows"), limit=MAX_ROWS))])


def _csv_table(data: bytes) -> list[list[Any]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LinesInvalid(
            _nothing_imported(1), [(0, THE_FILE, Message(N_("The file is not UTF-8: save the CSV as UTF-8")))]
        ) from exc
    table: list[list[Any]] = []
    try:
        for cells in csv.reader(io.StringIO(text, newline="")):
            if len(cells) > MAX_COLUMNS:
                raise LinesInvalid(
                    _nothing_imported(1),
                    [(len(table) + 1, THE_FILE, message(N_("More than %(limit)d columns"), limit=MAX_COLUMNS))],
                )
            table.append(list(cells))
            if len(table) > MAX_ROWS + 1:
                raise _too_many_rows()
    except csv.Error as exc:
        raise LinesInvalid(
            _nothing_imported(1),
            [(len(table) + 1, THE_FILE, message(N_("Not a readable CSV file: %(error)s"), error=str(exc)))],
        ) from exc
    return table


def _xlsx_table(data: bytes) -> list[list[Any]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise LinesInvalid(_nothing_imported(1), [(0, THE_FILE, Message(N_("Not a valid XLSX workbook")))]) from exc
    try:
        sheet = book.worksheets[0]
        table: list[list[Any]] = []
        problems: list[Problem] = []
        for number, row in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS), start=1):
            if number > MAX_ROWS + 1:
                raise _too_many_rows()
            cells: list[Any] = []
            for cell in row:
                if getattr(cell, "data_type", None) == "f":
                    problems.append(
                        (
                            number,
                            str(getattr(cell, "coordinate", "?")),
                            Message(N_("A formula is not accepted: write the number or the text")),
                        )
                    )
                    cells.append(None)
                else:
                    cells.append(cell.value)
            table.append(cells)
        if problems:
            raise LinesInvalid(_nothing_imported(len(problems)), problems)
        return table
    finally:
        book.close()


# --- checking -------------------------------------------------------------------------------


def _text(row: Row, key: str, reasons: list[tuple[str, Message]], limit: int = 64) -> str:
    raw = row.values.get(key)
    if raw is None:
        raw = ""
    if isinstance(raw, (datetime, date, bool)):
        reasons.append((key, Message(N_("Should be text"))))
        return ""
    text = str(raw).strip()
    if not text:
        if key not in OPTIONAL:
            reasons.append((key, Message(N_("Must not be empty"))))
        return ""
    if "\x00" in text or any(ord(c) < 32 for c in text):
        reasons.append((key, Message(N_("Contains control characters"))))
    elif has_bidi_control(text):
        reasons.append((key, Message(N_("Contains bidirectional text controls"))))
    elif text.startswith(FORMULA_PREFIXES):
        reasons.append((key, Message(N_("Must not start with = + - @ (a spreadsheet would read it as a formula)"))))
    elif len(text) > limit:
        reasons.append((key, message(N_("Longer than %(limit)d characters"), limit=limit)))
    else:
        return text
    return ""


def _choice(row: Row, key: str, labels: Mapping[Any, str], reasons: list[tuple[str, Message]]) -> Any:
    text = _text(row, key, reasons)
    if not text:
        return None
    for member, label in labels.items():
        if text.casefold() in (member.value, label.casefold()):
            return member
    choices = ", ".join(f"{member.value} ({label})" for member, label in labels.items())
    reasons.append(
        (key, message(N_("%(value)s is not valid; use one of: %(choices)s"), value=repr(text), choices=choices))
    )
    return None


def _integer(row: Row, key: str, high: int, reasons: list[tuple[str, Message]]) -> int | None:
    raw = row.values.get(key)
    try:
        if isinstance(raw, bool) or raw is None or raw == "":
            raise ValueError
        if isinstance(raw, float):
            if not raw.is_integer():
                raise ValueError
            value = int(raw)
        else:
            value = int(str(raw).strip())
    except (TypeError, ValueError):
        reasons.append(
            (key, message(N_("Should be a positive whole number, not %(value)s"), value=repr(str(raw)[:32])))
        )
        return None
    if not 1 <= value <= high:
        reasons.append((key, message(N_("Should be between 1 and %(high)d, not %(value)d"), high=high, value=value)))
        return None
    return value


def _money(row: Row, key: str, reasons: list[tuple[str, Message]]) -> Decimal | None:
    raw = row.values.get(key)
    try:
        if isinstance(raw, bool) or raw is None or raw == "":
            raise InvalidOperation
        value = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        reasons.append((key, message(N_("Should be an amount in yuan, not %(value)s"), value=repr(str(raw)[:32]))))
        return None
    if not value.is_finite() or value < 0 or value > MAX_RENT or value != value.quantize(Decimal("0.01")):
        reasons.append(
            (
                key,
                message(
                    N_("Should be an amount from 0 to %(high)s yuan with at most two decimals, not %(value)s"),
                    high=str(MAX_RENT),
                    value=str(raw)[:32],
                ),
            )
        )
        return None
    return value.quantize(Decimal("0.01"))


def _date(row: Row, key: str, reasons: list[tuple[str, Message]]) -> date | None:
    raw = row.values.get(key)
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw).strip())
    except (TypeError, ValueError):
        reasons.append((key, message(N_("Should be a date (YYYY-MM-DD), not %(value)s"), value=repr(str(raw)[:32]))))
        return None


def _flag(row: Row, key: str, reasons: list[tuple[str, Message]]) -> bool:
    raw = row.values.get(key)
    text = "" if raw is None else str(raw).strip().casefold()
    if isinstance(raw, bool):
        return raw
    if text in YES:
        return True
    if text not in NO:
        reasons.append((key, message(N_("Should be yes or no, not %(value)s"), value=repr(text[:16]))))
    return False


def _names(row: Row, key: str, reasons: list[tuple[str, Message]]) -> list[str]:
    raw = row.values.get(key)
    text = "" if raw is None else str(raw)
    names: list[str] = []
    for name in re.split(r"[\s,;，；、]+", text.strip()):
        if name and name not in names:
            names.append(name)
    if len(names) > MAX_LINKS:
        reasons.append((key, message(N_("At most %(limit)d items"), limit=MAX_LINKS)))
        return []
    return names


def validate(session: Session, rows: Iterable[Row]) -> tuple[list[ValidLine], list[Problem]]:
    departments = {d.key: d for d in session.scalars(select(Department))}
    departments.update({d.name_zh: d for d in departments.values()})
    systems = {s.hostname: s for s in session.scalars(select(LegacySystem))}
    rooms = {r.code: r for r in session.scalars(select(ServerRoom))}
    seen: dict[str, int] = {}
    valid: list[ValidLine] = []
    problems: list[Problem] = []
    for row in rows:
        reasons: list[tuple[str, Message]] = []
        code = _text(row, "code", reasons)
        if code and not CODE_RE.match(code):
            reasons.append(("code", Message(N_("Should be 1 to 64 letters, digits or . _ - /"))))
        elif code in seen:
            reasons.append(("code", message(N_("The same as row %(row)d"), row=seen[code])))
        elif code:
            seen[code] = row.number
        dept_name = _text(row, "department", reasons, 128)
        department = departments.get(dept_name)
        if dept_name and department is None:
            reasons.append(("department", message(N_("Unknown department %(name)s"), name=repr(dept_name))))
        carrier = _choice(row, "carrier", CARRIER_LABELS, reasons)
        line_type = _choice(row, "line_type", LINE_TYPE_LABELS, reasons)
        bandwidth = _integer(row, "bandwidth_mbps", MAX_BANDWIDTH_MBPS, reasons)
        texts = {key: _text(row, key, reasons, limit) for key, limit in TEXT_LIMITS.items()}
        rent = _money(row, "monthly_rent", reasons)
        start = _date(row, "contract_start", reasons)
        end = _date(row, "contract_end", reasons)
        if start and end and end < start:
            reasons.append(("contract_end", Message(N_("The contract ends before it starts"))))
        linked_systems: list[LegacySystem] = []
        for hostname in _names(row, "systems", reasons):
            system = systems.get(hostname)
            if system is None:
                reasons.append(("systems", message(N_("Unknown system %(name)s"), name=repr(hostname[:128]))))
            elif department is not None and system.department_id != department.id:
                reasons.append(("systems", message(N_("System %(name)s is not the department's"), name=hostname)))
            else:
                linked_systems.append(system)
        linked_rooms: list[ServerRoom] = []
        for room_code in _names(row, "server_rooms", reasons):
            room = rooms.get(room_code)
            if room is None:
                reasons.append(("server_rooms", message(N_("Unknown server room %(name)s"), name=repr(room_code[:64]))))
            elif department is not None and room.department_id != department.id:
                reasons.append(
                    ("server_rooms", message(N_("Server room %(name)s is not the department's"), name=room_code))
                )
            else:
                linked_rooms.append(room)
        classified = _flag(row, "classified", reasons)
        public = _flag(row, "public_facing", reasons)
        if reasons:
            problems.extend((row.number, FIELD_LABELS[key], reason) for key, reason in reasons)
            continue
        assert department is not None
        fields = {
            "department_id": department.id,
            "carrier": carrier,
            "line_type": line_type,
            "bandwidth_mbps": bandwidth,
            **texts,
            "monthly_rent": rent,
            "contract_start": start,
            "contract_end": end,
            "declared_classified": classified,
            "public_facing": public,
        }
        valid.append(ValidLine(code, fields, linked_systems, linked_rooms))
    return valid, problems


# --- importing ------------------------------------------------------------------------------


def import_lines(session: Session, data: bytes, *, filename: str, actor: Actor, entry_point: str) -> ImportResult:
    """Check the whole file, then import it; LinesInvalid (with every problem) before writing anything.

    Department staff may import only their own department's lines."""
    rows = read_rows(data, filename)
    valid, problems = validate(session, rows)
    if actor.is_department:
        for item in valid:
            if item.fields["department_id"] != actor.department_id:
                problems.append(
                    (
                        0,
                        FIELD_LABELS["department"],
                        message(N_("Line %(code)s is not your department's"), code=item.code),
                    )
                )
    if not problems and not valid:
        problems = [(0, THE_FILE, Message(N_("The file has no lines")))]
    if problems:
        raise LinesInvalid(_nothing_imported(len(problems)), sorted(problems, key=_problem_order))
    existing = {line.code: line for line in session.scalars(select(NetworkLine))}
    result = ImportResult(total=len(valid))
    for item in valid:
        line = existing.get(item.code)
        if line is not None and actor.is_department and line.department_id != actor.department_id:
            raise LinesInvalid(
                _nothing_imported(1),
                [
                    (
                        0,
                        FIELD_LABELS["code"],
                        message(N_("Line number %(code)s is another department's"), code=item.code),
                    )
                ],
            )
        if line is None:
            line = NetworkLine(code=item.code, state=LineState.IN_SERVICE, **item.fields)
            line.systems = item.systems
            line.rooms = item.rooms
            session.add(line)
            session.flush()
            result.created += 1
            audit.record(
                session,
                actor=actor.username,
                action="network_line.imported",
                target_type=AUDIT_TARGET,
                target_id=line.id,
                reason=f"imported from {filename[:128]}",
                detail={"code": line.code, "entry_point": entry_point},
            )
            continue
        changed = sorted(k for k, v in item.fields.items() if getattr(line, k) != v)
        for key in changed:
            setattr(line, key, item.fields[key])
        if {s.id for s in line.systems} != {s.id for s in item.systems}:
            line.systems = item.systems
            changed.append("systems")
        if {r.id for r in line.rooms} != {r.id for r in item.rooms}:
            line.rooms = item.rooms
            changed.append("server_rooms")
        if not changed:
            result.unchanged += 1
            continue
        result.updated += 1
        cleared = _clear_forbidden_plan(line)
        if cleared:
            result.plans_cleared.append(line.code)
        audit.record(
            session,
            actor=actor.username,
            action="network_line.updated",
            target_type=AUDIT_TARGET,
            target_id=line.id,
            reason=f"re-imported from {filename[:128]}",
            detail={"code": line.code, "changed": changed, "plan_cleared": cleared, "entry_point": entry_point},
        )
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="network_line.import",
        target_type=AUDIT_TARGET,
        target_id=filename[:128],
        detail={
            "total": result.total,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "plans_cleared": result.plans_cleared,
            "entry_point": entry_point,
        },
    )
    return result


def _problem_order(problem: Problem) -> tuple[int, str, str]:
    return problem[0], str(problem[1]), str(problem[2])


def _clear_forbidden_plan(line: NetworkLine) -> str | None:
    """A line that now carries classified business loses a plan onto the extranet or the internet."""
    if line.state != LineState.PLANNED or line.target is None or line.target in CLASSIFIED_TARGETS:
        return None
    if not carries_classified(line):
        return None
    cleared = line.target.value
    line.target = None
    line.state = LineState.IN_SERVICE
    return cleared


def declare_line(session: Session, values: Mapping[str, Any], *, actor: Actor, entry_point: str) -> NetworkLine:
    """Declare one new line (the columns of the import as keys), checked exactly like an imported row;
    LinesInvalid (row 0) listing every problem.  Department staff declare only their own department's."""
    valid, problems = validate(session, [Row(0, dict(values))])
    if valid and actor.is_department and valid[0].fields["department_id"] != actor.department_id:
        problems.append((0, FIELD_LABELS["department"], Message(N_("You may declare only your department's lines"))))
    code = str(values.get("code") or "").strip()[:64]
    # only a well-formed code is looked up (one with a NUL would not even reach PostgreSQL)
    if code and CODE_RE.match(code) and session.scalar(select(NetworkLine.id).where(NetworkLine.code == code)):
        problems.append((0, FIELD_LABELS["code"], message(N_("Line number %(code)s already exists"), code=code)))
    if problems:
        raise LinesInvalid(
            message(N_("The line was not declared: %(count)d problem(s)."), count=len(problems)), problems
        )
    item = valid[0]
    line = NetworkLine(code=item.code, state=LineState.IN_SERVICE, **item.fields)
    line.systems = item.systems
    line.rooms = item.rooms
    session.add(line)
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="network_line.create",
        target_type=AUDIT_TARGET,
        target_id=line.id,
        detail={"code": line.code, "entry_point": entry_point},
    )
    return line
