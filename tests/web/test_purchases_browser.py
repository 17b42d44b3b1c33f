"""The purchase journeys in a real browser (Debian's Chromium through Playwright).

zhangwei (department IT staff) fills in a purchase request for two servers and submits it;
the finance reviewer finds it at the top of the queue with the cloud's offer beside it and
blocks it; zhangwei sees the decision and turns the offer into a VM request draft with one
click; the reviewer opens the reports (chart, export).  Screenshots go to
test-artifacts/purchases-*.png.  Never skipped: without /usr/bin/chromium the test fails.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.workqueue.services import Worker
from tests.web.helpers import PASSWORDS, Journey
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from web import create_app

pytestmark = pytest.mark.browser


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the journeys are about the pages (tests/web/test_purchases.py runs them on PostgreSQL too)."""
    return f"sqlite:///{tmp_path / 'cloudmgr.sqlite3'}"


@pytest.fixture
def purchases_server(journey_rt: Runtime) -> Iterator[str]:
    """The app, and a worker beside it as the scheduler runs one (the live purchase findings are work items)."""
    app = create_app(runtime=journey_rt)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="purchases-server", daemon=True)
    thread.start()
    stop = threading.Event()

    def work() -> None:
        worker = Worker(journey_rt.db, work_handlers())
        while not stop.wait(0.5):
            worker.drain()

    worker_thread = threading.Thread(target=work, name="purchases-worker", daemon=True)
    worker_thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        stop.set()
        worker_thread.join(timeout=30)
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _go(page: Any, href: str) -> None:
    """Follow the header menu's link to ``href``, opening its group first when the menu holds
    it in one (web/common/navigation.py groups the menu by task)."""
    link = page.locator(f".main-nav a[href='{href}']")
    if not link.is_visible():
        page.locator(".main-nav details", has=page.locator(f"a[href='{href}']")).locator("summary").click()
    link.click()


def test_department_and_reviewer_purchase_journeys(
    purchases_server: str, journey: Journey, artifacts_dir: Path
) -> None:
    _require_chromium()
    from playwright.sync_api import ConsoleMessage, Page, Response, sync_playwright

    base = purchases_server
    problems: list[str] = []
    for old in artifacts_dir.glob("purchases-*.png"):
        old.unlink()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def on_response(response: Response) -> None:
        if response.request.resource_type != "document" and response.status >= 400:
            problems.append(f"{response.status} {response.url}")

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(artifacts_dir / f"purchases-{name}.png"), full_page=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        contexts: list[Any] = []

        def login(username: str) -> Page:
            context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
            contexts.append(context)
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.on("console", on_console)
            page.on("response", on_response)
            page.goto(f"{base}/login")
            page.fill("#username", username)
            page.fill("#password", PASSWORDS[username])
            page.click("#submit")
            page.wait_for_load_state()
            return page

        try:
            # The department: a purchase request for two servers, submitted to finance.
            staff = login("zhangwei")
            _go(staff, "/portal/purchases")
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
            shot(staff, "1-new")
            staff.click("[data-testid=submit-purchase]")
            # At once from the database; the page reloads itself until the live capacity is read.
            staff.wait_for_selector("[data-finding=cloud_provides]")
            assert staff.locator("[data-testid=findings-pending]").count() == 0
            assert staff.locator("[data-state=submitted]").count() == 1
            purchase_path = staff.url.removeprefix(base)
            purchase_id = int(purchase_path.rstrip("/").split("/")[-1])
            shot(staff, "2-submitted")

            # The reviewer: the queue, the findings with their evidence, the block.
            reviewer = login("finance")
            _go(reviewer, "/finance/purchases")
            row = reviewer.locator(f"tr[data-purchase='{purchase_id}']")
            assert row.locator("[data-finding=cloud_provides]").count() == 1
            shot(reviewer, "3-queue")
            row.locator("a").first.click()
            reviewer.wait_for_selector("[data-testid=decide]")
            assert "m1." in reviewer.inner_text("[data-finding=cloud_provides]")
            shot(reviewer, "4-review")
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
            shot(staff, "5-blocked")
            staff.click("[data-testid=vm-draft]")
            staff.wait_for_url("**/portal/requests/*")
            assert staff.locator("[data-testid=submit-draft]").count() == 1
            shot(staff, "6-vm-draft")

            # The reports: chart, totals, the Excel export.
            _go(reviewer, "/finance/purchase-reports")
            assert "90,000.00" in reviewer.inner_text("[data-testid=saved-total]")
            assert reviewer.locator("rect.chart-bar-blocked").count() >= 1
            shot(reviewer, "7-reports")
            with reviewer.expect_download() as download_info:
                reviewer.click("[data-testid=export-xlsx]")
            data = Path(download_info.value.path()).read_bytes()
            from openpyxl import load_workbook

            sheet = load_workbook(io.BytesIO(data))["purchases"]
            assert sheet["B2"].value == "prov-education" and sheet["H2"].value == 90000.0
            _go(reviewer, "/finance/showback")
            shot(reviewer, "8-showback")
        finally:
            for context in contexts:
                context.close()
            browser.close()
    assert not problems, problems
