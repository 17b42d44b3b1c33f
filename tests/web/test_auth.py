from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from cloudmgr.audit import services as audit
from cloudmgr.demo import DEMO_LOGINS, DemoLogin
from cloudmgr.runtime import Runtime
from tests.web.conftest import LoginFn
from tests.web.helpers import HOME_PATHS, csrf_token


@pytest.mark.parametrize("demo", DEMO_LOGINS, ids=lambda d: d.username)
def test_each_demo_role_lands_on_its_home(client: FlaskClient, login: LoginFn, demo: DemoLogin) -> None:
    response = login(demo.username, demo.password)
    assert response.status_code == 302
    home = HOME_PATHS[demo.role.value]
    assert response.headers["Location"] == home
    page = client.get(home)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert demo.display_name in html
    # "/" sends a logged-in user home too.
    assert client.get("/").headers["Location"] == home


def test_wrong_password_shows_the_error_in_the_form_and_opens_no_session(
    client: FlaskClient, login: LoginFn, seeded: Runtime
) -> None:
    response = login("zhangwei", "not-the-password-1")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "用户名或密码错误" in html
    assert 'class="error-summary"' in html
    assert client.get("/portal/").status_code == 302  # still anonymous
    with client.session_transaction() as session:
        assert "_user_id" not in session
    with seeded.db.unit_of_work() as uow:
        assert [e.action for e in audit.recent(uow.session, limit=1)] == ["auth.login_failed"]


def test_unknown_user_gets_the_same_error(login: LoginFn) -> None:
    assert "用户名或密码错误" in login("nobody", "whatever-123").get_data(as_text=True)


def test_empty_login_form_is_rejected_with_field_errors(client: FlaskClient) -> None:
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "", "password": "", "csrf_token": token})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "请输入用户名" in html and "请输入密码" in html


def test_post_without_csrf_token_is_400(client: FlaskClient) -> None:
    response = client.post("/login", data={"username": "admin", "password": "demo-admin-2026"})
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302  # not logged in


def test_logout_needs_csrf_and_ends_the_session(client: FlaskClient, login_as: Callable[[str], DemoLogin]) -> None:
    login_as("operator")
    assert client.post("/logout").status_code == 400  # no token: refused, still logged in
    page = client.get("/ops/")
    assert page.status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/ops/").status_code == 302


@pytest.mark.parametrize("path", ["/ops/", "/finance/", "/admin/", "/admin/users", "/admin/users/new"])
def test_department_staff_get_403_outside_the_portal(
    client: FlaskClient, login_as: Callable[[str], DemoLogin], path: str
) -> None:
    login_as("dept_staff")
    response = client.get(path)
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "无权访问" in html
    assert "退出登录" in html  # the error page is in the layout


@pytest.mark.parametrize(
    ("role", "forbidden"),
    [("operator", "/portal/"), ("finance", "/ops/"), ("admin", "/finance/"), ("dept_head", "/admin/")],
)
def test_each_role_is_kept_to_its_own_area(
    client: FlaskClient, login_as: Callable[[str], DemoLogin], role: str, forbidden: str
) -> None:
    login_as(role)
    assert client.get(forbidden).status_code == 403


@pytest.mark.parametrize("path", ["/portal/", "/ops/", "/finance/", "/admin/", "/admin/users/new"])
def test_anonymous_is_sent_to_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_login_goes_back_to_the_page_asked_for(client: FlaskClient) -> None:
    target = client.get("/admin/clouds").headers["Location"]
    assert target == "/login?next=/admin/clouds"
    token = csrf_token(client.get(target).get_data(as_text=True))
    response = client.post(
        "/login",
        data={"username": "admin", "password": "demo-admin-2026", "csrf_token": token, "next": "/admin/clouds"},
    )
    assert response.headers["Location"] == "/admin/clouds"


def test_login_never_redirects_off_site(client: FlaskClient) -> None:
    token = csrf_token(client.get("/login").get_data(as_text=True))
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = client.post(
            "/login", data={"username": "admin", "password": "demo-admin-2026", "csrf_token": token, "next": evil}
        )
        assert response.headers["Location"] == "/admin/", evil
        client.post("/logout", data={"csrf_token": csrf_token(client.get("/admin/").get_data(as_text=True))})
        token = csrf_token(client.get("/login").get_data(as_text=True))


def test_session_cookie_flags_and_security_headers(client: FlaskClient, login: LoginFn) -> None:
    response = login("admin", "demo-admin-2026")
    cookie = response.headers["Set-Cookie"]
    assert "cloudmgr_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # settings.session_cookie_secure is off in tests
    page = client.get("/admin/")
    headers = page.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"]
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers["Cache-Control"] == "no-store"


def test_secure_cookie_when_configured(seeded: Runtime) -> None:
    from dataclasses import replace

    from web import create_app

    runtime = replace(seeded, settings=seeded.settings.with_overrides(session_cookie_secure=True))
    client = create_app(runtime=runtime).test_client()
    client.get("/language/en")  # puts something in the session
    cookie = client.get("/language/zh").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_successful_login_is_audited_and_stamps_last_login(login: LoginFn, seeded: Runtime) -> None:
    login("finance", "demo-finance-2026")
    from cloudmgr.organisation import services as org

    with seeded.db.unit_of_work() as uow:
        assert [e.action for e in audit.recent(uow.session, limit=1)] == ["auth.login"]
        assert org.get_user_by_name(uow.session, "finance").last_login_at is not None


def test_role_required_guards_a_single_view(seeded: Runtime) -> None:
    from web import create_app
    from web.core.security import role_required

    app = create_app(runtime=seeded)

    @app.get("/probe/heads-only")
    @role_required("dept_head")
    def heads_only() -> str:
        return "for heads"

    assert app.test_client().get("/probe/heads-only").headers["Location"] == "/login?next=/probe/heads-only"
    for username, password, status in (("zhangwei", "demo-staff-2026", 403), ("lina", "demo-head-2026", 200)):
        client = app.test_client()
        token = csrf_token(client.get("/login").get_data(as_text=True))
        client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        assert client.get("/probe/heads-only").status_code == status, username
