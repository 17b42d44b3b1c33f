"""Pages follow work in flight without a reload (static/js/live.js, under the CSP), and a long
action says it is working.  Debian's Chromium through Playwright; never skipped."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.web.helpers import PASSWORDS, Journey
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from web import create_app

pytestmark = pytest.mark.browser


def _zh(message: str) -> str:
    """The Chinese of a message as the pages say it (the catalog web/translations holds)."""
    from babel.support import Translations

    return str(Translations.load(str(TRANSLATIONS), ["zh"]).gettext(message))


TRANSLATIONS = Path(__file__).resolve().parents[2] / "web" / "translations"


@pytest.fixture
def live_journey_server(journey_rt: Runtime) -> Iterator[str]:
    app = create_app(runtime=journey_rt)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-journey-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _login(browser: Any, base: str, username: str, problems: list[str]) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on(
        "console",
        lambda m: problems.append(m.text)
        if m.type == "error" and not m.text.startswith("Failed to load resource")
        else None,
    )
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORDS[username])
    page.click("#submit")
    page.wait_for_load_state()
    return page


@ONE_DATABASE
def test_request_page_and_server_list_follow_provisioning_without_reload(
    live_journey_server: str, journey: Journey, artifacts_dir: Path
) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    base = live_journey_server
    request_id = journey.submit(count=2, prefix="live")
    journey.approve(request_id, "lina", "operator")  # approved: provisioning is queued, nothing ran yet
    assert journey.request_state(request_id) == "approved"
    problems: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = _login(browser, base, "zhangwei", problems)
            page.goto(f"{base}/portal/requests/{request_id}")
            region = page.locator("#live-request")
            assert region.get_attribute("data-live-active") == "true"
            assert page.locator('[data-testid="live-note"]').inner_text().strip() == _zh(
                "Work in flight: this page updates itself."
            )
            assert "已批准" in page.locator("h1").inner_text()
            page.evaluate("window.__notReloaded = true")

            servers = _login(browser, base, "zhangwei", problems)
            servers.goto(f"{base}/portal/servers")
            servers.evaluate("window.__notReloaded = true")

            journey.drain()  # the worker provisions both servers (here, in the test thread)
            assert journey.request_state(request_id) == "active"

            page.wait_for_selector('#live-request[data-live-active="false"]')
            assert "已交付" in page.locator("h1").inner_text()
            assert page.locator('[data-testid="live-note"]').count() == 0
            assert page.locator("tr.server-row.server-active").count() == 2
            assert page.evaluate("window.__notReloaded") is True
            page.screenshot(path=str(artifacts_dir / "live-request.png"), full_page=True)

            # The list showed the two servers pending: it shows them running now, without a reload.
            servers.wait_for_selector('#live-servers[data-live-active="false"]')
            assert servers.locator("tr.server-row.server-active").count() == 2
            assert servers.evaluate("window.__notReloaded") is True
        finally:
            browser.close()
    assert problems == []


@ONE_DATABASE
def test_server_list_follows_a_server_being_built(
    live_journey_server: str, journey: Journey, artifacts_dir: Path
) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    from cloudmgr.servicerequests.models import ManagedServer
    from cloudmgr.servicerequests.states import ServerState

    base = live_journey_server
    request_id = journey.active_request(count=1, prefix="live")
    [(server_id, _name, _state)] = journey.servers(request_id)
    with journey.rt.db.unit_of_work() as uow:  # the cloud is still building it
        server = uow.session.get(ManagedServer, server_id)
        assert server is not None
        server.state = ServerState.BUILDING
    problems: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = _login(browser, base, "zhangwei", problems)
            page.goto(f"{base}/portal/servers")
            assert page.locator("#live-servers").get_attribute("data-live-active") == "true"
            assert page.locator("tr.server-row.server-building").count() == 1
            page.evaluate("window.__notReloaded = true")

            with journey.rt.db.unit_of_work() as uow:  # the cloud answers: it runs
                server = uow.session.get(ManagedServer, server_id)
                assert server is not None
                server.state = ServerState.ACTIVE

            page.wait_for_selector('#live-servers[data-live-active="false"]')
            assert page.locator("tr.server-row.server-active").count() == 1
            assert page.locator("tr.server-row.server-building").count() == 0
            assert page.evaluate("window.__notReloaded") is True
        finally:
            browser.close()
    assert problems == []


@ONE_DATABASE
def test_a_long_action_says_it_is_working(live_journey_server: str, journey: Journey, artifacts_dir: Path) -> None:
    _require_chromium()
    from playwright.sync_api import Route, sync_playwright

    base = live_journey_server
    problems: list[str] = []
    held: list[Route] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = _login(browser, base, "operator", problems)
            page.goto(f"{base}/ops/systems/import")
            form = page.locator("form#inventory-import")
            assert form.get_attribute("data-busy")

            # The upload never reaches the server (the test answers 204 No Content): the page stays
            # as it was once submitted, in its working state.
            def answer_nothing(route: Route) -> None:
                held.append(route)
                route.fulfill(status=204)

            page.route("**/ops/systems/import", answer_nothing)
            form.locator("button[type=submit], input[type=submit]").first.click(no_wait_after=True)
            page.wait_for_selector("form#inventory-import .busy-note", timeout=10_000)
            assert held, "the upload was not sent"
            assert page.locator("form#inventory-import .busy-note").inner_text() == _zh(
                "Working… this can take a minute; please wait."
            )
            buttons = form.locator("button[type=submit], input[type=submit]")
            assert buttons.count() >= 1
            assert all(buttons.nth(i).is_disabled() for i in range(buttons.count()))
            page.screenshot(path=str(artifacts_dir / "live-busy-import.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []


@ONE_DATABASE
def test_a_move_page_follows_the_move_to_its_end(live_journey_server: str, journey: Journey) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright
    from sqlalchemy import select

    from cloudmgr.moves.models import Move
    from cloudmgr.moves.states import MoveState
    from cloudmgr.organisation.models import Cloud

    base = live_journey_server
    with journey.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == "education"))
        assert cloud_id is not None
        move = Move(
            kind="live",
            state=MoveState.RUNNING,
            cloud_id=cloud_id,
            server_name="edu-web-01",
            source_host="compute-1",
            reason="host maintenance",
            created_by="operator",
        )
        uow.session.add(move)
        uow.session.flush()
        move_id = move.id
    problems: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = _login(browser, base, "operator", problems)
            page.goto(f"{base}/ops/moves/{move_id}")
            assert page.locator("#live-move").get_attribute("data-live-active") == "true"
            assert page.locator('[data-testid="live-note"]').count() == 1
            page.evaluate("window.__notReloaded = true")

            with journey.rt.db.unit_of_work() as uow:  # the worker finishes the move
                stored = uow.session.get(Move, move_id)
                assert stored is not None
                stored.state = MoveState.DONE

            page.wait_for_selector('#live-move[data-live-active="false"]')
            assert page.locator('[data-testid="live-note"]').count() == 0
            assert page.evaluate("window.__notReloaded") is True
        finally:
            browser.close()
    assert problems == []


@ONE_DATABASE
def test_a_wave_page_follows_the_running_wave(live_journey_server: str, journey: Journey) -> None:
    _require_chromium()
    from datetime import date, timedelta

    from playwright.sync_api import sync_playwright
    from sqlalchemy import select

    from cloudmgr.organisation.models import Cloud
    from cloudmgr.programme.models import MigrationWave, WaveState

    base = live_journey_server
    with journey.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == "education"))
        assert cloud_id is not None
        wave = MigrationWave(
            name="教育一期",
            cloud_id=cloud_id,
            zone="extranet",
            window_start=date.today(),
            window_end=date.today() + timedelta(days=14),
            state=WaveState.RUNNING,
            created_by="operator",
            started_by="operator",
        )
        uow.session.add(wave)
        uow.session.flush()
        wave_id = wave.id
    problems: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = _login(browser, base, "operator", problems)
            page.goto(f"{base}/ops/waves/{wave_id}")
            assert page.locator("#live-wave").get_attribute("data-live-active") == "true"
            running = page.locator('[data-testid="wave-state"]').inner_text()
            page.evaluate("window.__notReloaded = true")

            with journey.rt.db.unit_of_work() as uow:  # its last system is on the cloud: the wave is done
                stored = uow.session.get(MigrationWave, wave_id)
                assert stored is not None
                stored.state = WaveState.DONE

            page.wait_for_selector('#live-wave[data-live-active="false"]')
            assert page.locator('[data-testid="wave-state"]').inner_text() != running
            assert page.evaluate("window.__notReloaded") is True
        finally:
            browser.close()
    assert problems == []


@ONE_DATABASE
def test_a_runbook_run_page_shows_the_run_finished(live_journey_server: str, journey: Journey) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    from cloudmgr.db import utcnow
    from cloudmgr.runbooks.models import RunbookRun, RunState
    from tests.runbooks.conftest import add_system

    base = live_journey_server
    with journey.rt.db.unit_of_work() as uow:
        system = add_system(uow.session, "edu-web-12", ansible_host="192.0.2.12", state="migrating")
        run = RunbookRun(
            system_id=system.id,
            step="replicate",
            state=RunState.RUNNING,
            actor="operator",
            event_count=0,
            started_at=utcnow(),
        )
        uow.session.add(run)
        uow.session.flush()
        run_id = run.id
    problems: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = _login(browser, base, "operator", problems)
            page.goto(f"{base}/ops/runbooks/{run_id}")
            assert page.locator("#live-runbook-run").get_attribute("data-live-active") == "true"
            heading = page.locator("h1").inner_text()
            page.evaluate("window.__notReloaded = true")

            with journey.rt.db.unit_of_work() as uow:  # the playbook ends
                stored = uow.session.get(RunbookRun, run_id)
                assert stored is not None
                stored.state, stored.rc, stored.finished_at = RunState.SUCCEEDED, 0, utcnow()

            page.wait_for_selector('#live-runbook-run[data-live-active="false"]')
            assert page.locator("h1").inner_text() != heading
            assert page.locator('[data-testid="run-facts"]').inner_text().count("—") < 4  # rc and finished shown
            page.wait_for_selector('[data-testid="runbook-events"][data-finished="succeeded"]')
            assert page.evaluate("window.__notReloaded") is True
        finally:
            browser.close()
    assert problems == []
