"""Importing lines from CSV or XLSX: all or nothing.  Every row is checked first and every problem
reported with its row number and field, in Chinese; only a clean file is written, in the caller's one
unit of work.  Re-importing updates lines in place (matched by ``code``).

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
from cloudmgr.lines.errors import LinesInvalid
from cloudmgr.lines.models import AUDIT_TARGET, CARRIER_LABELS, LINE_TYPE_LABELS, LineState, NetworkLine
from cloudmgr.lines.rules import CLASSIFIED_TARGETS, carries_classified
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

FIELD_NAMES = {
    "code": "编号", "department": "部门", "carrier": "运营商", "line_type": "类型", "bandwidth_mbps": "带宽",
    "a_site": "A端", "a_city": "A端市", "a_county": "A端县", "a_township": "A端乡镇", "b_site": "B端",
    "b_city": "B端市", "b_county": "B端县", "b_township": "B端乡镇", "monthly_rent": "月租",
    "contract_start": "合同开始", "contract_end": "合同结束", "systems": "承载系统", "server_rooms": "机房",
    "classified": "涉密", "public_facing": "面向公众",
}  # fmt: skip

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
        raise LinesInvalid("文件过大，未导入任何专线", [(0, "文件", f"超过 {MAX_BYTES} 字节")])
    name = filename.lower()
    if name.endswith(".xlsx"):
        table = _xlsx_table(data)
    elif name.endswith(".csv"):
        table = _csv_table(data)
    else:
        raise LinesInvalid("无法识别的文件类型", [(0, "文件", "只接受 .csv 或 .xlsx 文件")])
    if not table:
        raise LinesInvalid("文件为空", [(0, "文件", "没有表头和数据")])
    header = [str(h).strip() if h is not None else "" for h in table[0]]
    known = {**{c: c for c in COLUMNS}, **{v: k for k, v in FIELD_NAMES.items()}}
    problems: list[tuple[int, str, str]] = []
    keys: list[str | None] = []
    for title in header:
        key = known.get(title)
        if title and key is None:
            problems.append((1, title[:64], "未知的列"))
        if key is not None and key in keys:
            problems.append((1, title[:64], "列重复"))
        keys.append(key)
    missing = [c for c in COLUMNS if c not in OPTIONAL and c not in keys]
    problems.extend((1, FIELD_NAMES[c], "缺少此列") for c in missing)
    if problems:
        raise LinesInvalid(f"表头有 {len(problems)} 个问题，未导入任何专线", problems)
    rows = []
    for number, cells in enumerate(table[1:], start=2):
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        values = {key: cell for key, cell in zip(keys, cells, strict=False) if key is not None}
        rows.append(Row(number, values))
    if len(rows) > MAX_ROWS:
        raise LinesInvalid("行数过多，未导入任何专线", [(0, "文件", f"超过 {MAX_ROWS} 行")])
    return rows


def _csv_table(data: bytes) -> list[list[Any]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LinesInvalid("文件不是 UTF-8 编码", [(0, "文件", "请以 UTF-8 编码保存 CSV")]) from exc
    table: list[list[Any]] = []
    try:
        for cells in csv.reader(io.StringIO(text, newline="")):
            if len(cells) > MAX_COLUMNS:
                raise LinesInvalid("列数过多", [(len(table) + 1, "文件", f"超过 {MAX_COLUMNS} 列")])
            table.append(list(cells))
            if len(table) > MAX_ROWS + 1:
                raise LinesInvalid("行数过多，未导入任何专线", [(0, "文件", f"超过 {MAX_ROWS} 行")])
    except csv.Error as exc:
        raise LinesInvalid("CSV 格式错误", [(len(table) + 1, "文件", f"无法解析：{exc}")]) from exc
    return table


def _xlsx_table(data: bytes) -> list[list[Any]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise LinesInvalid("无法读取 XLSX 文件", [(0, "文件", "不是有效的 XLSX 工作簿")]) from exc
    try:
        sheet = book.worksheets[0]
        table: list[list[Any]] = []
        problems: list[tuple[int, str, str]] = []
        for number, row in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS), start=1):
            if number > MAX_ROWS + 1:
                raise LinesInvalid("行数过多，未导入任何专线", [(0, "文件", f"超过 {MAX_ROWS} 行")])
            cells: list[Any] = []
            for cell in row:
                if getattr(cell, "data_type", None) == "f":
                    problems.append((number, getattr(cell, "coordinate", "?"), "不接受公式，请填写数值或文字"))
                    cells.append(None)
                else:
                    cells.append(cell.value)
            table.append(cells)
        if problems:
            raise LinesInvalid(f"{len(problems)} 个单元格是公式，未导入任何专线", problems)
        return table
    finally:
        book.close()


# --- checking -------------------------------------------------------------------------------


def _text(row: Row, key: str, reasons: list[tuple[str, str]], limit: int = 64) -> str:
    raw = row.values.get(key)
    if raw is None:
        raw = ""
    if isinstance(raw, (datetime, date, bool)):
        reasons.append((key, "应为文字"))
        return ""
    text = str(raw).strip()
    if not text:
        if key not in OPTIONAL:
            reasons.append((key, "不能为空"))
        return ""
    if "\x00" in text or any(ord(c) < 32 for c in text):
        reasons.append((key, "含有控制字符"))
    elif has_bidi_control(text):
        reasons.append((key, "含有双向文本控制字符"))
    elif text.startswith(FORMULA_PREFIXES):
        reasons.append((key, "不能以 = + - @ 开头（会被电子表格当作公式）"))
    elif len(text) > limit:
        reasons.append((key, f"超过 {limit} 个字符"))
    else:
        return text
    return ""


def _choice(row: Row, key: str, labels: Mapping[Any, str], reasons: list[tuple[str, str]]) -> Any:
    text = _text(row, key, reasons)
    if not text:
        return None
    for member, label in labels.items():
        if text.casefold() in (member.value, label.casefold()):
            return member
    reasons.append((key, f"{text!r} 无效，应为：{'、'.join(labels.values())}"))
    return None


def _integer(row: Row, key: str, high: int, reasons: list[tuple[str, str]]) -> int | None:
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
        reasons.append((key, f"应为正整数，不是 {str(raw)[:32]!r}"))
        return None
    if not 1 <= value <= high:
        reasons.append((key, f"应在 1 到 {high} 之间，不是 {value}"))
        return None
    return value


def _money(row: Row, key: str, reasons: list[tuple[str, str]]) -> Decimal | None:
    raw = row.values.get(key)
    try:
        if isinstance(raw, bool) or raw is None or raw == "":
            raise InvalidOperation
        value = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        reasons.append((key, f"应为金额（元），不是 {str(raw)[:32]!r}"))
        return None
    if not value.is_finite() or value < 0 or value > MAX_RENT or value != value.quantize(Decimal("0.01")):
        reasons.append((key, f"应为 0 到 {MAX_RENT} 元之间、最多两位小数的金额，不是 {str(raw)[:32]}"))
        return None
    return value.quantize(Decimal("0.01"))


def _date(row: Row, key: str, reasons: list[tuple[str, str]]) -> date | None:
    raw = row.values.get(key)
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw).strip())
    except (TypeError, ValueError):
        reasons.append((key, f"应为日期（YYYY-MM-DD），不是 {str(raw)[:32]!r}"))
        return None


def _flag(row: Row, key: str, reasons: list[tuple[str, str]]) -> bool:
    raw = row.values.get(key)
    text = "" if raw is None else str(raw).strip().casefold()
    if isinstance(raw, bool):
        return raw
    if text in YES:
        return True
    if text not in NO:
        reasons.append((key, f"应为 是 或 否，不是 {text[:16]!r}"))
    return False


def _names(row: Row, key: str, reasons: list[tuple[str, str]]) -> list[str]:
    raw = row.values.get(key)
    text = "" if raw is None else str(raw)
    names: list[str] = []
    for name in re.split(r"[\s,;，；、]+", text.strip()):
        if name and name not in names:
            names.append(name)
    if len(names) > MAX_LINKS:
        reasons.append((key, f"最多 {MAX_LINKS} 项"))
        return []
    return names


def validate(session: Session, rows: Iterable[Row]) -> tuple[list[ValidLine], list[tuple[int, str, str]]]:
    departments = {d.key: d for d in session.scalars(select(Department))}
    departments.update({d.name_zh: d for d in departments.values()})
    systems = {s.hostname: s for s in session.scalars(select(LegacySystem))}
    rooms = {r.code: r for r in session.scalars(select(ServerRoom))}
    seen: dict[str, int] = {}
    valid: list[ValidLine] = []
    problems: list[tuple[int, str, str]] = []
    for row in rows:
        reasons: list[tuple[str, str]] = []
        code = _text(row, "code", reasons)
        if code and not CODE_RE.match(code):
            reasons.append(("code", "应为 1-64 个字母、数字或 . _ - /"))
        elif code in seen:
            reasons.append(("code", f"与第 {seen[code]} 行重复"))
        elif code:
            seen[code] = row.number
        dept_name = _text(row, "department", reasons, 128)
        department = departments.get(dept_name)
        if dept_name and department is None:
            reasons.append(("department", f"未知的部门 {dept_name!r}"))
        carrier = _choice(row, "carrier", CARRIER_LABELS, reasons)
        line_type = _choice(row, "line_type", LINE_TYPE_LABELS, reasons)
        bandwidth = _integer(row, "bandwidth_mbps", MAX_BANDWIDTH_MBPS, reasons)
        texts = {key: _text(row, key, reasons, limit) for key, limit in TEXT_LIMITS.items()}
        rent = _money(row, "monthly_rent", reasons)
        start = _date(row, "contract_start", reasons)
        end = _date(row, "contract_end", reasons)
        if start and end and end < start:
            reasons.append(("contract_end", "合同结束日期早于开始日期"))
        linked_systems: list[LegacySystem] = []
        for hostname in _names(row, "systems", reasons):
            system = systems.get(hostname)
            if system is None:
                reasons.append(("systems", f"未知的系统 {hostname[:128]!r}"))
            elif department is not None and system.department_id != department.id:
                reasons.append(("systems", f"系统 {hostname} 不属于该部门"))
            else:
                linked_systems.append(system)
        linked_rooms: list[ServerRoom] = []
        for room_code in _names(row, "server_rooms", reasons):
            room = rooms.get(room_code)
            if room is None:
                reasons.append(("server_rooms", f"未知的机房 {room_code[:64]!r}"))
            elif department is not None and room.department_id != department.id:
                reasons.append(("server_rooms", f"机房 {room_code} 不属于该部门"))
            else:
                linked_rooms.append(room)
        classified = _flag(row, "classified", reasons)
        public = _flag(row, "public_facing", reasons)
        if reasons:
            problems.extend((row.number, FIELD_NAMES[key], reason) for key, reason in reasons)
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
                problems.append((0, "部门", f"专线 {item.code} 不属于您的部门"))
    if not problems and not valid:
        problems = [(0, "文件", "文件中没有专线")]
    if problems:
        raise LinesInvalid(f"{len(problems)} 个问题，未导入任何专线", sorted(problems))
    existing = {line.code: line for line in session.scalars(select(NetworkLine))}
    result = ImportResult(total=len(valid))
    for item in valid:
        line = existing.get(item.code)
        if line is not None and actor.is_department and line.department_id != actor.department_id:
            raise LinesInvalid("未导入任何专线", [(0, "编号", f"编号 {item.code} 已被其他部门使用")])
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
        problems.append((0, FIELD_NAMES["department"], "只能申报本部门的专线"))
    code = str(values.get("code") or "").strip()[:64]
    # only a well-formed code is looked up (one with a NUL would not even reach PostgreSQL)
    if code and CODE_RE.match(code) and session.scalar(select(NetworkLine.id).where(NetworkLine.code == code)):
        problems.append((0, FIELD_NAMES["code"], f"编号 {code} 已存在"))
    if problems:
        raise LinesInvalid(f"{len(problems)} 个问题，专线未登记", problems)
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
