"""The console's page behaviour in Chromium (issue 18): the purchase form's item rows added and
dropped in place with the total following what is typed (and the server's sum the one saved);
修改密码 a visible header button at 1280 and 390 px; after an administrator's reset the user
lands on the password form and nowhere else; revoking a user's API tokens asks first."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from cloudmgr.identity import services as identity
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import ApiToken, Role
from cloudmgr.purchases.models import PurchaseRequest
from cloudmgr.runtime import Runtime
from tests.web.helpers import PASSWORDS, demo_login
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from web import create_app

pytestmark = pytest.mark.browser


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: these are about the pages (the unit and web tests run on PostgreSQL too)."""
    return f"sqlite:///{tmp_path / 'cloudmgr.sqlite3'}"


@pytest.fixture
def server(journey_rt: Runtime) -> Iterator[str]:
    app = create_app(runtime=journey_rt)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="console-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _login(browser: Any, base: str, username: str, password: str, *, width: int = 1280) -> Any:
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#submit")
    page.wait_for_load_state()
    return page


def _fill_row(page: Any, index: int, description: str, quantity: str, price: str) -> None:
    page.fill(f"#lines-{index}-description", description)
    page.fill(f"#lines-{index}-quantity", quantity)
    page.fill(f"#lines-{index}-unit_price", price)


def test_purchase_rows_come_and_go_and_the_total_follows(server: str, browser: Any, journey_rt: Runtime) -> None:
    page = _login(browser, server, "zhangwei", PASSWORDS["zhangwei"])
    page.goto(f"{server}/portal/purchases/new")
    total = page.locator("[data-testid=purchase-total]")
    assert total.inner_text() == "¥0.00"
    page.fill("#title", "机房网络改造")
    page.select_option("#category", "network")
    page.fill("#application_system", "政务外网接入")
    page.fill("#justification", "设备老化")
    _fill_row(page, 0, "核心交换机", "2", "30000.10")
    _fill_row(page, 1, "接入交换机", "3", "0.10")
    assert total.inner_text() == "¥60,000.50"
    assert page.locator("tr[data-item-row]").count() == 3

    for _ in range(3):  # in place, no round trip: four, five, six rows
        page.click("[data-testid=add-row]")
    assert page.locator("tr[data-item-row]").count() == 6
    assert page.url.endswith("/portal/purchases/new")
    _fill_row(page, 5, "光模块", "10", "100")
    assert total.inner_text() == "¥61,000.50"

    page.click("[data-testid=drop-row-2]")  # the second row, 接入交换机
    assert page.locator("tr[data-item-row]").count() == 5
    assert total.inner_text() == "¥61,000.20"
    # the labels say the rows' numbers again
    assert (
        page.locator("[data-testid=drop-row-5]").count() == 1 and page.locator("[data-testid=drop-row-6]").count() == 0
    )

    page.click("[data-testid=save-purchase]")
    page.wait_for_url(re.compile(r".*/portal/purchases/\d+$"))
    with journey_rt.db.unit_of_work() as uow:
        [purchase] = uow.session.query(PurchaseRequest).all()
        assert purchase.amount_yuan == Decimal("61000.20")
        assert sorted(i.description for i in purchase.items) == ["光模块", "核心交换机"]


def test_change_password_is_a_visible_header_button_at_both_widths(server: str, browser: Any) -> None:
    for role in ("dept_staff", "operator", "admin"):
        demo = demo_login(role)
        for width in (1280, 390):
            page = _login(browser, server, demo.username, demo.password, width=width)
            button = page.locator("header [data-testid=change-password]")
            assert button.is_visible(), (role, width)
            box = button.bounding_box()
            assert box is not None and box["height"] >= 24 and box["x"] + box["width"] <= width, (role, width, box)
            page.context.close()


def test_after_a_reset_the_user_lands_on_the_password_form(server: str, browser: Any, journey_rt: Runtime) -> None:
    with journey_rt.db.unit_of_work() as uow:
        user = org.create_user(
            uow.session,
            username="reset-me",
            password="Fresh-pass-2026",
            role=Role.DEPT_STAFF,
            department_key="prov-education",
            actor=Actor.system("t"),
        )
        admin = Actor(username="admin", role=Role.ADMIN)
        temporary = identity.reset_password(uow.session, admin, user.id, new_password=None, reason="forgot")
    page = _login(browser, server, "reset-me", temporary)
    assert page.url.endswith("/account/password")
    assert page.locator("[data-testid=password-change-required]").is_visible()
    page.goto(f"{server}/portal/servers")
    assert page.url.endswith("/account/password")
    page.fill("#current", temporary)
    page.fill("#password", "Mine-alone-2027")
    page.fill("#confirm", "Mine-alone-2027")
    page.click("#submit")
    page.wait_for_url(f"{server}/portal/")
    assert page.locator("[data-testid=home-servers]").is_visible()


def test_revoking_api_tokens_asks_and_no_keeps_them(server: str, browser: Any, journey_rt: Runtime) -> None:
    with journey_rt.db.unit_of_work() as uow:
        staff = org.get_user_by_name(uow.session, "zhangwei")
        org.issue_token(uow.session, staff, name="script", expires_at=None, actor=Actor.system("t"))
        staff_id = staff.id
    admin = demo_login("admin")
    page = _login(browser, server, admin.username, admin.password)
    page.goto(f"{server}/admin/users/{staff_id}")
    page.fill("#revoke-reason", "离职")
    asked: list[str] = []
    answer = {"accept": False}

    def on_dialog(dialog: Any) -> None:
        asked.append(dialog.message)
        if answer["accept"]:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", on_dialog)
    button = page.locator("form[action$='/revoke-tokens'] button[type=submit]")
    button.click()
    page.wait_for_timeout(300)

    def live_tokens() -> int:
        with journey_rt.db.unit_of_work() as uow:
            query = uow.session.query(ApiToken).filter(ApiToken.user_id == staff_id, ApiToken.revoked_at.is_(None))
            return query.count()

    assert asked and "zhangwei" in asked[0] and live_tokens() == 1  # "no": nothing revoked
    answer["accept"] = True
    with page.expect_navigation():
        button.click()
    assert len(asked) == 2 and live_tokens() == 0
