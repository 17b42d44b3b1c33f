"""The system page follows a running runbook step live (static/js/runbooks.js under the CSP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudmgr.db import utcnow
from cloudmgr.runbooks.models import RunbookEvent, RunbookRun
from cloudmgr.runtime import Runtime
from tests.runbooks.conftest import add_system
from tests.web.helpers import PASSWORDS
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium, live_server  # noqa: F401

pytestmark = pytest.mark.browser


def _event(run_id: int, counter: int, task: str, status: str) -> RunbookEvent:
    return RunbookEvent(
        run_id=run_id,
        counter=counter,
        event="runner_on_ok",
        host="edu-web-11",
        play="Replicate",
        task=task,
        status=status,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the page, not the database, is tested
def test_new_events_appear_while_the_step_runs(live_server: str, seeded: Runtime, artifacts_dir: Path) -> None:  # noqa: F811
    _require_chromium()
    from playwright.sync_api import ConsoleMessage, sync_playwright

    with seeded.db.unit_of_work() as uow:
        system = add_system(uow.session, "edu-web-11", ansible_host="192.0.2.11", state="migrating")
        run = RunbookRun(
            system_id=system.id, step="replicate", state="running", actor="operator", event_count=0, started_at=utcnow()
        )
        uow.session.add(run)
        uow.session.flush()
        uow.session.add(_event(run.id, 1, "Replication key on the target", "ok"))
        system_id, run_id = system.id, run.id

    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.set_default_timeout(20_000)
            page.on("console", on_console)
            page.goto(f"{live_server}/login")
            page.fill("#username", "operator")
            page.fill("#password", PASSWORDS["operator"])
            page.click("#submit")
            page.wait_for_load_state()
            page.goto(f"{live_server}/ops/systems/{system_id}")
            rows = page.locator('[data-testid="runbook-live-events"] tbody tr')
            assert rows.count() == 1
            table = page.locator('[data-testid="runbook-live-events"]')
            assert table.get_attribute("data-active") == "true"

            with seeded.db.unit_of_work() as uow:  # the worker stores the next events, then finishes
                uow.session.add(_event(run_id, 2, "Data synchronised from the source", "changed"))
                stored = uow.session.get(RunbookRun, run_id)
                assert stored is not None
                stored.state, stored.rc, stored.finished_at = "succeeded", 0, utcnow()
            page.wait_for_selector('[data-testid="runbook-live-events"][data-finished="succeeded"]')
            assert rows.count() == 2
            assert "Data synchronised from the source" in rows.nth(1).inner_text()
            assert rows.nth(1).get_attribute("class") == "runbook-event runbook-event-changed"
            page.screenshot(path=str(artifacts_dir / "runbook-live-events.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
