"""The web app in a real browser: Debian's Chromium driven by Playwright.

Never skipped: without /usr/bin/chromium the test fails and says how to install it.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from cloudmgr.demo import DEMO_LOGINS
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.web.helpers import HOME_PATHS
from web import create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
def live_server(seeded: Runtime) -> Iterator[str]:
    """The app served by werkzeug on 127.0.0.1 and a free port, in a background thread."""
    app = create_app(runtime=seeded)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium and CJK fonts. "
            "Install them with: apt-get update && apt-get install -y chromium fonts-noto-cjk",
            pytrace=False,
        )


@ONE_DATABASE
def test_every_role_logs_in_lands_home_and_logs_out(live_server: str, artifacts_dir: Path) -> None:
    _require_chromium()
    from playwright.sync_api import ConsoleMessage, Response, sync_playwright

    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # CSP violations show up here.  Pages answered with 4xx on purpose (a form with
        # errors is a 400) are logged as "Failed to load resource": on_response judges those.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def on_response(response: Response) -> None:
        # Every stylesheet, image and icon must load.
        if response.request.resource_type != "document" and response.status >= 400:
            problems.append(f"{response.status} {response.url}")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.on("console", on_console)
            page.on("response", on_response)

            for demo in DEMO_LOGINS:
                page.goto(f"{live_server}/")
                assert page.url == f"{live_server}/login"
                # Chinese although the browser asks for English.
                assert page.get_attribute("html", "lang") == "zh-CN"
                assert page.inner_text("#login-title") == "登录 cloudmgr"
                assert "模拟云" in page.inner_text(".site-header")

                page.fill("#username", demo.username)
                page.fill("#password", demo.password)
                page.click("#submit")
                page.wait_for_url(f"{live_server}{HOME_PATHS[demo.role.value]}")
                header = page.inner_text(".site-header")
                assert demo.display_name in header
                assert page.locator(".main-nav a.active").count() == 1
                page.screenshot(path=str(artifacts_dir / f"home-{demo.role.value}-{demo.username}.png"), full_page=True)

                page.click("[data-testid=logout]")
                page.wait_for_url(f"{live_server}/login")

            # A wrong password: the error is in the form.
            page.fill("#username", "admin")
            page.fill("#password", "not-the-password-1")
            page.click("#submit")
            assert "用户名或密码错误" in page.inner_text(".error-summary")
            page.screenshot(path=str(artifacts_dir / "login-wrong-password.png"), full_page=True)

            # Switch to English once.
            page.click("a.lang-link[hreflang=en]")
            page.wait_for_url(f"{live_server}/login")
            assert page.get_attribute("html", "lang") == "en"
            assert page.inner_text("#login-title") == "Log in to cloudmgr"
            page.fill("#username", "admin")
            page.fill("#password", "demo-admin-2026")
            page.click("#submit")
            page.wait_for_url(f"{live_server}/admin/")
            assert "Users, departments and clouds" in page.inner_text("h1")
            page.screenshot(path=str(artifacts_dir / "home-admin-english.png"), full_page=True)
            page.click("a.lang-link[hreflang=zh]")
            page.wait_for_url(f"{live_server}/admin/")
            assert "用户、部门和云平台" in page.inner_text("h1")

            # The admin creates a user: first a mistake, then properly.
            page.click("text=创建用户 >> nth=0")
            page.wait_for_url(f"{live_server}/admin/users/new")
            page.fill("#username", "zhaolei")
            page.select_option("#role", "dept_staff")
            page.fill("#password", "good-pass-2026")
            page.fill("#confirm", "good-pass-2026")
            page.click("#submit")
            assert "必须选择所属部门" in page.inner_text(".error-summary")
            page.screenshot(path=str(artifacts_dir / "admin-new-user-error.png"), full_page=True)
            page.select_option("#department", "prov-finance")
            page.fill("#password", "good-pass-2026")
            page.fill("#confirm", "good-pass-2026")
            page.click("#submit")
            page.wait_for_url(f"{live_server}/admin/users")
            assert "已创建用户 zhaolei" in page.inner_text(".flashes")
            context.close()
        finally:
            browser.close()

    assert not problems, f"browser console errors: {problems}"
