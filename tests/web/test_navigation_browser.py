"""The header menu and small screens in Chromium (issue 18).

Every role logs in: at 1280 px its menu (grouped by task, web/common/navigation.py) holds one row
and each group opens into its pages and closes again; at 390 px none of the role's menu pages,
nor the first page each one's tables link to, is wider than the screen, and no monospace code
is broken one character per line.  Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from cloudmgr.demo import DEMO_LOGINS
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.web.helpers import HOME_PATHS
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from web import create_app

pytestmark = pytest.mark.browser

# The tops of the bar's entries: one row when they are all the same.
_ROW_TOPS = """() => Array.from(document.querySelectorAll('.main-nav > .container > ul > li'))
    .map(li => Math.round(li.getBoundingClientRect().top))"""

# Codes drawn on several lines with fewer than three characters a line.
_BROKEN_CODES = """() => Array.from(document.querySelectorAll('main code, main .mono, main kbd, main samp'))
    .filter(el => el.offsetParent !== null)
    .map(el => {
        const text = el.textContent.trim();
        const lines = new Set(Array.from(el.getClientRects()).map(r => Math.round(r.top))).size;
        return {text: text, lines: lines};
    })
    .filter(c => c.lines > 1 && c.text.length / c.lines < 3)
    .map(c => c.text)"""


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
def test_every_role_has_a_one_row_menu_and_pages_that_fit_a_phone(
    live_journey_server: str, artifacts_dir: Path
) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    base = live_journey_server
    problems: list[str] = []
    roles_seen: set[str] = set()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for demo in DEMO_LOGINS:
                role = demo.role.value
                if role in roles_seen:
                    continue
                roles_seen.add(role)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.set_default_timeout(15_000)
                page.goto(f"{base}/login")
                page.fill("#username", demo.username)
                page.fill("#password", demo.password)
                page.click("#submit")
                page.wait_for_url(f"{base}{HOME_PATHS[role]}")

                tops = page.evaluate(_ROW_TOPS)
                assert len(set(tops)) == 1, f"{role}: the menu takes {len(set(tops))} rows at 1280 px"
                assert len(tops) <= 8, f"{role}: {len(tops)} entries in the bar"

                # Each group opens into its pages; a click elsewhere closes it; one is open at a time.
                groups = page.locator(".main-nav details[data-nav-group]")
                for index in range(groups.count()):
                    group = groups.nth(index)
                    group.locator("summary").click()
                    links = group.locator("a")
                    assert links.count() >= 2
                    assert all(links.nth(i).is_visible() for i in range(links.count()))
                    assert page.locator(".main-nav details[open]").count() == 1
                    page.screenshot(path=str(artifacts_dir / f"nav-{role}-{index}-1280.png"))
                page.click(".site-footer")
                assert page.locator(".main-nav details[open]").count() == 0

                hrefs: list[str] = page.eval_on_selector_all(
                    ".main-nav a", "links => links.map(a => a.getAttribute('href'))"
                )
                page.set_viewport_size({"width": 390, "height": 844})
                # The menu's pages, then the first page each one's tables link to (a request,
                # a wave, a server...), once each.
                details: list[str] = []
                for href in hrefs:
                    page.goto(f"{base}{href}")
                    first = page.eval_on_selector_all(
                        "main table tbody a[href^='/']", "links => links.map(a => a.getAttribute('href'))"
                    )
                    details.extend(link for link in first[:1] if link not in hrefs and link not in details)
                for href in hrefs + details:
                    page.goto(f"{base}{href}")
                    width = page.evaluate("() => document.documentElement.scrollWidth")
                    if width > 390:
                        problems.append(f"{role} {href}: {width} px wide at 390 px")
                    broken = page.evaluate(_BROKEN_CODES)
                    if broken:
                        problems.append(f"{role} {href}: codes one character a line: {broken[:5]}")
                    name = re.sub(r"[^A-Za-z0-9_-]+", "-", href.strip("/")) or "root"
                    page.screenshot(path=str(artifacts_dir / f"phone-{role}-{name}.png"), full_page=True)

                # On a phone the bar takes two rows at most and a group still opens.
                page.goto(f"{base}{HOME_PATHS[role]}")
                rows = len(set(page.evaluate(_ROW_TOPS)))
                assert rows <= 2, f"{role}: the menu takes {rows} rows at 390 px"
                if groups.count():
                    groups.first.locator("summary").click()
                    assert groups.first.locator("a").first.is_visible()
                    width = page.evaluate("() => document.documentElement.scrollWidth")
                    assert width <= 390, f"{role}: an open group makes the page {width} px wide"
                context.close()
        finally:
            browser.close()
    assert roles_seen == {"dept_staff", "dept_head", "operator", "finance", "admin"}
    assert not problems, "\n".join(problems)
