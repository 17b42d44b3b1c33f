"""Password policy, lock-out, password changes, session cookies, CSRF on every form, headers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cli import main as cli_main
from cloudmgr.db import utcnow
from cloudmgr.identity.models import LoginThrottle
from cloudmgr.runtime import Runtime, set_runtime
from tests.web.conftest import LoginFn
from tests.web.helpers import csrf_token, logged_in, post_form
from web import create_app

LOCKED_TEXT = "登录失败次数过多"


def _actions(app: Flask, action: str) -> list[AuditEvent]:
    with app.extensions["cloudmgr"].db.unit_of_work() as uow:
        return list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_lock_out_after_five_failures_even_with_the_right_password(app: Flask, login: LoginFn) -> None:
    for attempt in range(1, 5):
        response = login("zhangwei", f"wrong-password-{attempt}")
        assert response.status_code == 200
        assert "用户名或密码错误" in response.get_data(as_text=True)
    response = login("zhangwei", "wrong-password-5")
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert LOCKED_TEXT in page and "15" in page
    response = login("zhangwei", "demo-staff-2026")  # the right one: still refused
    assert response.status_code == 429 and LOCKED_TEXT in response.get_data(as_text=True)
    # Case does not get around the lock.
    assert login("ZhangWei", "demo-staff-2026").status_code == 429
    assert len(_actions(app, "auth.login_failed")) == 5
    locked = _actions(app, "auth.locked")
    assert len(locked) == 1 and locked[0].target_id == "zhangwei"
    assert len(_actions(app, "auth.login_refused_locked")) == 2
    # Another user is not affected.
    assert logged_in(app, "lina").get("/portal/").status_code == 200

    # The lock runs out after its time.
    with app.extensions["cloudmgr"].db.unit_of_work() as uow:
        uow.session.execute(update(LoginThrottle).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert login("zhangwei", "demo-staff-2026").status_code == 302
    with app.extensions["cloudmgr"].db.unit_of_work() as uow:
        assert uow.session.scalar(select(LoginThrottle)) is None  # success clears the count


def test_unknown_usernames_are_throttled_too(app: Flask, login: LoginFn) -> None:
    for _ in range(5):
        response = login("nobody-here", "wrong-password-1")
    assert response.status_code == 429


def test_cli_unlocks_and_sets_passwords_with_the_policy(app: Flask, login: LoginFn, seeded: Runtime) -> None:
    for _ in range(5):
        login("wangfang", "wrong-password-1")
    assert login("wangfang", "demo-staff-2026").status_code == 429
    settings = seeded.settings
    env = {
        "CLOUDMGR_ENV": "test",
        "CLOUDMGR_INSTANCE_PATH": str(settings.instance_path),
        "CLOUDMGR_DATABASE_URL": settings.database_url,
        "CLOUDMGR_SECRET_KEY": settings.secret_key,
    }
    runner = CliRunner()
    try:
        result = runner.invoke(cli_main, ["users", "unlock", "wangfang"], env=env)
        assert result.exit_code == 0 and "wangfang unlocked" in result.output
        result = runner.invoke(cli_main, ["users", "password", "wangfang", "--password", "Wangfang2026"], env=env)
        assert result.exit_code != 0 and "must not be the username" in result.output
        result = runner.invoke(cli_main, ["users", "password", "wangfang", "--password", "alllowercase"], env=env)
        assert result.exit_code != 0 and "mix letters" in result.output
        result = runner.invoke(cli_main, ["users", "password", "wangfang", "--password", "New-Pass-2026"], env=env)
        assert result.exit_code == 0, result.output
        result = runner.invoke(cli_main, ["users", "password", "nobody", "--password", "New-Pass-2026"], env=env)
        assert result.exit_code != 0 and "no user 'nobody'" in result.output
    finally:
        set_runtime(seeded)
    assert login("wangfang", "demo-staff-2026").status_code == 200
    assert login("wangfang", "New-Pass-2026").status_code == 302
    assert _actions(app, "auth.unlock") and _actions(app, "user.password_change")


@pytest.mark.parametrize(
    ("current", "new", "confirm", "message"),
    [
        ("wrong-current-1", "Brand-New-2026", "Brand-New-2026", "当前密码不正确"),
        ("demo-staff-2026", "short-1", "short-1", "密码长度须在 10 到 256 个字符之间"),
        ("demo-staff-2026", "alllowercaseletters", "alllowercaseletters", "至少包含以下三类"),
        ("demo-staff-2026", "Zhangwei-2026", "Zhangwei-2026", "密码不能是用户名"),
        ("demo-staff-2026", "Brand-New-2026", "Brand-New-2027", "两次输入的密码不一致"),
        ("", "", "", "请输入当前密码"),
    ],
)
def test_change_password_errors(app: Flask, current: str, new: str, confirm: str, message: str) -> None:
    client = logged_in(app, "zhangwei")
    response = post_form(client, "/account/password", {"current": current, "password": new, "confirm": confirm})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_change_password_then_log_in_with_it(app: Flask) -> None:
    client = logged_in(app, "zhangwei")
    assert client.get("/account/password").status_code == 200
    response = post_form(
        client,
        "/account/password",
        {"current": "demo-staff-2026", "password": "Brand-New-2026", "confirm": "Brand-New-2026"},
    )
    assert response.status_code == 302
    fresh = app.test_client()
    token = csrf_token(fresh.get("/login").get_data(as_text=True))
    answer = fresh.post("/login", data={"username": "zhangwei", "password": "Brand-New-2026", "csrf_token": token})
    assert answer.status_code == 302
    assert _actions(app, "user.password_change")


def test_password_page_needs_a_login(client: FlaskClient) -> None:
    response = client.get("/account/password")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_admin_user_form_applies_the_policy(app: Flask) -> None:
    client = logged_in(app, "admin")
    response = post_form(
        client,
        "/admin/users/new",
        {
            "username": "zhaolei",
            "role": "operator",
            "department": "",
            "password": "zhaolei-lower",
            "confirm": "zhaolei-lower",
        },
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "zhaolei" in page  # the form is shown again, with the reason
    with app.extensions["cloudmgr"].db.unit_of_work() as uow:
        assert not list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.create")))[6:]


# --- sessions, headers and CSRF -----------------------------------------------------------------


def test_secure_deployment_sets_secure_cookies_and_hsts(seeded: Runtime, login: LoginFn) -> None:
    secure = Runtime(
        settings=seeded.settings.with_overrides(session_cookie_secure=True), db=seeded.db, providers=seeded.providers
    )
    app = create_app(runtime=secure)
    client = app.test_client()
    page = client.get("/login", base_url="https://cloudmgr.example.gov.cn")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    token = csrf_token(page.get_data(as_text=True))
    response = client.post(
        "/login",
        data={"username": "admin", "password": "demo-admin-2026", "csrf_token": token},
        base_url="https://cloudmgr.example.gov.cn",
        headers={"Referer": "https://cloudmgr.example.gov.cn/login"},
    )
    assert response.status_code == 302
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("cloudmgr_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_security_headers_on_every_kind_of_answer(client: FlaskClient) -> None:
    for path in ("/login", "/no/such/page", "/api/v1/me", "/healthz"):
        headers = client.get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in headers  # plain HTTP in development


def _form_posts(app: Flask) -> list[str]:
    """Every POST route outside the API, with made-up ids."""
    paths = []
    for rule in app.url_map.iter_rules():
        if "POST" not in (rule.methods or ()) or rule.endpoint.startswith("api.") or rule.endpoint == "static":
            continue
        values = {arg: ("zh" if arg == "code" else 1) for arg in rule.arguments}
        paths.append(app.url_map.bind("localhost").build(rule.endpoint, values))
    return sorted(set(paths))


@pytest.mark.parametrize("username", ["zhangwei", "lina", "operator", "finance", "admin"])
def test_every_form_needs_its_csrf_token(app: Flask, username: str) -> None:
    client = logged_in(app, username)
    posts = _form_posts(app)
    assert len(posts) >= 20
    for path in posts:
        for data in ({}, {"csrf_token": "forged-token"}):
            response = client.post(path, data=data)
            assert response.status_code == 400, (path, response.status_code)
            assert "表单已过期" in response.get_data(as_text=True), path


def test_keystone_down_is_a_clear_message_and_local_accounts_still_work(seeded: Runtime) -> None:
    settings = seeded.settings.with_overrides(
        login_backends=("local", "keystone"), keystone_auth_url="http://127.0.0.1:9/v3", keystone_timeout_seconds=2.0
    )
    app = create_app(runtime=Runtime(settings=settings, db=seeded.db, providers=seeded.providers))
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "alice@dept-x", "password": "Pass-word-1", "csrf_token": token})
    assert response.status_code == 503
    assert "登录服务无响应" in response.get_data(as_text=True)
    response = client.post("/login", data={"username": "admin", "password": "demo-admin-2026", "csrf_token": token})
    assert response.status_code == 302
