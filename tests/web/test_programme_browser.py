"""The programme page in headless Chromium with the sample inventory (inventory/legacy.yml)
imported: the burndown chart against the deadline, drawn by the stylesheet (CSP: no inline styles)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cloudmgr.config import REPO_ROOT
from cloudmgr.demo import DEMO_LOGINS
from cloudmgr.inventory.importer import import_inventory
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.programme import tracking
from cloudmgr.programme.config import read_programme_file
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.programme.conftest import TODAY
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium, live_server  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def programme_state(seeded: Runtime, monkeypatch: pytest.MonkeyPatch) -> int:
    """The sample inventory imported and three weekly snapshots; returns the systems in scope."""
    monkeypatch.setattr(tracking, "today", lambda: TODAY)
    config = read_programme_file(REPO_ROOT / "etc" / "programme.yaml")
    text = (REPO_ROOT / "inventory" / "legacy.yml").read_text(encoding="utf-8")
    with seeded.db.unit_of_work() as uow:
        import_inventory(uow.session, text, filename="legacy.yml", actor=Actor("test", Role.OPERATOR))
    for weeks in (2, 1, 0):
        with seeded.db.unit_of_work() as uow:
            tracking.take_snapshot(uow.session, config, TODAY - timedelta(weeks=weeks))
    with seeded.db.unit_of_work() as uow:
        return tracking.compute(uow.session, config, TODAY).in_scope


@ONE_DATABASE
def test_the_burndown_page_in_the_browser(programme_state: int, live_server: str, artifacts_dir: Path) -> None:  # noqa: F811
    _require_chromium()
    from playwright.sync_api import ConsoleMessage, sync_playwright

    assert programme_state > 0
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
            page.goto(f"{live_server}/ops/programme")
            assert page.locator(".main-nav a.active").text_content() == "上云进度"
            assert page.inner_text("[data-testid=in-scope]") == f"{programme_state:,}"
            chart = "[data-testid=burndown-chart]"
            assert page.locator(f"{chart} [data-testid=deadline-line]").count() == 2
            assert page.locator(f"{chart} [data-testid=actual-point]").count() == 3
            assert page.locator(f"{chart} [data-testid=ideal-line]").count() == 1
            # drawn by the stylesheet: the deadlines red, the ideal line dashed grey
            stroke = page.eval_on_selector(f"{chart} [data-testid=deadline-line]", "e => getComputedStyle(e).stroke")
            assert stroke == "rgb(200, 22, 30)"
            dash = page.eval_on_selector(
                f"{chart} [data-testid=ideal-line]", "e => getComputedStyle(e).strokeDasharray"
            )
            assert dash not in ("", "none")
            assert page.locator("[data-testid=overdue-list] tbody tr[data-hostname]").count() >= 1
            page.screenshot(path=str(artifacts_dir / "programme-burndown.png"), full_page=True)
            page.goto(f"{live_server}/ops/programme?period=week")
            assert page.locator(f"{chart} [data-testid=actual-point]").count() == 3
        finally:
            browser.close()
    assert problems == []
