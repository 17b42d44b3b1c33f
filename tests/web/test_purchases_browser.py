"""The purchase journeys in a real browser (Debian's Chromium through Playwright).

zhangwei (department IT staff) fills in a purchase request for two servers and submits it;
the finance reviewer finds it at the top of the queue with the cloud's offer beside it and
blocks it; zhangwei sees the decision and turns the offer into a VM request draft with one
click; the reviewer opens the reports (chart, export).  Screenshots go to
test-artifacts/purchases-*.png.  Never skipped: without /usr/bin/chromium the test fails.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudmgr.runtime import Runtime
from tests.web.browser_session import browser_session, go, served_app
from tests.web.helpers import Journey

pytestmark = pytest.mark.browser


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the journeys are about the pages (tests/web/test_purchases.py runs them on PostgreSQL too)."""
    return f"sqlite:///{tmp_path / 'cloudmgr.sqlite3'}"


@pytest.fixture
def purchases_server(journey_rt: Runtime) -> Iterator[str]:
    """The app, and a worker beside it as the scheduler runs one (the live purchase findings are work items)."""
    with served_app(journey_rt, "purchases", with_worker=True) as base:
        yield base


def test_department_and_reviewer_purchase_journeys(
    purchases_server: str, journey: Journey, artifacts_dir: Path
) -> None:
    base = purchases_server

    with browser_session(base, artifacts_dir, "purchases") as session:
        # The department: a purchase request for two servers, submitted to finance.
        staff = session.login("zhangwei")
        go(staff, "/portal/purchases")
        staff.click("[data-testid=new-purchase]")
        staff.fill("#title", "不动产登记系统扩容")
        staff.select_option("#category", "server")
        staff.fill("#application_system", "不动产登记系统")
        staff.fill("#justification", "业务量增长，现有服务器不足")
        staff.fill("#lines-0-description", "机架式服务器 2路 8核 16G内存")
        staff.fill("#lines-0-vcpus", "8")
        staff.fill("#lines-0-ram_gb", "16")
        staff.fill("#lines-0-disk_gb", "40")
        staff.fill("#lines-0-quantity", "2")
        staff.fill("#lines-0-unit_price", "45000")
        # the total follows the items as they are typed (the server computes it again)
        assert staff.locator("[data-testid=purchase-total]").inner_text() == "¥90,000.00"
        session.shot(staff, "1-new")
        staff.click("[data-testid=submit-purchase]")
        # At once from the database; the page reloads itself until the live capacity is read.
        staff.wait_for_selector("[data-finding=cloud_provides]")
        assert staff.locator("[data-testid=findings-pending]").count() == 0
        assert staff.locator("[data-state=submitted]").count() == 1
        purchase_path = staff.url.removeprefix(base)
        purchase_id = int(purchase_path.rstrip("/").split("/")[-1])
        session.shot(staff, "2-submitted")

        # The reviewer: the queue, the findings with their evidence, the block.
        reviewer = session.login("finance")
        go(reviewer, "/finance/purchases")
        row = reviewer.locator(f"tr[data-purchase='{purchase_id}']")
        assert row.locator("[data-finding=cloud_provides]").count() == 1
        session.shot(reviewer, "3-queue")
        row.locator("a").first.click()
        reviewer.wait_for_selector("[data-testid=decide]")
        assert "m1." in reviewer.inner_text("[data-finding=cloud_provides]")
        session.shot(reviewer, "4-review")
        reviewer.check("input[name=decision][value=block]")
        reviewer.select_option("#basis", "cloud_provides")
        reviewer.fill("#reason", "云平台已能提供同等资源，不予安排采购资金")
        reviewer.click("[data-testid=decide]")
        reviewer.wait_for_selector("[data-testid=purchase-queue]")
        assert reviewer.locator(f"tr[data-purchase='{purchase_id}']").count() == 0

        # The department sees the decision and makes the VM request draft in one click.
        staff.goto(f"{base}{purchase_path}")
        assert staff.locator("[data-state=blocked]").count() == 1
        assert "云平台已能提供" in staff.inner_text("[data-testid=decision]")
        session.shot(staff, "5-blocked")
        staff.click("[data-testid=vm-draft]")
        staff.wait_for_url("**/portal/requests/*")
        assert staff.locator("[data-testid=submit-draft]").count() == 1
        session.shot(staff, "6-vm-draft")

        # The reports: chart, totals, the Excel export.
        go(reviewer, "/finance/purchase-reports")
        assert "90,000.00" in reviewer.inner_text("[data-testid=saved-total]")
        assert reviewer.locator("rect.chart-bar-blocked").count() >= 1
        session.shot(reviewer, "7-reports")
        with reviewer.expect_download() as download_info:
            reviewer.click("[data-testid=export-xlsx]")
        data = Path(download_info.value.path()).read_bytes()
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(data))["purchases"]
        assert sheet["B2"].value == "prov-education" and sheet["H2"].value == 90000.0
        go(reviewer, "/finance/showback")
        session.shot(reviewer, "8-showback")
