"""The department resources page in Chromium (issue 16): the department is found by typing its
name (the search box narrows the select; without the script the select alone works), and the
page shows its resources.  Screenshots go to test-artifacts/."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.web.helpers import Journey, demo_login
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from tests.web.test_department_resources import _department_with_everything
from web import create_app

pytestmark = pytest.mark.browser


@pytest.fixture
def live_journey_server(journey_rt: Runtime) -> Iterator[str]:
    app = create_app(runtime=journey_rt)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@ONE_DATABASE
def test_an_operator_finds_a_department_by_typing_its_name(
    live_journey_server: str, journey: Journey, artifacts_dir: Path
) -> None:
    _require_chromium()
    from playwright.sync_api import ConsoleMessage, sync_playwright

    _department_with_everything(journey)
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    operator = demo_login("operator")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
            page.set_default_timeout(15_000)
            page.on("console", on_console)
            page.goto(f"{live_journey_server}/login")
            page.fill("#username", operator.username)
            page.fill("#password", operator.password)
            page.click("#submit")
            page.wait_for_url(f"{live_journey_server}/ops/")
            page.click(".main-nav details[data-nav-group=requests] summary")
            page.click(".main-nav a[href='/ops/department-resources']")
            page.wait_for_url(f"{live_journey_server}/ops/department-resources")

            search = page.locator("#department-search")
            assert search.is_visible()  # the script shows it
            search.fill("教育")
            shown = page.eval_on_selector_all(
                "#department option", "options => options.filter(o => o.value && !o.hidden).map(o => o.value)"
            )
            assert "prov-education" in shown and "prov-finance" not in shown
            assert all("education" in key for key in shown), shown
            page.select_option("#department", "prov-education")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**/ops/department-resources?department=prov-education*")
            assert "省教育厅" in page.inner_text("[data-testid=overview-title]")
            assert page.locator("[data-testid=firewall-groups] [data-testid=rule-lines] code").count() == 3
            page.screenshot(path=str(artifacts_dir / "ops-department-resources.png"), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
