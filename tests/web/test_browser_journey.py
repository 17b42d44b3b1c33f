"""The self-service journey in a real browser (Debian's Chromium through Playwright).

zhangwei (department IT staff) previews and submits a request for three VMs on the education
cloud; lina (department head) approves; the operator approves; the queued work runs (here, in
the test thread, against the same database); zhangwei sees three running VMs; the operator sees
the request and the audit log.  Chinese by default, one step in English.  Screenshots go to
test-artifacts/journey-*.png.  Never skipped: without /usr/bin/chromium the test fails.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.web.helpers import PASSWORDS, Journey, click_nav
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from web import create_app

pytestmark = pytest.mark.browser


@pytest.fixture
def journey_server(journey_rt: Runtime) -> Iterator[str]:
    app = create_app(runtime=journey_rt)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="journey-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@ONE_DATABASE
def test_request_approve_provision_journey(journey_server: str, journey: Journey, artifacts_dir: Path) -> None:
    _require_chromium()
    from playwright.sync_api import ConsoleMessage, Page, Response, sync_playwright

    base = journey_server
    problems: list[str] = []
    for old in artifacts_dir.glob("journey-*.png"):
        old.unlink()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def on_response(response: Response) -> None:
        if response.request.resource_type != "document" and response.status >= 400:
            problems.append(f"{response.status} {response.url}")

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(artifacts_dir / f"journey-{name}.png"), full_page=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        contexts: list[Any] = []

        def login(username: str) -> Page:
            context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
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
            assert page.get_attribute("html", "lang") == "zh-CN"
            return page

        try:
            # 1. zhangwei chooses the education cloud; the select submits itself (the small script).
            staff = login("zhangwei")
            click_nav(staff, "新建申请")
            staff.wait_for_url(f"{base}/portal/requests/new")
            with staff.expect_navigation():
                staff.select_option("#cloud", "education")
            assert staff.url == f"{base}/portal/requests/new?cloud=education"
            assert staff.is_checked("input[name=zone][value=extranet]")
            staff.check("tr:has-text('m1.small') input[name=flavor]")
            staff.fill("#count", "3")
            staff.fill("#name_prefix", "lic")
            staff.fill("#application_system", "行政许可系统")
            staff.fill("#justification", "行政许可系统上云，周五前需要三台外网服务器，不再自购服务器。")
            staff.click("#preview")
            preview = staff.inner_text("[data-testid=preview]")
            assert "¥360.00" in preview and "部门负责人" in preview and "云平台运维人员" in preview
            assert "符合配额" in preview
            shot(staff, "1-preview")

            # 2. Submit: the request page, waiting for the head.
            staff.click("#submit")
            staff.wait_for_url(re.compile(rf"{re.escape(base)}/portal/requests/\d+$"))
            request_path = staff.url.removeprefix(base)
            request_id = int(request_path.rsplit("/", 1)[1])
            assert "已提交审批" in staff.inner_text(".flashes")
            assert "待审批" in staff.inner_text("h1")
            assert staff.locator("tr.server-row").count() == 3
            shot(staff, "2-submitted")

            # 3. lina approves from her queue.
            head = login("lina")
            click_nav(head, "待我审批")
            head.wait_for_url(f"{base}/portal/approvals")
            row = head.locator(f"tr[data-request='{request_id}']")
            assert "¥360.00" in row.inner_text()
            shot(head, "3-head-queue")
            row.locator(f"#reason-{request_id}").fill("同意，注意等保要求")
            row.locator(f"[data-testid=approve-{request_id}]").click()
            head.wait_for_url(f"{base}/portal/approvals")
            assert f"申请 #{request_id} 已批准" in head.inner_text(".flashes")

            # 4. The operator approves from the operators' queue.
            ops = login("operator")
            click_nav(ops, "审批队列")
            ops.wait_for_url(f"{base}/ops/approvals")
            row = ops.locator(f"tr[data-request='{request_id}']")
            assert "省教育厅" in row.inner_text()
            shot(ops, "4-operator-queue")
            row.locator(f"[data-testid=approve-{request_id}]").click()
            ops.wait_for_url(f"{base}/ops/approvals")
            assert "正在创建" in ops.inner_text(".flashes")

            # 5. The queued work runs (the worker's drain, in this thread, on the same database).
            assert journey.drain() >= 1
            assert journey.request_state(request_id) == "active"

            # 6. zhangwei sees three running VMs, then the request's history.
            click_nav(staff, "云主机")
            staff.wait_for_url(f"{base}/portal/servers")
            states = staff.locator("tr.server-row .state").all_inner_texts()
            assert states == ["运行中"] * 3
            assert {"lic-01", "lic-02", "lic-03"} <= set(staff.locator("tr.server-row th a").all_inner_texts())
            shot(staff, "5-servers")
            staff.goto(f"{base}{request_path}")
            assert "已交付" in staff.inner_text("h1")
            assert staff.locator(".chain-approved").count() == 2
            shot(staff, "6-delivered")
            click_nav(staff, "配额")
            staff.wait_for_url(f"{base}/portal/quotas")
            assert "教育云" in staff.inner_text(".cards")
            shot(staff, "7-staff-quotas")

            # 7. The operator sees the request and the audit log, then reads the log in English.
            click_nav(ops, "全部申请")
            ops.wait_for_url(f"{base}/ops/requests")
            ops.click(f"a[href='/ops/requests/{request_id}']")
            ops.wait_for_url(f"{base}/ops/requests/{request_id}")
            assert ops.locator("tr.server-active").count() == 3
            shot(ops, "8-operator-request")
            click_nav(ops, "审计日志")
            ops.wait_for_url(f"{base}/ops/audit")
            log = ops.inner_text(".audit-table")
            for action in ("request.submit", "request.approve", "request.provisioned", "server.active"):
                assert action in log, action
            shot(ops, "9-audit")
            click_nav(ops, "配额")
            ops.wait_for_url(f"{base}/ops/quotas")
            assert ops.locator("tr[data-quota='prov-education/education']").count() == 1
            shot(ops, "10-operator-quotas")
            ops.click("a.lang-link[hreflang=en]")
            ops.wait_for_url(f"{base}/ops/quotas")
            assert ops.get_attribute("html", "lang") == "en"
            assert "Quotas" in ops.inner_text("h1") and "All requests" in (ops.text_content(".main-nav") or "")
            click_nav(ops, "Catalog")
            ops.wait_for_url(f"{base}/ops/catalog")
            assert "Small 1 vCPU 2 GB" in ops.input_value(
                f"#name_en-{journey.item_id('province-base', 'flavor', 'm1.small')}"
            )
            shot(ops, "11-catalog-english")
        finally:
            for context in contexts:
                context.close()
            browser.close()

    assert not problems, f"browser console errors: {problems}"
