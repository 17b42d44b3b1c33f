"""Administrators edit, reset and delete users: the services' rules (issue 18)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import utcnow
from cloudmgr.errors import PermissionDenied, ValidationFailed
from cloudmgr.identity import services as identity
from cloudmgr.identity.errors import PasswordRejected
from cloudmgr.identity.policy import check_password
from cloudmgr.keys import services as keys
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import LastAdministrator, OwnAccount, UnknownUser, UserHasHistory
from cloudmgr.organisation.models import Role, User
from cloudmgr.runtime import Runtime

PASSWORD = "Fresh-pass-2026"


def _actor(seeded: Runtime, username: str = "admin") -> Actor:
    with seeded.db.unit_of_work() as uow:
        return Actor.of(org.get_user_by_name(uow.session, username))


def _new_user(seeded: Runtime, username: str = "newbie", role: Role = Role.OPERATOR, dept: str | None = None) -> int:
    with seeded.db.unit_of_work() as uow:
        return org.create_user(
            uow.session, username=username, password=PASSWORD, role=role, department_key=dept, actor=Actor.system("t")
        ).id


def _events(seeded: Runtime, action: str) -> list[AuditEvent]:
    with seeded.db.unit_of_work() as uow:
        events = list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        uow.session.expunge_all()
        return events


def test_update_user_changes_name_email_role_and_department_audited(seeded: Runtime) -> None:
    admin = _actor(seeded)
    uid = _new_user(seeded, "zhaolei", Role.DEPT_STAFF, "prov-education")
    with seeded.db.unit_of_work() as uow:
        org.update_user(
            uow.session,
            admin,
            uid,
            display_name=" 赵磊 ",
            email="zhaolei@example.gov.cn",
            role=Role.DEPT_HEAD,
            department_key="prov-finance",
            reason="promoted",
        )
    with seeded.db.unit_of_work() as uow:
        user = org.get_user(uow.session, uid)
        assert user is not None and user.department is not None
        assert (user.display_name, user.email, user.role, user.department.key) == (
            "赵磊",
            "zhaolei@example.gov.cn",
            "dept_head",
            "prov-finance",
        )
        assert user.session_version == 1  # the role change ended their sessions
    [update] = _events(seeded, "user.update")
    assert update.actor == "admin" and update.target_id == str(uid)
    assert update.detail["before"] == {"display_name": "zhaolei", "email": None}
    assert update.detail["after"] == {"display_name": "赵磊", "email": "zhaolei@example.gov.cn"}
    [change] = _events(seeded, "user.role_change")
    assert change.detail["before"] == {"role": "dept_staff", "department": "prov-education"}
    assert change.detail["after"] == {"role": "dept_head", "department": "prov-finance"}
    assert change.reason == "promoted"


def test_update_user_name_only_keeps_sessions_and_needs_no_reason(seeded: Runtime) -> None:
    uid = _new_user(seeded)
    with seeded.db.unit_of_work() as uow:
        org.update_user(
            uow.session,
            _actor(seeded),
            uid,
            display_name="刘洋",
            email="",
            role=Role.OPERATOR,
            department_key=None,
            reason="",
        )
    with seeded.db.unit_of_work() as uow:
        user = org.get_user(uow.session, uid)
        assert user is not None and user.display_name == "刘洋" and user.session_version == 0
    assert not _events(seeded, "user.role_change")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"role": Role.DEPT_STAFF, "department_key": None}, "needs a department"),
        ({"role": Role.OPERATOR, "department_key": "prov-education"}, "does not belong to a department"),
        ({"email": "not-an-email"}, "email address"),
        ({"display_name": "x" * 129}, "at most 128"),
        ({"role": Role.FINANCE, "reason": ""}, "give a reason"),
    ],
)
def test_update_user_refuses_bad_input_and_changes_nothing(
    seeded: Runtime, fields: dict[str, object], message: str
) -> None:
    uid = _new_user(seeded)
    values: dict[str, object] = {
        "display_name": "刘洋",
        "email": None,
        "role": Role.OPERATOR,
        "department_key": None,
        "reason": "because",
    }
    values.update(fields)
    with seeded.db.unit_of_work() as uow, pytest.raises(ValidationFailed, match=message):
        org.update_user(uow.session, _actor(seeded), uid, **values)  # type: ignore[arg-type]
    with seeded.db.unit_of_work() as uow:
        user = org.get_user(uow.session, uid)
        assert user is not None and user.role == "operator" and user.display_name == "newbie"


def test_only_administrators_edit_reset_or_delete(seeded: Runtime) -> None:
    uid = _new_user(seeded)
    for username in ("zhangwei", "lina", "operator", "finance"):
        actor = _actor(seeded, username)
        with seeded.db.unit_of_work() as uow:
            with pytest.raises(PermissionDenied):
                org.update_user(
                    uow.session,
                    actor,
                    uid,
                    display_name="x",
                    email=None,
                    role=Role.OPERATOR,
                    department_key=None,
                    reason="x",
                )
            with pytest.raises(PermissionDenied):
                identity.reset_password(uow.session, actor, uid, new_password=None, reason="x")
            with pytest.raises(PermissionDenied):
                org.delete_user(uow.session, actor, uid, reason="x")


def test_reset_password_generates_a_temporary_one_and_ends_sessions_and_tokens(seeded: Runtime) -> None:
    uid = _new_user(seeded)
    with seeded.db.unit_of_work() as uow:
        user = org.get_user(uow.session, uid)
        assert user is not None
        token = org.issue_token(
            uow.session, user, name="t", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        ).token
    with seeded.db.unit_of_work() as uow:
        temporary = identity.reset_password(uow.session, _actor(seeded), uid, new_password=None, reason="forgot it")
    check_password(temporary, username="newbie")
    with seeded.db.unit_of_work() as uow:
        assert org.identity_for_token(uow.session, token) is None
        assert org.session_identity(uow.session, uid, 0) is None
        assert org.authenticate(uow.session, "newbie", temporary).id == uid
    [event] = _events(seeded, "user.password_reset")
    assert event.reason == "forgot it" and event.detail == {"username": "newbie", "generated": True}
    assert temporary not in str(event.detail) and PASSWORD not in str(event.detail)


def test_reset_password_to_a_typed_one_meets_the_policy(seeded: Runtime) -> None:
    uid = _new_user(seeded)
    with seeded.db.unit_of_work() as uow, pytest.raises(PasswordRejected):
        identity.reset_password(uow.session, _actor(seeded), uid, new_password="short", reason="x")
    with seeded.db.unit_of_work() as uow:
        assert identity.reset_password(
            uow.session, _actor(seeded), uid, new_password="Typed-pass-2026", reason="x"
        ) == ("Typed-pass-2026")
    with seeded.db.unit_of_work() as uow:
        assert org.authenticate(uow.session, "newbie", "Typed-pass-2026").id == uid
    [event] = _events(seeded, "user.password_reset")
    assert event.detail["generated"] is False and "Typed" not in str(event.detail)


def test_temporary_passwords_differ_and_meet_the_policy() -> None:
    made = {identity.temporary_password("admin") for _ in range(50)}
    assert len(made) == 50
    for password in made:
        check_password(password, username="admin")


def test_delete_a_user_without_history(seeded: Runtime) -> None:
    uid = _new_user(seeded)
    with seeded.db.unit_of_work() as uow:
        user = org.get_user(uow.session, uid)
        assert user is not None
        org.issue_token(uow.session, user, name="t", expires_at=None, actor=Actor.system("t"))
    with seeded.db.unit_of_work() as uow:
        assert org.delete_user(uow.session, _actor(seeded), uid, reason="left") == "newbie"
    with seeded.db.unit_of_work() as uow:
        assert org.get_user(uow.session, uid) is None
    [event] = _events(seeded, "user.delete")
    assert event.reason == "left" and event.detail["username"] == "newbie" and event.detail["role"] == "operator"
    assert "password" not in str(event.detail)
    with seeded.db.unit_of_work() as uow, pytest.raises(UnknownUser):
        org.delete_user(uow.session, _actor(seeded), uid, reason="again")


def test_a_user_with_history_is_refused_and_told_to_disable(seeded: Runtime) -> None:
    uid = _new_user(seeded, "keyholder", Role.DEPT_STAFF, "prov-education")
    with seeded.db.unit_of_work() as uow:
        keyholder = Actor.of(org.get_user_by_name(uow.session, "keyholder"))
        keys.add_key(uow.session, keyholder, "laptop", _PUBLIC_KEY)
    with seeded.db.unit_of_work() as uow, pytest.raises(UserHasHistory, match="disable the account"):
        org.delete_user(uow.session, _actor(seeded), uid, reason="left")
    with seeded.db.unit_of_work() as uow:
        assert org.get_user(uow.session, uid) is not None
        assert org.user_history(uow.session, uid)


def test_never_yourself_nor_the_last_active_administrator(seeded: Runtime) -> None:
    admin = _actor(seeded)
    with seeded.db.unit_of_work() as uow, pytest.raises(OwnAccount):
        org.delete_user(uow.session, admin, admin.user_id or 0, reason="x")
    system = Actor(username="system:cli", role=Role.ADMIN)
    with seeded.db.unit_of_work() as uow:
        with pytest.raises(LastAdministrator):
            org.delete_user(uow.session, system, admin.user_id or 0, reason="x")
        with pytest.raises(LastAdministrator):
            org.set_user_active(uow.session, system, admin.user_id or 0, active=False, reason="x")
        with pytest.raises(LastAdministrator):
            org.change_role(
                uow.session, system, admin.user_id or 0, role=Role.OPERATOR, department_key=None, reason="x"
            )
    # With a second active administrator, the first may go.
    second = _new_user(seeded, "admin2", Role.ADMIN)
    with seeded.db.unit_of_work() as uow:
        other = uow.session.get(User, second)
        assert other is not None
        org.set_user_active(uow.session, Actor.of(other), admin.user_id or 0, active=False, reason="x")
    with seeded.db.unit_of_work() as uow:
        user = org.get_user(uow.session, admin.user_id or 0)
        assert user is not None and not user.active


_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example"
