"""The capacity page in headless Chromium (simulated clouds): a snapshot, the hosts and the chart."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudmgr.demo import DEMO_LOGINS
from tests.conftest import ONE_DATABASE
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium, live_server  # noqa: F401

pytestmark = pytest.mark.browser


@ONE_DATABASE
def test_capacity_page_in_the_browser(live_server: str, artifacts_dir: Path) -> None:  # noqa: F811
    _require_chromium()
    from playwright.sync_api import ConsoleMessage, sync_playwright

    operator = next(d for d in DEMO_LOGINS if d.role.value == "operator")
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)  # a CSP violation shows up here

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.set_default_timeout(15_000)
            page.on("console", on_console)
            page.goto(f"{live_server}/login")
            page.fill("#username", operator.username)
            page.fill("#password", operator.password)
            page.click("#submit")
            page.wait_for_url(f"{live_server}/ops/")
            page.goto(f"{live_server}/ops/capacity")
            assert page.locator(".main-nav a.active").text_content() == "容量"
            page.click("[data-testid=take-snapshot]")
            page.wait_for_url(f"{live_server}/ops/capacity")
            assert "已采集" in page.inner_text(".flashes")
            assert page.locator("tr[data-host]").count() >= 1
            assert page.locator("[data-testid=servers-chart] .chart-target").count() == 2
            assert page.locator("[data-testid=servers-chart] .chart-dot").count() >= 1
            # The chart is drawn by the stylesheet (no style attributes): the target lines are red.
            stroke = page.eval_on_selector(
                "[data-testid=servers-chart] .chart-target", "e => getComputedStyle(e).stroke"
            )
            assert stroke == "rgb(200, 22, 30)"
            page.screenshot(path=str(artifacts_dir / "capacity.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
