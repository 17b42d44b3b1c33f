"""Administrators edit, disable, reset and delete users from the admin pages (issue 18)."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import utcnow
from cloudmgr.keys import services as keys
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime
from tests.web.helpers import csrf_token, logged_in

PASSWORD = "Fresh-pass-2026"


def _make_user(seeded: Runtime, username: str = "zhaolei", role: Role = Role.OPERATOR, dept: str | None = None) -> int:
    with seeded.db.unit_of_work() as uow:
        return org.create_user(
            uow.session, username=username, password=PASSWORD, role=role, department_key=dept, actor=Actor.system("t")
        ).id


def _login(app: Flask, username: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def _token(seeded: Runtime, username: str) -> str:
    with seeded.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        return org.issue_token(
            uow.session, user, name="t", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        ).token


def _admin(app: Flask, english: bool = True) -> FlaskClient:
    client = logged_in(app, "admin")
    if english:
        client.get("/language/en")
    return client


def _post(client: FlaskClient, path: str, **data: str) -> object:
    token = csrf_token(client.get(path).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data})


def _actions(seeded: Runtime, action: str) -> list[AuditEvent]:
    with seeded.db.unit_of_work() as uow:
        found = list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        uow.session.expunge_all()
        return found


def test_the_user_page_offers_every_action(app: Flask, seeded: Runtime) -> None:
    uid = _make_user(seeded)
    html = _admin(app, english=False).get(f"/admin/users/{uid}").get_data(as_text=True)
    for path in ("edit", "password", "disable", "delete"):
        assert f"/admin/users/{uid}/{path}" in html


def test_edit_name_email_role_and_department(app: Flask, seeded: Runtime) -> None:
    uid = _make_user(seeded, "zhaolei", Role.DEPT_STAFF, "prov-education")
    admin = _admin(app)
    page = admin.get(f"/admin/users/{uid}/edit").get_data(as_text=True)
    assert 'value="zhaolei"' in page and "prov-education" in page
    fields = {
        "display_name": "赵磊",
        "email": "zhaolei@example.gov.cn",
        "role": "dept_head",
        "department": "prov-finance",
    }
    refused = _post(admin, f"/admin/users/{uid}/edit", **fields)
    assert refused.status_code == 400  # type: ignore[attr-defined]
    assert "Give a reason when the role or department changes" in refused.get_data(as_text=True)  # type: ignore[attr-defined]
    bad = _post(admin, f"/admin/users/{uid}/edit", **(fields | {"role": "operator", "reason": "x"}))
    assert bad.status_code == 400  # type: ignore[attr-defined]
    assert "Only department staff and heads belong to a department." in bad.get_data(as_text=True)  # type: ignore[attr-defined]
    done = _post(admin, f"/admin/users/{uid}/edit", **(fields | {"reason": "promoted"}))
    assert done.status_code == 302  # type: ignore[attr-defined]
    with seeded.db.unit_of_work() as uow:
        user = org.get_user(uow.session, uid)
        assert user is not None and user.department is not None
        assert (user.display_name, user.email, user.role, user.department.key) == (
            "赵磊",
            "zhaolei@example.gov.cn",
            "dept_head",
            "prov-finance",
        )
    assert [e.actor for e in _actions(seeded, "user.update")] == ["admin"]
    assert [e.reason for e in _actions(seeded, "user.role_change")] == ["promoted"]


def test_an_admin_cannot_change_their_own_role(app: Flask, seeded: Runtime) -> None:
    admin = _admin(app)
    with seeded.db.unit_of_work() as uow:
        uid = org.get_user_by_name(uow.session, "admin").id
    refused = _post(admin, f"/admin/users/{uid}/edit", display_name="x", role="operator", reason="x")
    assert refused.status_code == 409  # type: ignore[attr-defined]
    assert "You cannot change your own role" in refused.get_data(as_text=True)  # type: ignore[attr-defined]


def test_disabling_ends_the_users_session_and_api_token_at_once(app: Flask, seeded: Runtime) -> None:
    uid = _make_user(seeded)
    theirs = _login(app, "zhaolei")
    assert theirs.get("/ops/").status_code == 200
    token = _token(seeded, "zhaolei")
    headers = {"Authorization": f"Bearer {token}"}
    assert theirs.get("/api/v1/me", headers=headers).status_code == 200
    admin = _admin(app)
    confirm = admin.get(f"/admin/users/{uid}/disable").get_data(as_text=True)
    assert "What will happen" in confirm and "Their 1 valid API token is revoked" in confirm
    assert _post(admin, f"/admin/users/{uid}/disable", reason="").status_code == 400  # type: ignore[attr-defined]
    done = _post(admin, f"/admin/users/{uid}/disable", reason="left the team")
    assert done.status_code == 302  # type: ignore[attr-defined]
    # The user's open session is refused on its next request; the token gets 401.
    again = theirs.get("/ops/")
    assert again.status_code == 302 and "/login" in again.headers["Location"]
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 401
    assert [e.reason for e in _actions(seeded, "user.disable")] == ["left the team"]


def test_reset_to_a_temporary_password_shown_once(app: Flask, seeded: Runtime) -> None:
    uid = _make_user(seeded)
    theirs = _login(app, "zhaolei")
    token = _token(seeded, "zhaolei")
    admin = _admin(app)
    assert "The old password stops working at once" in admin.get(f"/admin/users/{uid}/password").get_data(as_text=True)
    assert _post(admin, f"/admin/users/{uid}/password", reason="").status_code == 400  # type: ignore[attr-defined]
    weak = _post(
        admin, f"/admin/users/{uid}/password", password="zhaolei-zhaolei", confirm="zhaolei-zhaolei", reason="x"
    )
    assert weak.status_code == 400  # type: ignore[attr-defined]
    assert "does not meet the policy" in weak.get_data(as_text=True)  # type: ignore[attr-defined]
    done = _post(admin, f"/admin/users/{uid}/password", reason="forgot it")
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"  # type: ignore[attr-defined]
    match = re.search(r'id="temporary-password">([^<]+)<', done.get_data(as_text=True))  # type: ignore[attr-defined]
    assert match is not None
    temporary = match.group(1)
    assert "/login" in theirs.get("/ops/").headers["Location"]
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    _login(app, "zhaolei", temporary)
    [event] = _actions(seeded, "user.password_reset")
    assert temporary not in str(event.detail) and event.reason == "forgot it"
    # Not kept anywhere the browser could show again.
    assert temporary not in admin.get(f"/admin/users/{uid}").get_data(as_text=True)


def test_reset_to_a_typed_password(app: Flask, seeded: Runtime) -> None:
    uid = _make_user(seeded)
    admin = _admin(app)
    done = _post(
        admin,
        f"/admin/users/{uid}/password",
        password="Typed-pass-2026",
        confirm="Typed-pass-2026",
        reason="asked by phone",
    )
    assert done.status_code == 200  # type: ignore[attr-defined]
    assert "temporary-password" not in done.get_data(as_text=True)  # type: ignore[attr-defined]
    _login(app, "zhaolei", "Typed-pass-2026")


def test_delete_a_user_after_typing_the_username(app: Flask, seeded: Runtime) -> None:
    uid = _make_user(seeded)
    admin = _admin(app)
    assert "cannot be undone" in admin.get(f"/admin/users/{uid}/delete").get_data(as_text=True)
    wrong = _post(admin, f"/admin/users/{uid}/delete", reason="left", confirm="zhao")
    assert wrong.status_code == 400  # type: ignore[attr-defined]
    done = _post(admin, f"/admin/users/{uid}/delete", reason="left", confirm="zhaolei")
    assert done.status_code == 302 and done.headers["Location"] == "/admin/users"  # type: ignore[attr-defined]
    assert admin.get(f"/admin/users/{uid}").status_code == 404
    [event] = _actions(seeded, "user.delete")
    assert event.detail["username"] == "zhaolei" and event.reason == "left"


def test_a_user_with_history_is_disabled_not_deleted(app: Flask, seeded: Runtime) -> None:
    uid = _make_user(seeded, "keyholder", Role.DEPT_STAFF, "prov-education")
    with seeded.db.unit_of_work() as uow:
        keyholder = Actor.of(org.get_user_by_name(uow.session, "keyholder"))
        keys.add_key(uow.session, keyholder, "laptop", _PUBLIC_KEY)
    admin = _admin(app)
    refused = _post(admin, f"/admin/users/{uid}/delete", reason="left", confirm="keyholder")
    assert refused.status_code == 409  # type: ignore[attr-defined]
    assert "Disable the account instead." in refused.get_data(as_text=True)  # type: ignore[attr-defined]
    assert admin.get(f"/admin/users/{uid}").status_code == 200


def test_an_admin_cannot_delete_or_disable_themselves(app: Flask, seeded: Runtime) -> None:
    admin = _admin(app)
    with seeded.db.unit_of_work() as uow:
        uid = org.get_user_by_name(uow.session, "admin").id
    assert "You cannot do this to your own account" in admin.get(f"/admin/users/{uid}/delete").get_data(as_text=True)
    token = csrf_token(admin.get(f"/admin/users/{uid}").get_data(as_text=True))
    refused = admin.post(f"/admin/users/{uid}/delete", data={"csrf_token": token, "reason": "x", "confirm": "admin"})
    assert refused.status_code == 409
    assert admin.post(f"/admin/users/{uid}/disable", data={"csrf_token": token, "reason": "x"}).status_code == 409


def test_the_chinese_pages_render(app: Flask, seeded: Runtime) -> None:
    uid = _make_user(seeded)
    admin = _admin(app, english=False)
    for path in ("edit", "password", "disable", "delete"):
        response = admin.get(f"/admin/users/{uid}/{path}")
        assert response.status_code == 200, path
        assert "zhaolei" in response.get_data(as_text=True)


_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example"


# --- the same through the API ---------------------------------------------------------------------


def _api(seeded: Runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(seeded, 'admin')}"}


def test_api_updates_a_user(app: Flask, seeded: Runtime) -> None:
    uid = _make_user(seeded, "zhaolei", Role.DEPT_STAFF, "prov-education")
    client, headers = app.test_client(), _api(seeded)
    refused = client.post(f"/api/v1/users/{uid}/update", json={"role": "operator"}, headers=headers)
    assert refused.status_code == 400 and "reason" in refused.get_json()["message"]
    done = client.post(
        f"/api/v1/users/{uid}/update",
        json={"role": "operator", "reason": "moved to operations", "email": "zl@example.gov.cn"},
        headers=headers,
    )
    assert done.status_code == 200, done.get_json()
    answer = done.get_json()
    assert (answer["role"], answer["department"], answer["email"], answer["display_name"]) == (
        "operator",
        None,
        "zl@example.gov.cn",
        "zhaolei",
    )
    bad = client.post(f"/api/v1/users/{uid}/update", json={"role": "dept_head", "reason": "x"}, headers=headers)
    assert bad.status_code == 400 and "needs a department" in bad.get_json()["message"]


def test_api_resets_a_password_and_answers_the_temporary_one_once(app: Flask, seeded: Runtime) -> None:
    uid = _make_user(seeded)
    theirs = _token(seeded, "zhaolei")
    client, headers = app.test_client(), _api(seeded)
    done = client.post(f"/api/v1/users/{uid}/reset-password", json={"reason": "forgot"}, headers=headers)
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    answer = done.get_json()
    assert answer["generated"] is True and answer["user"]["username"] == "zhaolei"
    _login(app, "zhaolei", answer["password"])
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {theirs}"}).status_code == 401
    typed = client.post(
        f"/api/v1/users/{uid}/reset-password", json={"reason": "x", "password": "Typed-pass-2026"}, headers=headers
    )
    assert typed.status_code == 200 and "password" not in typed.get_json()
    with seeded.db.unit_of_work() as uow:
        admin_id = org.get_user_by_name(uow.session, "admin").id
    own = client.post(f"/api/v1/users/{admin_id}/reset-password", json={"reason": "x"}, headers=headers)
    assert own.status_code == 409 and own.get_json()["error"] == "own_account"


def test_api_deletes_a_user_or_says_to_disable(app: Flask, seeded: Runtime) -> None:
    uid = _make_user(seeded)
    keyholder = _make_user(seeded, "keyholder", Role.DEPT_STAFF, "prov-education")
    with seeded.db.unit_of_work() as uow:
        keys.add_key(uow.session, Actor.of(org.get_user_by_name(uow.session, "keyholder")), "laptop", _PUBLIC_KEY)
    client, headers = app.test_client(), _api(seeded)
    assert client.delete(f"/api/v1/users/{uid}", json={}, headers=headers).status_code == 400
    done = client.delete(f"/api/v1/users/{uid}", json={"reason": "left"}, headers=headers)
    assert done.status_code == 200 and done.get_json() == {"deleted": "zhaolei"}
    assert client.delete(f"/api/v1/users/{uid}", json={"reason": "left"}, headers=headers).status_code == 404
    refused = client.delete(f"/api/v1/users/{keyholder}", json={"reason": "left"}, headers=headers)
    assert refused.status_code == 409 and refused.get_json()["error"] == "user_has_history"
