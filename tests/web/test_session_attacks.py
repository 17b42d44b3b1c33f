"""Sessions that end, accounts administrators can stop, log-in throttling per address (issue 14).

Each attack is played as an attacker would: a session cookie copied out of the victim's
browser and replayed from another client after the event that must end it, an API token
used after its user was disabled, a non-administrator calling the administrators' pages and
API, one address spraying many usernames.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cli import main as cli_main
from cloudmgr.db import utcnow
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import ApiToken, User
from cloudmgr.runtime import Runtime, set_runtime
from tests.web.helpers import PASSWORDS, csrf_token, logged_in, post_form
from web.core.security import SESSION_VERSION_KEY

COOKIE = "cloudmgr_session"
ATTACKER_ADDRESS = "203.0.113.66"


# --- helpers -------------------------------------------------------------------------------------


def _stolen_copy(app: Flask, victim: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of the victim's session cookie."""
    cookie = victim.get_cookie(COOKIE)
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie.value)
    return thief


def _is_refused(client: FlaskClient, path: str) -> bool:
    """The session no longer stands for anyone: a protected page sends it to the login page."""
    response = client.get(path)
    return response.status_code == 302 and "/login" in response.headers["Location"]


def _token(app: Flask, username: str) -> str:
    with app.extensions["cloudmgr"].db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        issued = org.issue_token(
            uow.session, user, name="t", expires_at=utcnow() + timedelta(days=30), actor=Actor.system("t")
        )
    return issued.token


def _api(client: FlaskClient, token: str, path: str, body: object | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"}
    if body is None:
        response = client.get(path, headers=headers)
    else:
        response = client.post(path, headers=headers, data=json.dumps(body), content_type="application/json")
    return response.status_code, response.get_json(silent=True) or {}


def _user_id(app: Flask, username: str) -> int:
    with app.extensions["cloudmgr"].db.unit_of_work() as uow:
        return org.get_user_by_name(uow.session, username).id


def _events(app: Flask, action: str) -> list[AuditEvent]:
    with app.extensions["cloudmgr"].db.unit_of_work() as uow:
        return list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _english(client: FlaskClient) -> FlaskClient:
    """The client reads the pages in English (the messages are asserted in their msgid)."""
    client.get("/language/en")
    return client


def _login(client: FlaskClient, username: str, password: str, address: str | None = None) -> tuple[int, str]:
    environ = {"REMOTE_ADDR": address} if address else {}
    token = csrf_token(client.get("/login", environ_base=environ).get_data(as_text=True))
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base=environ,
    )
    return response.status_code, response.get_data(as_text=True)


def _cli(seeded: Runtime, *args: str) -> Result:
    settings = seeded.settings
    env = {
        "CLOUDMGR_ENV": "test",
        "CLOUDMGR_INSTANCE_PATH": str(settings.instance_path),
        "CLOUDMGR_DATABASE_URL": settings.database_url,
        "CLOUDMGR_SECRET_KEY": settings.secret_key,
    }
    try:
        return CliRunner().invoke(cli_main, list(args), env=env)
    finally:
        set_runtime(seeded)  # the command installed its own runtime


# --- a copied session cookie dies with the event ---------------------------------------------------


def test_attack_replaying_a_session_cookie_after_logout_is_refused(app: Flask) -> None:
    victim = logged_in(app, "zhangwei")
    thief = _stolen_copy(app, victim)
    assert thief.get("/portal/").status_code == 200  # the copy works while the victim is logged in
    post_form(victim, "/logout", {}, page="/portal/")
    assert _is_refused(victim, "/portal/")
    assert _is_refused(thief, "/portal/")
    assert _is_refused(thief, "/account/password")
    assert [e.detail["reason"] for e in _events(app, "user.sessions_ended")] == ["logout"]
    # Logging in again works, with a new session.
    assert logged_in(app, "zhangwei").get("/portal/").status_code == 200


def test_attack_replaying_a_session_cookie_after_a_password_change_is_refused(app: Flask) -> None:
    victim = logged_in(app, "zhangwei")
    token = _token(app, "zhangwei")
    thief = _stolen_copy(app, victim)
    response = post_form(
        victim,
        "/account/password",
        {"current": "demo-staff-2026", "password": "Brand-New-2026", "confirm": "Brand-New-2026"},
    )
    assert response.status_code == 302
    assert victim.get("/portal/").status_code == 200  # the session that changed it goes on
    assert _is_refused(thief, "/portal/")
    status, body = _api(app.test_client(), token, "/api/v1/me")
    assert status == 401 and body["error"] == "invalid_token"


