"""The dedicated-line pages (issue 19) with lines in every state, in Chromium: the accessibility walk of
tests/web/test_accessibility_browser.py (axe-core, one h1, labels, table headers, nothing wider than
the window at 1280 and 390 px), whose demo world has no lines.  Also each form sent empty.
Screenshots go to test-artifacts/screenshots/lines/<user>/.  Never skipped."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from cloudmgr.runtime import Runtime
from tests.web.helpers import Journey
from tests.web.test_accessibility_browser import AXE, Walk
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from tests.web.test_lines_pages import _pages, _world
from web import create_app

pytestmark = pytest.mark.browser


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the pages are what is checked here."""
    return f"sqlite:///{tmp_path / 'cloudmgr.sqlite3'}"


@pytest.fixture
def lines_world(journey: Journey) -> Iterator[tuple[str, dict[str, int]]]:
    ids = _world(journey.rt)
    app = create_app(runtime=journey.rt)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="lines-a11y", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", ids
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_lines_pages_are_accessible_and_fit(
    lines_world: tuple[str, dict[str, int]], journey_rt: Runtime, artifacts_dir: Path
) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    base, ids = lines_world
    screenshots = artifacts_dir / "screenshots" / "lines"
    shutil.rmtree(screenshots, ignore_errors=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        walk = Walk(browser, base, screenshots, AXE.read_text(encoding="utf-8"))
        try:
            for user in ("zhangwei", "operator"):
                forms = walk.pages_of(user, _pages(user, ids))
                walk.forms_of(user, forms)
        finally:
            browser.close()
    assert walk.pages >= 15
    assert not walk.findings, "\n".join(f"{u} {url}: {what}" for u, url, what in walk.findings)
