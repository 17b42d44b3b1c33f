"""What the page journeys in Chromium share: the app served on a free port (with a work-queue
worker beside it where the journey needs queued work done), and a browser session that logs
people in, collects console errors and failed sub-resource loads, and takes screenshots.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from cloudmgr.runtime import Runtime
from tests.web.helpers import PASSWORDS
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from web import create_app


@contextmanager
def served_app(runtime: Runtime, name: str, *, with_worker: bool = False) -> Iterator[str]:
    """The app on 127.0.0.1 (its base URL), and, ``with_worker``, a worker draining the work
    queue every half second as the scheduler runs one."""
    app = create_app(runtime=runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"{name}-server", daemon=True)
    thread.start()
    stop = threading.Event()
    worker_thread: threading.Thread | None = None
    if with_worker:
        from cloudmgr.scheduler.jobs import work_handlers
        from cloudmgr.workqueue.services import Worker

        def work() -> None:
            worker = Worker(runtime.db, work_handlers())
            while not stop.wait(0.5):
                worker.drain()

        worker_thread = threading.Thread(target=work, name=f"{name}-worker", daemon=True)
        worker_thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        stop.set()
        if worker_thread is not None:
            worker_thread.join(timeout=30)
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def go(page: Any, href: str) -> None:
    """Follow the header menu's link to ``href``, opening its group first when the menu holds
    it in one (web/common/navigation.py groups the menu by task)."""
    link = page.locator(f".main-nav a[href='{href}']")
    if not link.is_visible():
        page.locator(".main-nav details", has=page.locator(f"a[href='{href}']")).locator("summary").click()
    link.click()


class BrowserSession:
    """People logged in to ``base`` in Chromium, each in a browser context of their own."""

    def __init__(self, browser: Any, base: str, artifacts_dir: Path, shot_prefix: str) -> None:
        self.browser, self.base = browser, base
        self.artifacts_dir, self.shot_prefix = artifacts_dir, shot_prefix
        #: console errors and sub-resources answered 4xx/5xx (a page's own 4xx may be on purpose)
        self.problems: list[str] = []
        self.contexts: list[Any] = []

    def _on_console(self, message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(message.text)

    def _on_response(self, response: Any) -> None:
        if response.request.resource_type != "document" and response.status >= 400:
            self.problems.append(f"{response.status} {response.url}")

    def login(self, username: str, *, viewport: tuple[int, int] = (1366, 900), locale: str = "zh-CN") -> Any:
        context = self.browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, locale=locale)
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("console", self._on_console)
        page.on("response", self._on_response)
        page.goto(f"{self.base}/login")
        page.fill("#username", username)
        page.fill("#password", PASSWORDS[username])
        page.click("#submit")
        page.wait_for_load_state()
        return page

    def shot(self, page: Any, name: str) -> None:
        page.screenshot(path=str(self.artifacts_dir / f"{self.shot_prefix}-{name}.png"), full_page=True)


@contextmanager
def browser_session(base: str, artifacts_dir: Path, shot_prefix: str) -> Iterator[BrowserSession]:
    """A Chromium session for a journey; its earlier screenshots (``shot_prefix``-*.png) are
    removed first, and the journey fails on any problem the pages reported."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    for old in artifacts_dir.glob(f"{shot_prefix}-*.png"):
        old.unlink()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        session = BrowserSession(browser, base, artifacts_dir, shot_prefix)
        try:
            yield session
        finally:
            for context in session.contexts:
                context.close()
            browser.close()
    assert not session.problems, session.problems