def test_attack_cookie_and_token_after_an_administrator_sets_the_password_are_refused(
    app: Flask, seeded: Runtime
) -> None:
    victim = logged_in(app, "wangfang")
    token = _token(app, "wangfang")
    thief = _stolen_copy(app, victim)
    result = _cli(seeded, "users", "password", "wangfang", "--password", "Reset-By-Admin-7")
    assert result.exit_code == 0, result.output
    assert _is_refused(thief, "/portal/")
    assert _is_refused(victim, "/portal/")
    assert _api(app.test_client(), token, "/api/v1/me")[0] == 401


def test_attack_cookie_and_token_of_a_disabled_user_are_refused(app: Flask) -> None:
    victim = logged_in(app, "zhangwei")
    thief = _stolen_copy(app, victim)
    token = _token(app, "zhangwei")
    assert _api(app.test_client(), token, "/api/v1/me")[0] == 200
    admin = logged_in(app, "admin")
    uid = _user_id(app, "zhangwei")
    response = post_form(
        admin, f"/admin/users/{uid}/disable", {"reason": "left the department"}, page=f"/admin/users/{uid}"
    )
    assert response.status_code == 302
    assert _is_refused(thief, "/portal/")
    assert _is_refused(victim, "/portal/")
    assert _api(app.test_client(), token, "/api/v1/me")[0] == 401
    # The right password no longer logs in, and says why.
    status, page = _login(_english(app.test_client()), "zhangwei", PASSWORDS["zhangwei"])
    assert status == 403 and "This account is disabled" in page
    disabled = _events(app, "user.disable")
    assert len(disabled) == 1
    assert (disabled[0].actor, disabled[0].target_id, disabled[0].reason) == ("admin", str(uid), "left the department")
    assert _events(app, "auth.login_refused_disabled")

    # Enabled again: the log-in comes back, the revoked token does not.
    response = post_form(admin, f"/admin/users/{uid}/enable", {"reason": "back"}, page=f"/admin/users/{uid}")
    assert response.status_code == 302
    assert logged_in(app, "zhangwei").get("/portal/").status_code == 200
    assert _api(app.test_client(), token, "/api/v1/me")[0] == 401
    assert _is_refused(thief, "/portal/")


def test_attack_cookie_and_token_after_a_role_change_are_refused(app: Flask, seeded: Runtime) -> None:
    victim = logged_in(app, "lina")  # head of prov-education
    thief = _stolen_copy(app, victim)
    token = _token(app, "lina")
    assert thief.get("/portal/approvals").status_code == 200
    result = _cli(seeded, "users", "role", "lina", "--role", "dept_staff", "--department", "prov-education",
                  "--reason", "no longer head")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _is_refused(thief, "/portal/")
    assert _is_refused(victim, "/portal/")
    assert _api(app.test_client(), token, "/api/v1/me")[0] == 401
    assert _events(app, "user.role_change")[0].detail["after"] == {"role": "dept_staff", "department": "prov-education"}
    # A department change ends them the same way.
    again = logged_in(app, "lina")
    result = _cli(seeded, "users", "role", "lina", "--role", "dept_staff", "--department", "prov-health",
                  "--reason", "moved")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _is_refused(again, "/portal/")


def test_attack_a_session_without_a_version_is_refused(app: Flask) -> None:
    """A session cookie from before session versions (or one forged without it) opens nothing."""
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as session:
        session["_user_id"] = str(_user_id(app, "admin"))
        session["_fresh"] = True
    assert _is_refused(client, "/admin/")
    with client.session_transaction() as session:
        session[SESSION_VERSION_KEY] = "0"  # not an integer: not a version
    assert _is_refused(client, "/admin/")


def test_attack_an_api_token_revoked_by_an_administrator_is_refused(app: Flask) -> None:
    kept, revoked = _token(app, "operator"), _token(app, "operator")
    admin_token = _token(app, "admin")
    client = app.test_client()
    uid = _user_id(app, "operator")
    status, body = _api(client, admin_token, f"/api/v1/users/{uid}/tokens")
    assert status == 200 and len(body["items"]) == 2  # type: ignore[arg-type]
    with app.extensions["cloudmgr"].db.unit_of_work() as uow:
        token_id = uow.session.scalar(select(ApiToken.id).where(ApiToken.prefix == revoked[:12]))
    status, body = _api(
        client, admin_token, f"/api/v1/users/{uid}/revoke-tokens", {"reason": "leaked", "token_id": token_id}
    )
    assert (status, body) == (200, {"revoked": 1})
    assert _api(client, revoked, "/api/v1/me")[0] == 401
    assert _api(client, kept, "/api/v1/me")[0] == 200
    status, body = _api(client, admin_token, f"/api/v1/users/{uid}/revoke-tokens", {"reason": "all of them"})
    assert (status, body) == (200, {"revoked": 1})
    assert _api(client, kept, "/api/v1/me")[0] == 401
    assert [e.reason for e in _events(app, "token.revoke")] == ["leaked", "all of them"]


