"""Importing lines from CSV and XLSX: all or nothing, every bad row reported with its row and field in
Chinese, hostile values refused, re-import in place, the CLI."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import func, select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cli import main
from cloudmgr.lines.errors import LinesInvalid
from cloudmgr.lines.importer import COLUMNS, import_lines
from cloudmgr.lines.models import Carrier, LineState, LineTarget, LineType, NetworkLine
from cloudmgr.lines.services import plan_line
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime
from tests.inventory.helpers import department, make_system

OPERATOR = Actor(username="op", role=Role.OPERATOR)


def row(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "code": "JYT-MSTP-001",
        "department": "prov-education",
        "carrier": "中国电信",
        "line_type": "MSTP",
        "bandwidth_mbps": "100",
        "a_site": "省教育厅信息中心机房",
        "a_city": "石家庄市",
        "a_county": "长安区",
        "a_township": "",
        "b_site": "省政务云中心",
        "b_city": "石家庄市",
        "b_county": "",
        "b_township": "",
        "monthly_rent": "3200.00",
        "contract_start": "2024-01-01",
        "contract_end": "2027-12-31",
        "systems": "",
        "server_rooms": "",
        "classified": "否",
        "public_facing": "否",
    }
    values.update(overrides)
    return values


def csv_bytes(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def xlsx_bytes(table: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for cells in table:
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def count(runtime: Runtime) -> int:
    with runtime.db.unit_of_work() as uow:
        return uow.session.scalar(select(func.count()).select_from(NetworkLine)) or 0


def do_import(runtime: Runtime, data: bytes, filename: str = "lines.csv", actor: Actor = OPERATOR) -> Any:
    with runtime.db.unit_of_work() as uow:
        return import_lines(uow.session, data, filename=filename, actor=actor, entry_point="test")


def test_csv_import_and_reimport(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        make_system(uow.session, "jyt-web01", network="internet")
    rows = [
        row(),
        row(code="JYT-INT-002", carrier="unicom", line_type="internet", systems="jyt-web01",
            server_rooms="prov-education-room-1", public_facing="是", monthly_rent="1,800.5"),
    ]  # fmt: skip
    result = do_import(seeded, b"\xef\xbb\xbf" + csv_bytes(rows))
    assert (result.total, result.created) == (2, 2)
    with seeded.db.unit_of_work() as uow:
        lines = {line.code: line for line in uow.session.scalars(select(NetworkLine))}
        first, second = lines["JYT-MSTP-001"], lines["JYT-INT-002"]
        assert (first.carrier, first.line_type, first.bandwidth_mbps) == (Carrier.TELECOM, LineType.MSTP, 100)
        assert first.monthly_rent == Decimal("3200.00") and first.state == LineState.IN_SERVICE
        assert second.carrier == Carrier.UNICOM and second.monthly_rent == Decimal("1800.50")
        assert [s.hostname for s in second.systems] == ["jyt-web01"]
        assert [r.code for r in second.rooms] == ["prov-education-room-1"]
        assert second.public_facing
    again = do_import(seeded, csv_bytes([row(bandwidth_mbps="200"), rows[1]]))
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    assert count(seeded) == 2


def test_every_bad_row_is_reported_and_nothing_imported(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        make_system(uow.session, "rst-app01", dept_key="prov-hrss")
    rows = [
        row(),
        row(code="B-1", carrier="中国铁通", bandwidth_mbps="-5", monthly_rent="abc"),
        row(code="B-2", contract_start="2027-01-01", contract_end="2026-01-01", department="nope"),
        row(code="JYT-MSTP-001", a_site='=HYPERLINK("http://evil")', systems="rst-app01 ghost01"),
        row(code="B-4", line_type="carrier pigeon", classified="maybe", b_city="", a_county="x" * 65),
    ]
    with pytest.raises(LinesInvalid) as caught:
        do_import(seeded, csv_bytes(rows))
    problems = caught.value.problems
    # the fields and reasons are messages (English here; the pages show them in their language)
    found = {(number, str(field)) for number, field, _reason in problems}
    assert {(3, "Carrier"), (3, "Bandwidth (Mbit/s)"), (3, "Monthly rent (yuan)")} <= found
    assert {(4, "Contract ends"), (4, "Department")} <= found
    assert {(5, "Line number"), (5, "End A: site"), (5, "Legacy systems it carries")} <= found
    assert {(6, "Line type"), (6, "It carries classified business"), (6, "End B: city")} <= found
    assert (6, "End A: county or district") in found
    assert all(number != 2 for number, _f, _r in problems)
    reasons = " ".join(str(reason) for _n, _f, reason in problems)
    assert "formula" in reasons and "ghost01" in reasons and "is not the department's" in reasons
    assert "The same as row 2" in reasons
    assert "'中国铁通' is not valid; use one of: telecom (中国电信)" in reasons
    assert count(seeded) == 0
    with seeded.db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action.like("network_line%"))) == 0  # fmt: skip


@pytest.mark.parametrize(
    ("data", "filename", "needle"),
    [
        (b"code,department\nx,y\n", "lines.csv", "The column is missing"),
        (b"\xff\xfe\x00", "lines.csv", "UTF-8"),
        (b"", "lines.csv", "empty"),
        (b"whatever", "lines.txt", ".csv"),
        (b"not a zip", "lines.xlsx", "XLSX"),
        (csv_bytes([row()]).replace(b"code,", b"evil,code,"), "lines.csv", "Unknown column"),
    ],
)
def test_unreadable_files_are_refused(seeded: Runtime, data: bytes, filename: str, needle: str) -> None:
    with pytest.raises(LinesInvalid) as caught:
        do_import(seeded, data, filename)
    assert needle in caught.value.message + " ".join(str(r) for _n, _f, r in caught.value.problems)
    assert count(seeded) == 0


def test_xlsx_import_with_chinese_headers_and_typed_cells(seeded: Runtime) -> None:
    from datetime import date, datetime

    from cloudmgr.lines.importer import FIELD_NAMES

    header = [FIELD_NAMES[c] for c in COLUMNS]
    values = row(bandwidth_mbps=1000, monthly_rent=12000, contract_start=datetime(2023, 7, 1),
                 contract_end=date(2026, 6, 30), line_type="裸光纤", carrier="中国移动")  # fmt: skip
    result = do_import(seeded, xlsx_bytes([header, [values[c] for c in COLUMNS]]), "lines.xlsx")
    assert result.created == 1
    with seeded.db.unit_of_work() as uow:
        line = uow.session.scalars(select(NetworkLine)).one()
        assert (line.line_type, line.carrier, line.bandwidth_mbps) == (LineType.LEASED_FIBRE, Carrier.MOBILE, 1000)
        assert line.contract_start == date(2023, 7, 1)


def test_xlsx_formula_cells_are_refused(seeded: Runtime) -> None:
    values = row()
    cells = [values[c] for c in COLUMNS]
    cells[COLUMNS.index("monthly_rent")] = "=1000*3"
    with pytest.raises(LinesInvalid) as caught:
        do_import(seeded, xlsx_bytes([list(COLUMNS), cells]), "lines.xlsx")
    assert any("formula" in str(reason) and number == 2 for number, _f, reason in caught.value.problems)
    assert count(seeded) == 0


def test_reimport_making_a_line_classified_clears_an_extranet_plan(seeded: Runtime) -> None:
    do_import(seeded, csv_bytes([row()]))
    with seeded.db.unit_of_work() as uow:
        plan_line(uow.session, "JYT-MSTP-001", LineTarget.EXTRANET, actor=OPERATOR, entry_point="test")
    result = do_import(seeded, csv_bytes([row(classified="是")]))
    assert result.plans_cleared == ["JYT-MSTP-001"]
    with seeded.db.unit_of_work() as uow:
        line = uow.session.scalars(select(NetworkLine)).one()
        assert line.target is None and line.state == LineState.IN_SERVICE and line.declared_classified


def test_department_staff_import_only_their_own_lines(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        staff = Actor(username="wangfang", role=Role.DEPT_STAFF, department_id=department(uow.session, "ts-hrss").id)
    with pytest.raises(LinesInvalid) as caught:
        do_import(seeded, csv_bytes([row()]), actor=staff)
    assert "is not your department's" in str(caught.value.problems[0][2])
    assert do_import(seeded, csv_bytes([row(department="ts-hrss", code="TS-1")]), actor=staff).created == 1


def test_cli_import(seeded: Runtime, tmp_path: Path) -> None:
    env = {"CLOUDMGR_DATABASE_URL": seeded.settings.database_url, "CLOUDMGR_INSTANCE_PATH": str(tmp_path)}
    runner = CliRunner()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([row(), row(code="X-2", bandwidth_mbps="fast")]))
    result = runner.invoke(main, ["lines", "import", str(bad)], env=env)
    assert result.exit_code != 0
    assert "row 3, Bandwidth (Mbit/s): Should be a positive whole number" in result.output
    assert "Nothing was imported" in result.output
    assert count(seeded) == 0
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([row(), row(code="X-2")]))
    result = runner.invoke(main, ["lines", "import", str(good)], env=env)
    assert result.exit_code == 0, result.output
    assert "2 new" in result.output
    result = runner.invoke(main, ["lines", "list", "--department", "prov-education"], env=env)
    assert result.exit_code == 0 and "X-2" in result.output and "2 lines" in result.output
    result = runner.invoke(main, ["lines", "import", str(tmp_path / "missing.csv")], env=env)
    assert result.exit_code != 0


def test_declaring_one_line(seeded: Runtime, tmp_path: Path) -> None:
    from cloudmgr.lines.importer import declare_line

    with seeded.db.unit_of_work() as uow:
        make_system(uow.session, "secret01", classification="classified", network="intranet", state="intranet")
        line = declare_line(uow.session, row(code="ONE-1"), actor=OPERATOR, entry_point="test")
        assert line.state == LineState.IN_SERVICE
    with pytest.raises(LinesInvalid) as caught, seeded.db.unit_of_work() as uow:
        declare_line(uow.session, row(code="ONE-1", bandwidth_mbps="0"), actor=OPERATOR, entry_point="test")
    assert {str(field) for _n, field, _r in caught.value.problems} == {"Line number", "Bandwidth (Mbit/s)"}
    env = {"CLOUDMGR_DATABASE_URL": seeded.settings.database_url, "CLOUDMGR_INSTANCE_PATH": str(tmp_path)}
    base = ["lines", "add", "--department", "prov-education", "--carrier", "中国联通", "--type", "sdh",
            "--bandwidth", "2", "--a-site", "甲", "--a-city", "石家庄市", "--b-site", "乙", "--b-city", "石家庄市",
            "--rent", "900", "--start", "2024-01-01", "--end", "2027-01-01"]  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(main, [*base, "--code", "ONE-2", "--system", "secret01"], env=env)
    assert result.exit_code == 0, result.output
    assert "by the rules it goes to E-government intranet" in result.output
    result = runner.invoke(main, [*base, "--code", "ONE-2", "--system", "ghost"], env=env)
    assert result.exit_code != 0
    assert "already exists" in result.output and "ghost" in result.output
    assert count(seeded) == 2
