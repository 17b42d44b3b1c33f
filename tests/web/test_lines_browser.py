"""The dedicated-line journeys in a real browser (Debian's Chromium through Playwright, issue 19).

(a) zhangwei (department IT staff) imports a spreadsheet with one bad row: the page names the row and
the column in Chinese and stores nothing; the fixed file imports and the lines are listed.
(b) The operator plans a cut-over batch for a county with a date from the menu, sees the lines planned,
records one cut-over (answering the confirmation) and sees its state change.
Screenshots go to test-artifacts/lines-*.png.  Never skipped: without /usr/bin/chromium the test fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cloudmgr.lines.models import LineState, LineTarget, NetworkLine
from cloudmgr.runtime import Runtime
from tests.lines.helpers import make_line
from tests.web.browser_session import browser_session, go, served_app
from tests.web.helpers import Journey
from tests.web.test_lines import csv_bytes, line_count, row

pytestmark = pytest.mark.browser


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the journeys are about the pages (tests/web/test_lines.py runs them on PostgreSQL too)."""
    return f"sqlite:///{tmp_path / 'cloudmgr.sqlite3'}"


@pytest.fixture
def lines_server(journey_rt: Runtime) -> Iterator[str]:
    with served_app(journey_rt, "lines") as base:
        yield base


def _state(rt: Runtime, code: str) -> tuple[LineState, LineTarget | None]:
    with rt.db.unit_of_work() as uow:
        line = uow.session.scalars(select(NetworkLine).where(NetworkLine.code == code)).one()
        return line.state, line.target


def test_import_with_a_bad_row_then_a_cutover_batch(lines_server: str, journey: Journey, artifacts_dir: Path) -> None:
    from playwright.sync_api import FilePayload

    base = lines_server
    with journey.rt.db.unit_of_work() as uow:  # another department's lines in Qian'an, for the batch
        make_line(uow.session, "TS-QA-1", dept_key="ts-hrss", b_city="唐山市", b_county="迁安市")
        make_line(uow.session, "TS-QA-2", dept_key="ts-hrss", b_city="唐山市", b_county="迁安市", public_facing=True)
        make_line(uow.session, "TS-LB-1", dept_key="ts-hrss", b_city="唐山市", b_county="路北区")

    with browser_session(base, artifacts_dir, "lines") as session:
        # (a) the department imports a spreadsheet: one bad row, nothing stored; fixed, all listed
        staff = session.login("zhangwei")
        go(staff, "/portal/lines")
        staff.click("[data-testid=import-lines]")
        bad = csv_bytes([row(), row(code="JYT-MSTP-002", bandwidth_mbps="很快"), row(code="JYT-MSTP-003")])
        staff.set_input_files("#lines_file", files=[FilePayload(name="专线.csv", mimeType="text/csv", buffer=bad)])
        staff.click("#submit")
        staff.wait_for_selector("[data-testid=import-problems]")
        cells = staff.locator("[data-testid=import-problems] tbody tr").first.locator("th, td").all_inner_texts()
        assert "3" in cells[0] and cells[1] == "带宽（Mbit/s）" and "应为正整数" in cells[2], cells
        assert staff.locator("[data-testid=import-problems] tbody tr").count() == 1
        assert line_count(journey.rt) == 3  # only the other department's three: nothing imported
        session.shot(staff, "1-import-refused")
        good = csv_bytes([row(), row(code="JYT-MSTP-002", bandwidth_mbps="50"), row(code="JYT-MSTP-003")])
        staff.set_input_files("#lines_file", files=[FilePayload(name="专线.csv", mimeType="text/csv", buffer=good)])
        staff.click("#submit")
        staff.wait_for_selector("[data-testid=lines]")
        for code in ("JYT-MSTP-001", "JYT-MSTP-002", "JYT-MSTP-003"):
            assert staff.locator(f"tr[data-line='{code}']").count() == 1
        assert staff.locator("tr[data-line='TS-QA-1']").count() == 0  # another department's
        session.shot(staff, "2-imported")

        # (b) the operator plans a batch for Qian'an and records a cut-over
        operator = session.login("operator")
        go(operator, "/ops/lines/batch")
        operator.select_option("#city", "唐山市")
        operator.select_option("#county", "迁安市")
        when = (date.today() + timedelta(days=10)).isoformat()
        operator.fill("#cutover_date", when)
        session.shot(operator, "3-batch")
        operator.click("#submit")
        operator.wait_for_selector("[data-testid=record-TS-QA-1]")
        planned = operator.locator("tr[data-line='TS-QA-1']")
        assert when in planned.inner_text()
        assert operator.locator("tr[data-line='TS-LB-1']").count() == 0  # another county: not in this batch
        assert _state(journey.rt, "TS-QA-1") == (LineState.PLANNED, LineTarget.EXTRANET)
        assert _state(journey.rt, "TS-QA-2") == (LineState.PLANNED, LineTarget.INTERNET)
        assert _state(journey.rt, "TS-LB-1") == (LineState.IN_SERVICE, None)
        before = planned.locator("[data-testid=line-state]").inner_text()
        session.shot(operator, "4-planned")
        operator.once("dialog", lambda dialog: dialog.dismiss())  # "no": nothing recorded
        operator.click("[data-testid=record-TS-QA-1]")
        assert _state(journey.rt, "TS-QA-1")[0] == LineState.PLANNED
        operator.once("dialog", lambda dialog: dialog.accept())
        operator.click("[data-testid=record-TS-QA-1]")
        operator.wait_for_selector(".flash-success")
        operator.goto(f"{base}/ops/lines?city=唐山市&county=迁安市")
        after = operator.locator("tr[data-line='TS-QA-1'] [data-testid=line-state]").inner_text()
        assert after and after != before and operator.locator("[data-testid=record-TS-QA-1]").count() == 0
        assert operator.locator("[data-testid=record-TS-QA-2]").count() == 1
        assert _state(journey.rt, "TS-QA-1")[0] == LineState.CUT_OVER
        session.shot(operator, "5-recorded")
        go(operator, "/ops/lines/coverage")
        reached = operator.locator("tr[data-place='唐山市/迁安市/']")
        assert reached.get_attribute("data-reached") == "yes"
        session.shot(operator, "6-coverage")