def test_attack_disable_through_the_api_ends_the_token_at_once(app: Flask) -> None:
    victim_token = _token(app, "finance")
    admin_token = _token(app, "admin")
    client = app.test_client()
    uid = _user_id(app, "finance")
    status, body = _api(client, admin_token, f"/api/v1/users/{uid}/disable", {"reason": "suspected compromise"})
    assert status == 200 and body["active"] is False
    assert _api(client, victim_token, "/api/v1/me")[0] == 401
    status, body = _api(client, admin_token, f"/api/v1/users/{uid}/enable", {"reason": "cleared"})
    assert status == 200 and body["active"] is True
    assert _api(client, victim_token, "/api/v1/me")[0] == 401  # revoked tokens stay revoked
    status, body = _api(client, admin_token, f"/api/v1/users/{uid}/disable", {})
    assert status == 400 and "reason" in str(body["message"])


# --- only administrators, never against themselves ----------------------------------------------


@pytest.mark.parametrize("who", ["zhangwei", "lina", "operator", "finance"])
def test_attack_a_non_administrator_cannot_disable_or_revoke(app: Flask, who: str) -> None:
    victim = _user_id(app, "admin")
    victim_token = _token(app, "admin")
    token = _token(app, who)
    client = logged_in(app, who)
    for action in ("disable", "revoke-tokens"):
        status, body = _api(client, token, f"/api/v1/users/{victim}/{action}", {"reason": "take over"})
        assert (status, body["error"]) == (403, "forbidden"), action
        page_token = csrf_token(client.get("/account/password").get_data(as_text=True))
        response = client.post(f"/admin/users/{victim}/{action}", data={"csrf_token": page_token, "reason": "x"})
        assert response.status_code == 403, action
    assert _api(client, token, f"/api/v1/users/{victim}/tokens")[0] == 403
    assert _api(app.test_client(), victim_token, "/api/v1/me")[0] == 200
    assert logged_in(app, "admin").get("/admin/").status_code == 200
    assert not _events(app, "user.disable") and not _events(app, "token.revoke")


def test_attack_an_administrator_cannot_disable_themselves(app: Flask) -> None:
    admin = _english(logged_in(app, "admin"))
    uid = _user_id(app, "admin")
    page = admin.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert "You cannot disable your own account" in page
    response = post_form(admin, f"/admin/users/{uid}/disable", {"reason": "oops"}, page=f"/admin/users/{uid}")
    assert response.status_code == 409 and "You cannot disable your own account" in response.get_data(as_text=True)
    status, body = _api(app.test_client(), _token(app, "admin"), f"/api/v1/users/{uid}/disable", {"reason": "oops"})
    assert (status, body["error"]) == (409, "own_account")
    assert admin.get("/admin/").status_code == 200


def test_admin_user_page_lists_tokens_and_needs_a_reason(app: Flask) -> None:
    _token(app, "zhangwei")
    admin = logged_in(app, "admin")
    uid = _user_id(app, "zhangwei")
    assert f"/admin/users/{uid}" in admin.get("/admin/users").get_data(as_text=True)
    page = admin.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert "cmt_" in page  # the token's prefix
    response = post_form(admin, f"/admin/users/{uid}/disable", {"reason": "  "}, page=f"/admin/users/{uid}")
    assert response.status_code == 400
    with app.extensions["cloudmgr"].db.unit_of_work() as uow:
        assert uow.session.get(User, uid).active  # type: ignore[union-attr]
    assert admin.get("/admin/users/999999").status_code == 404


# --- the command line ----------------------------------------------------------------------------


def test_cli_disables_enables_lists_and_revokes(app: Flask, seeded: Runtime) -> None:
    token = _token(app, "wangfang")
    result = _cli(seeded, "users", "tokens", "wangfang")
    assert result.exit_code == 0 and token[:12] in result.output and "valid" in result.output
    result = _cli(seeded, "users", "revoke-tokens", "wangfang", "--reason", "rotation")
    assert result.exit_code == 0 and "1 API token(s) of wangfang revoked" in result.output
    assert "revoked" in _cli(seeded, "users", "tokens", "wangfang").output
    result = _cli(seeded, "users", "disable", "wangfang", "--reason", "left")
    assert result.exit_code == 0, result.output
    assert _login(app.test_client(), "wangfang", PASSWORDS["wangfang"])[0] == 403
    result = _cli(seeded, "users", "enable", "wangfang", "--reason", "back")
    assert result.exit_code == 0, result.output
    assert _login(app.test_client(), "wangfang", PASSWORDS["wangfang"])[0] == 302
    assert _events(app, "user.disable")[0].actor.startswith("cli:")


