"""Destructive actions ask first (issue 18): every form of web/templates that cancels, withdraws,
stops, deletes, rejects, reverts, removes, detaches, releases or rolls back carries
data-confirm="<what will happen>" on the form or on its destructive button (cloudmgr.js asks
with window.confirm before the form is sent), or has the user type the name of what goes.
A static scan of the templates, and Chromium answering "no" then "yes"."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.web.helpers import Journey, demo_login
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from web import create_app

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
DESTRUCTIVE = re.compile(
    r"cancel|withdraw|stop|delete|reject|revert|remove|rollback|decommission|detach|release|revoke|disable"
)
# Pages that are themselves the confirmation of what they do (the administrators' disable, delete
# and password reset ask on a page of their own, web/admin; the user page's own forms are scanned).
CONFIRM_PAGES = {"admin/user_confirm.html"}
FORM = re.compile(r"<form\b(?P<tag>[^>]*)>(?P<body>.*?)</form>", re.S)
ENDPOINT = re.compile(r"url_for\(\s*(?:area\s*~\s*)?'(?P<endpoint>[^']+)'")
# A submit button: an HTML <button> or a WTForms field rendered as form.<name>(...).
BUTTON = re.compile(
    r"<button\b(?P<attrs>[^>]*)>(?P<label>.*?)</button>|\{\{\s*\w+\.(?P<field>\w+)\((?P<args>.*?)\)\s*\}\}", re.S
)


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


def _unconfirmed() -> list[str]:
    missing: list[str] = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        name = path.relative_to(TEMPLATES).as_posix()
        if name in CONFIRM_PAGES:
            continue
        for form in FORM.finditer(path.read_text(encoding="utf-8")):
            tag, body = form.group("tag"), form.group("body")
            if 'method="get"' in tag or "data-confirm" in tag:
                continue
            if "_form.confirm" in body:  # the user types the name of what goes (a server's deletion)
                continue
            line = path.read_text(encoding="utf-8")[: form.start()].count("\n") + 1
            endpoint = ENDPOINT.search(tag)
            if endpoint and DESTRUCTIVE.search(endpoint.group("endpoint")):
                missing.append(f"{name}:{line} {endpoint.group('endpoint')}")
                continue
            for button in BUTTON.finditer(body):
                if button.group("field") is not None:
                    text = button.group("field")
                    if text in {"csrf_token", "hidden_tag"} or text.endswith("_errors"):
                        continue
                else:
                    text = button.group("attrs") + button.group("label")
                if DESTRUCTIVE.search(text.lower()) and "data-confirm" not in button.group(0):
                    missing.append(f"{name}:{line} {' '.join(text.split())[:80]}")
    return missing


def test_every_destructive_form_asks_first() -> None:
    assert _unconfirmed() == []


def test_the_scan_finds_an_unconfirmed_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.html").write_text(
        """<form method="post" action="{{ url_for('ops.wave_cancel', wave_id=1) }}"><button>x</button></form>
<form method="post" action="{{ url_for('ops.decide', id=1) }}">{{ f.approve(c='b') }}{{ f.reject(c='b') }}</form>
<form method="post" action="{{ url_for('ops.decide', id=1) }}">{{ f.reject(**{'data-confirm': 'sure?'}) }}</form>
<form method="post" action="{{ url_for('ops.delete_x', id=1) }}" data-confirm="sure?"><button>x</button></form>""",
        encoding="utf-8",
    )
    monkeypatch.setattr(f"{__name__}.TEMPLATES", tmp_path)
    assert [line.split()[0] for line in _unconfirmed()] == ["x.html:1", "x.html:2"]


@ONE_DATABASE
def test_withdrawing_a_request_in_chromium_asks_and_no_keeps_it(live_journey_server: str, journey: Journey) -> None:
    _require_chromium()
    from playwright.sync_api import Dialog, sync_playwright

    request_id = journey.submit("zhangwei")
    base = live_journey_server
    staff = demo_login("dept_staff")
    asked: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/login")
            page.fill("#username", staff.username)
            page.fill("#password", staff.password)
            page.click("#submit")
            page.wait_for_url(f"{base}/portal/")
            page.goto(f"{base}/portal/requests/{request_id}")
            page.fill("#cancel-reason", "不再需要")

            answer = {"accept": False}

            def on_dialog(dialog: Dialog) -> None:
                asked.append(dialog.message)
                if answer["accept"]:
                    dialog.accept()
                else:
                    dialog.dismiss()

            page.on("dialog", on_dialog)
            page.click("[data-testid=cancel]")
            page.wait_for_timeout(300)
            assert journey.request_state(request_id) != "cancelled"
            assert page.url == f"{base}/portal/requests/{request_id}"

            answer["accept"] = True
            with page.expect_navigation():
                page.click("[data-testid=cancel]")
            assert journey.request_state(request_id) == "cancelled"
        finally:
            browser.close()
    assert len(asked) == 2
    # The message says what will happen (English until the lead merges the Chinese).
    assert f"#{request_id}" in asked[0]
    assert "配额" in asked[0] or "quota reservation is released" in asked[0]
