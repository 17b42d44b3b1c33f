"""Logging in with Keystone credentials against the lab's Keystone.

The accounts are made with plain openstacksdk (a unique domain, project, group and users)
and removed afterwards.  The login goes through the web form, as a person would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from flask import Flask
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.identity.models import ExternalIdentity, LoginThrottle
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import User
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE, lab_connection
from tests.web.helpers import csrf_token
from web import create_app

pytestmark = pytest.mark.lab

PASSWORD = "Lab-Keystone-2026"


@dataclass
class KeystoneAccounts:
    domain: str
    ops_group: str
    staff: str
    ops: str
    nobody: str
    staff_id: str


@pytest.fixture(scope="module")
def keystone_accounts(lab_clouds_yaml: Path) -> Iterator[KeystoneAccounts]:
    conn = lab_connection(lab_clouds_yaml)
    tag = uuid.uuid4().hex[:8]
    identity = conn.identity
    domain = identity.create_domain(name=f"cmgrtest-{tag}", description="cloudmgr login test")
    created: list[tuple[str, object]] = []
    try:
        project = identity.create_project(name=f"cmgrtest-{tag}", domain_id=domain.id)
        created.append(("project", project))
        group = identity.create_group(name=f"cmgrtest-ops-{tag}", domain_id=domain.id)
        created.append(("group", group))
        member = identity.find_role("member")
        assert member is not None, "the lab Keystone has no member role"
        users = {}
        for name in ("staff", "ops", "nobody"):
            user = identity.create_user(
                name=f"{name}-{tag}", password=PASSWORD, domain_id=domain.id, email=f"{name}-{tag}@lab.gov.cn"
            )
            created.append(("user", user))
            users[name] = user
        identity.assign_project_role_to_user(project, users["staff"], member)
        identity.add_user_to_group(users["ops"], group)
        yield KeystoneAccounts(
            domain=domain.name,
            ops_group=group.name,
            staff=f"staff-{tag}@{domain.name}",
            ops=f"ops-{tag}@{domain.name}",
            nobody=f"nobody-{tag}@{domain.name}",
            staff_id=users["staff"].id,
        )
    finally:
        for kind, resource in reversed(created):
            getattr(identity, f"delete_{kind}")(resource, ignore_missing=True)
        identity.update_domain(domain, is_enabled=False)
        identity.delete_domain(domain, ignore_missing=True)
        conn.close()


@pytest.fixture
def keystone_app(lab_runtime: Runtime, keystone_accounts: KeystoneAccounts, tmp_path: Path) -> Flask:
    mapping = tmp_path / "identity.yaml"
    mapping.write_text(
        yaml.safe_dump(
            {
                "keystone": {
                    "departments": {keystone_accounts.domain: "prov-education"},
                    "roles": {"member": "dept_staff"},
                    "groups": {keystone_accounts.ops_group: "operator"},
                }
            }
        ),
        encoding="utf-8",
    )
    settings = lab_runtime.settings.with_overrides(
        login_backends=("local", "keystone"), keystone_cloud="cloudmgr-lab", identity_mapping_file=mapping
    )
    rt = Runtime(settings=settings, db=lab_runtime.db, providers=lab_runtime.providers)
    clouds, departments = org.read_organisation(settings.clouds_file, settings.departments_file)
    with rt.db.unit_of_work() as uow:
        org.import_organisation(uow.session, clouds, departments, actor=Actor.system("test"))
    return create_app(runtime=rt)


def _login(app: Flask, username: str, password: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    return client, response


@ONE_DATABASE
def test_keystone_login_creates_then_updates_the_external_user(
    keystone_app: Flask, keystone_accounts: KeystoneAccounts, lab_clouds_yaml: Path
) -> None:
    db = keystone_app.extensions["cloudmgr"].db
    client, response = _login(keystone_app, keystone_accounts.staff, PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/portal/"
    assert client.get("/portal/").status_code == 200
    with db.unit_of_work() as uow:
        user = uow.session.scalar(select(User).where(User.username == keystone_accounts.staff))
        assert user is not None
        assert (user.role, user.department.key if user.department else None) == ("dept_staff", "prov-education")
        assert user.email and user.email.endswith("@lab.gov.cn")
        ext = uow.session.scalar(select(ExternalIdentity).where(ExternalIdentity.user_id == user.id))
        assert ext is not None and (ext.source, ext.subject) == ("keystone", keystone_accounts.staff_id)
        assert "member" in ext.claims["roles"]
        actions = set(uow.session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == str(user.id))))
        assert {"user.create_external", "auth.login"} <= actions
    # An external account has no local password to change.
    page = client.get("/account/password").get_data(as_text=True)
    assert "Keystone" in page and 'name="current"' not in page

    # Put the same account in the operators' group: its next login makes it an operator.
    conn = lab_connection(lab_clouds_yaml)
    try:
        group = conn.identity.find_group(keystone_accounts.ops_group, domain_id=None)
        user_ref = conn.identity.get_user(keystone_accounts.staff_id)
        conn.identity.add_user_to_group(user_ref, group)
        _, response = _login(keystone_app, keystone_accounts.staff, PASSWORD)
    finally:
        conn.identity.remove_user_from_group(user_ref, group)
        conn.close()
    assert response.status_code == 302 and response.headers["Location"] == "/ops/"
    with db.unit_of_work() as uow:
        user = uow.session.scalar(select(User).where(User.username == keystone_accounts.staff))
        assert user is not None and user.role == "operator" and user.department_id is None
        assert uow.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "user.update_external"))


@ONE_DATABASE
def test_keystone_groups_wrong_passwords_and_unmapped_accounts(
    keystone_app: Flask, keystone_accounts: KeystoneAccounts
) -> None:
    db = keystone_app.extensions["cloudmgr"].db
    _, response = _login(keystone_app, keystone_accounts.ops, PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/ops/"

    _, response = _login(keystone_app, keystone_accounts.staff, "Not-The-Password-1")
    assert response.status_code == 200
    assert "用户名或密码错误" in response.get_data(as_text=True)
    with db.unit_of_work() as uow:
        throttle = uow.session.scalar(select(LoginThrottle).where(LoginThrottle.username == keystone_accounts.staff))
        assert throttle is not None and throttle.failures == 1
        assert uow.session.scalar(select(User.id).where(User.username == keystone_accounts.staff)) is None

    _, response = _login(keystone_app, keystone_accounts.nobody, PASSWORD)
    assert response.status_code == 403
    assert "管理员" in response.get_data(as_text=True)
    with db.unit_of_work() as uow:
        assert uow.session.scalar(select(User.id).where(User.username == keystone_accounts.nobody)) is None

    # Local accounts still log in locally; a Keystone name that is a local account is never taken over.
    _, response = _login(keystone_app, "admin", "Wrong-Password-1")
    assert response.status_code == 200