@pytest.mark.parametrize(
    "args",
    [
        ("users", "disable", "nobody-such", "--reason", "x"),
        ("users", "enable", "nobody-such", "--reason", "x"),
        ("users", "revoke-tokens", "nobody-such", "--reason", "x"),
        ("users", "tokens", "nobody-such"),
        ("users", "role", "nobody-such", "--role", "operator", "--reason", "x"),
    ],
)
def test_cli_refuses_an_unknown_user_with_a_message(seeded: Runtime, args: tuple[str, ...]) -> None:
    result = _cli(seeded, *args)
    assert result.exit_code != 0
    assert "no user 'nobody-such'" in result.output


def test_cli_needs_a_reason_and_a_valid_role(seeded: Runtime) -> None:
    assert _cli(seeded, "users", "disable", "wangfang").exit_code != 0  # --reason is required
    result = _cli(seeded, "users", "disable", "wangfang", "--reason", "   ")
    assert result.exit_code != 0 and "give a reason" in result.output
    result = _cli(seeded, "users", "role", "wangfang", "--role", "dept_head", "--reason", "x")
    assert result.exit_code != 0 and "needs a department" in result.output


# --- log-in throttling per client address ------------------------------------------------------


def test_attack_one_address_spraying_many_usernames_is_locked(app: Flask) -> None:
    client = _english(app.test_client())
    statuses = [_login(client, f"user{n:02d}", "Spring-2026!", ATTACKER_ADDRESS)[0] for n in range(30)]
    # 19 ordinary failures, the 20th locks the address, the rest are refused without a check.
    assert statuses[:19] == [200] * 19 and set(statuses[19:]) == {429}
    status, page = _login(client, "zhangwei", PASSWORDS["zhangwei"], ATTACKER_ADDRESS)  # the right password
    assert status == 429 and "Too many failed log-ins from your network address" in page
    # The address, not the usernames tried, is locked: each name failed once, far below its own limit.
    locked = _events(app, "auth.address_locked")
    assert len(locked) == 1 and locked[0].target_id == ATTACKER_ADDRESS and locked[0].target_type == "address"
    assert len(_events(app, "auth.login_failed")) == 20
    assert len(_events(app, "auth.login_refused_address_locked")) == 11
    # Another address is not affected.
    assert _login(app.test_client(), "zhangwei", PASSWORDS["zhangwei"], "198.51.100.7")[0] == 302


def test_attack_a_forged_forwarded_header_does_not_dodge_the_address_lock(app: Flask) -> None:
    client = app.test_client()
    for n in range(20):
        _login(client, f"user{n:02d}", "Spring-2026!", ATTACKER_ADDRESS)
    # The attacker is not a trusted proxy: its X-Forwarded-For is not believed.
    token = csrf_token(client.get("/login", environ_base={"REMOTE_ADDR": ATTACKER_ADDRESS}).get_data(as_text=True))
    response = client.post(
        "/login",
        data={"username": "zhangwei", "password": PASSWORDS["zhangwei"], "csrf_token": token},
        environ_base={"REMOTE_ADDR": ATTACKER_ADDRESS},
        headers={"X-Forwarded-For": "198.51.100.99"},
    )
    assert response.status_code == 429


def test_behind_the_trusted_proxy_each_client_is_throttled_apart(app: Flask) -> None:
    """nginx on 127.0.0.1 relays everyone: the client named in X-Forwarded-For is locked, not the proxy."""
    client = app.test_client()
    relayed = {"X-Forwarded-For": f"10.1.2.3, {ATTACKER_ADDRESS}"}  # nginx appended the attacker's address
    for n in range(20):
        token = csrf_token(client.get("/login").get_data(as_text=True))
        client.post(
            "/login", data={"username": f"u{n}", "password": "x-Wrong-123", "csrf_token": token}, headers=relayed
        )
    assert [e.target_id for e in _events(app, "auth.address_locked")] == [ATTACKER_ADDRESS]
    other = app.test_client()
    token = csrf_token(other.get("/login").get_data(as_text=True))
    response = other.post(
        "/login",
        data={"username": "zhangwei", "password": PASSWORDS["zhangwei"], "csrf_token": token},
        headers={"X-Forwarded-For": "198.51.100.8"},
    )
    assert response.status_code == 302
