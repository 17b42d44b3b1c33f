"""After an administrator resets a password, the user chooses a new one at the next log-in before
any other page; 修改密码 is a visible button in every logged-in user's header (issue 18)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cloudmgr.db import utcnow
from cloudmgr.identity import services as identity
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role, User
from cloudmgr.runtime import Runtime
from tests.web.helpers import csrf_token, demo_login, logged_in

PASSWORD = "Fresh-pass-2026"
NEW_PASSWORD = "Mine-alone-2027"


def _make_staff(seeded: Runtime) -> int:
    with seeded.db.unit_of_work() as uow:
        return org.create_user(
            uow.session,
            username="liuyang",
            password=PASSWORD,
            role=Role.DEPT_STAFF,
            department_key="prov-education",
            actor=Actor.system("t"),
        ).id


def _login(app: Flask, password: str) -> tuple[FlaskClient, str]:
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "liuyang", "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client, response.headers["Location"]


def _reset(app: Flask, user_id: int) -> str:
    admin = logged_in(app, demo_login("admin").username)
    path = f"/admin/users/{user_id}/password"
    token = csrf_token(admin.get(path).get_data(as_text=True))
    done = admin.post(path, data={"csrf_token": token, "reason": "forgot it"}).get_data(as_text=True)
    assert 'data-testid="change-required"' in done
    match = re.search(r'id="temporary-password">([^<]+)<', done)
    assert match is not None
    return match.group(1)


def _required(seeded: Runtime, user_id: int) -> bool:
    with seeded.db.unit_of_work() as uow:
        user = uow.session.get(User, user_id)
        assert user is not None
        return user.password_change_required


def _change(client: FlaskClient, current: str, new: str) -> object:
    token = csrf_token(client.get("/account/password").get_data(as_text=True))
    return client.post(
        "/account/password", data={"csrf_token": token, "current": current, "password": new, "confirm": new}
    )


def test_after_a_reset_the_new_password_comes_before_any_page(app: Flask, seeded: Runtime) -> None:
    uid = _make_staff(seeded)
    assert not _required(seeded, uid)
    temporary = _reset(app, uid)
    assert _required(seeded, uid)

    client, _ = _login(app, temporary)
    for path in ("/portal/", "/portal/servers", "/portal/requests/new", "/"):
        answer = client.get(path)
        assert answer.status_code == 302 and answer.headers["Location"].endswith("/account/password"), path
    page = client.get("/account/password").get_data(as_text=True)
    assert 'data-testid="password-change-required"' in page
    assert 'class="main-nav"' not in page  # no menu that leads nowhere
    # a POST elsewhere is held back too (nothing done on the way)
    assert client.post("/portal/keys", data={}).status_code == 302

    client.get("/language/en?next=/account/password")  # the message in English, whatever the catalog holds
    same = _change(client, temporary, temporary)
    assert same.status_code == 400  # type: ignore[attr-defined]
    assert "Choose a password other than the current one." in same.get_data(as_text=True)  # type: ignore[attr-defined]
    assert _required(seeded, uid)

    done = _change(client, temporary, NEW_PASSWORD)
    assert done.status_code == 302  # type: ignore[attr-defined]
    assert not _required(seeded, uid)
    assert client.get("/portal/").status_code == 200
    # logging in again goes straight to the pages
    _, home = _login(app, NEW_PASSWORD)
    assert home.endswith("/portal/")


def test_the_language_switch_and_log_out_still_work_meanwhile(app: Flask, seeded: Runtime) -> None:
    uid = _make_staff(seeded)
    client, _ = _login(app, _reset(app, uid))
    assert client.get("/language/en?next=/account/password").status_code == 302
    assert "Change password" in client.get("/account/password").get_data(as_text=True)
    token = csrf_token(client.get("/account/password").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).headers["Location"].endswith("/login")


def test_api_tokens_issued_after_the_reset_are_not_held_back(app: Flask, seeded: Runtime) -> None:
    uid = _make_staff(seeded)
    with seeded.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, "liuyang")
        before = org.issue_token(uow.session, user, name="old", expires_at=None, actor=Actor.system("t")).token
    _reset(app, uid)
    with seeded.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, "liuyang")
        after = org.issue_token(
            uow.session, user, name="new", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        ).token
    api = app.test_client()
    # the reset revoked the old token (whoever held the old password may hold it) ...
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {before}"}).status_code == 401
    # ... and the required change concerns the pages, not a token issued since
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {after}"}).status_code == 200


def test_the_users_own_change_clears_it_and_the_same_password_is_refused(seeded: Runtime) -> None:
    from cloudmgr.identity.errors import PasswordUnchanged

    uid = _make_staff(seeded)
    admin = Actor(username="admin", role=Role.ADMIN, department_id=None, user_id=None)
    with seeded.db.unit_of_work() as uow:
        temporary = identity.reset_password(uow.session, admin, uid, new_password=None, reason="x")
    assert _required(seeded, uid)
    with seeded.db.unit_of_work() as uow:
        user = uow.session.get(User, uid)
        assert user is not None
        with pytest.raises(PasswordUnchanged):
            identity.change_own_password(uow.session, user, temporary, temporary)
    with seeded.db.unit_of_work() as uow:
        user = uow.session.get(User, uid)
        assert user is not None
        identity.change_own_password(uow.session, user, temporary, NEW_PASSWORD)
    assert not _required(seeded, uid)


@pytest.mark.parametrize("role", ["dept_staff", "dept_head", "operator", "finance", "admin"])
def test_every_logged_in_user_sees_change_password_as_a_header_button(app: Flask, role: str) -> None:
    client = logged_in(app, demo_login(role).username)
    home = client.get(client.get("/").headers["Location"]).get_data(as_text=True)
    header = home.split("</header>")[0]
    button = re.search(r'<a class="button button-light user-password" href="/account/password"[^>]*>', header)
    assert button is not None and 'data-testid="change-password"' in button.group(0)
    assert header[button.end() :].startswith("修改密码</a>")  # the Chinese UI by default
