"""Logging in with LDAP credentials against a real OpenLDAP server (tests/identity/conftest.py).

Every login goes through the web form, as a person would: the bind as the user's DN, the
search of its own entry (groups through the memberof overlay, the department attribute),
the mapping to a role and department, and every refusal with its audit record.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from cloudmgr.audit.models import AuditEvent
from cloudmgr.identity.models import ExternalIdentity
from cloudmgr.organisation.models import User
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.identity.conftest import OPS_GROUP_DN, PASSWORD, SPECIAL_DN, SPECIAL_UID, STAFF_GROUP_DN
from tests.identity.slapd import PEOPLE, Slapd
from tests.web.helpers import csrf_token
from web import create_app

pytestmark = ONE_DATABASE  # the subject is the directory and the login, not the database


@pytest.fixture
def ldap_app(seeded: Runtime, slapd: Slapd, ldap_mapping: Path) -> Flask:
    settings = seeded.settings.with_overrides(
        login_backends=("local", "ldap"),
        ldap_url=slapd.url,
        ldap_user_dn=f"uid={{username}},{PEOPLE}",
        identity_mapping_file=ldap_mapping,
        keystone_timeout_seconds=10.0,
    )
    return create_app(runtime=Runtime(settings=settings, db=seeded.db, providers=seeded.providers))


def _login(app: Flask, username: str, password: str = PASSWORD) -> tuple[FlaskClient, TestResponse]:
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    return client, response


def _user(app: Flask, username: str) -> tuple[str, str | None, str] | None:
    """(role, department key, external subject) of the local user ``username``, if any."""
    with app.extensions["cloudmgr"].db.unit_of_work() as uow:
        user = uow.session.scalar(select(User).where(User.username == username))
        if user is None:
            return None
        ext = uow.session.scalar(select(ExternalIdentity).where(ExternalIdentity.user_id == user.id))
        assert ext is not None and ext.source == "ldap"
        return user.role, (user.department.key if user.department else None), ext.subject


def _audit(app: Flask, action: str) -> list[dict[str, object]]:
    with app.extensions["cloudmgr"].db.unit_of_work() as uow:
        return [
            {"actor": e.actor, "target_id": e.target_id, **(e.detail or {})}
            for e in uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        ]


def _external_users(app: Flask) -> int:
    with app.extensions["cloudmgr"].db.unit_of_work() as uow:
        return int(uow.session.scalar(select(func.count(ExternalIdentity.id))) or 0)


def test_ldap_login_binds_searches_and_maps_group_and_department(ldap_app: Flask, slapd: Slapd) -> None:
    client, response = _login(ldap_app, "zhanglei")
    assert response.status_code == 302 and response.headers["Location"] == "/portal/"
    assert client.get("/portal/").status_code == 200
    assert _user(ldap_app, "zhanglei") == ("dept_staff", "prov-education", f"uid=zhanglei,{PEOPLE}")
    with ldap_app.extensions["cloudmgr"].db.unit_of_work() as uow:
        user = uow.session.scalar(select(User).where(User.username == "zhanglei"))
        assert user is not None and user.email == "zhanglei@edu.gov.test" and user.display_name == "Zhang Lei"
        ext = uow.session.scalar(select(ExternalIdentity).where(ExternalIdentity.user_id == user.id))
        assert ext is not None and STAFF_GROUP_DN in ext.claims["groups"]
    assert any(e["actor"] == "zhanglei" for e in _audit(ldap_app, "auth.login"))
    assert _audit(ldap_app, "user.create_external")

    # The directory puts the same person in the operators' group: the next login reads it.
    membership = f"dn: {OPS_GROUP_DN}\nchangetype: modify\n{{}}: member\nmember: uid=zhanglei,{PEOPLE}\n"
    slapd.modify(membership.format("add"))
    try:
        _, response = _login(ldap_app, "zhanglei")
    finally:
        slapd.modify(membership.format("delete"))
    assert response.status_code == 302 and response.headers["Location"] == "/ops/"
    assert _user(ldap_app, "zhanglei") == ("operator", None, f"uid=zhanglei,{PEOPLE}")
    assert _audit(ldap_app, "user.update_external")


def test_ldap_group_mapped_by_its_cn_gives_the_operator_role(ldap_app: Flask) -> None:
    _, response = _login(ldap_app, "wangops")
    assert response.status_code == 302 and response.headers["Location"] == "/ops/"
    assert _user(ldap_app, "wangops") == ("operator", None, f"uid=wangops,{PEOPLE}")


def test_attack_wrong_ldap_password_is_refused_and_audited(ldap_app: Flask) -> None:
    _, response = _login(ldap_app, "zhanglei", "Not-The-Password-1")
    assert response.status_code == 200 and 'name="password"' in response.get_data(as_text=True)
    assert "Location" not in response.headers
    assert _user(ldap_app, "zhanglei") is None and _external_users(ldap_app) == 0
    failed = _audit(ldap_app, "auth.login_failed")
    assert [(e["target_id"], e["reason"]) for e in failed] == [("zhanglei", "wrong username or password")]


def test_attack_unknown_ldap_user_is_refused_and_audited(ldap_app: Flask) -> None:
    _, response = _login(ldap_app, "nosuchperson")
    assert response.status_code == 200 and "Location" not in response.headers
    assert _external_users(ldap_app) == 0
    assert [e["target_id"] for e in _audit(ldap_app, "auth.login_failed")] == ["nosuchperson"]


def test_attack_ldap_account_without_a_mapped_group_is_refused_with_that_reason(ldap_app: Flask) -> None:
    _, response = _login(ldap_app, "canteen")  # the right password: the directory says yes
    assert response.status_code == 403
    assert _user(ldap_app, "canteen") is None and _external_users(ldap_app) == 0
    [refusal] = _audit(ldap_app, "auth.login_refused_no_role")
    assert refusal["target_id"] == "canteen" and refusal["source"] == "ldap"
    assert "none of your roles or groups" in str(refusal["reason"])


def test_attack_account_locked_in_the_directory_is_refused(ldap_app: Flask) -> None:
    for password in (PASSWORD, "Guessing-Another-1"):
        _, response = _login(ldap_app, "suspended", password)
        assert response.status_code == 403, password
        assert "LDAP" in response.get_data(as_text=True)  # "locked in the directory (LDAP)"
    assert _user(ldap_app, "suspended") is None and _external_users(ldap_app) == 0
    refusals = _audit(ldap_app, "auth.login_refused_directory_locked")
    assert [(e["target_id"], e["source"]) for e in refusals] == [("suspended", "ldap")] * 2


@pytest.mark.parametrize(
    "username",
    [
        "*",
        "*)(uid=*",
        "zhanglei)(|(uid=*",
        "*)(objectClass=*",
        "zhang*",
        "zhanglei,ou=people,dc=gov,dc=test",
        f"uid=zhanglei,{PEOPLE}",
        "zhanglei\\",
    ],
)
def test_attack_ldap_metacharacters_in_the_username_reach_no_account(ldap_app: Flask, username: str) -> None:
    """Filter and DN metacharacters with a real password: they never widen the bind to anyone."""
    _, response = _login(ldap_app, username)
    assert response.status_code == 200 and "Location" not in response.headers, username
    assert _external_users(ldap_app) == 0
    assert [e["reason"] for e in _audit(ldap_app, "auth.login_failed")] == ["wrong username or password"]


def test_a_dn_with_escaped_characters_logs_in_as_itself(ldap_app: Flask) -> None:
    _, response = _login(ldap_app, SPECIAL_UID)
    assert response.status_code == 302 and response.headers["Location"] == "/portal/"
    role, department, subject = _user(ldap_app, SPECIAL_UID) or ("", None, "")
    assert (role, department) == ("dept_staff", "prov-education")
    # The server's spelling of the DN (OpenLDAP writes the escaped "," and "+" as hex pairs).
    assert subject.lower() == SPECIAL_DN.replace("\\,", "\\2c").replace("\\+", "\\2b").lower()
    # Its neighbours with the special characters dropped or unescaped are nobody.
    for near in ("lee", "lee,wei", "lee\\,wei\\+ops"):
        _, response = _login(ldap_app, near)
        assert response.status_code == 200 and "Location" not in response.headers, near
    assert _external_users(ldap_app) == 1


def test_attack_a_case_variant_of_the_username_is_the_same_account(ldap_app: Flask) -> None:
    """The directory matches uid without case: ZHANGLEI is zhanglei, never a second cloudmgr user
    (which would escape a disable or a role change made to the first)."""
    _, first = _login(ldap_app, "zhanglei")
    _, second = _login(ldap_app, "ZhangLei")
    assert first.status_code == second.status_code == 302
    assert _external_users(ldap_app) == 1
    with ldap_app.extensions["cloudmgr"].db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count(User.id)).where(func.lower(User.username) == "zhanglei")) == 1
