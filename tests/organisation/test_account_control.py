"""Ending sessions, disabling users, revoking tokens and changing roles: the services' rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import utcnow
from cloudmgr.errors import PermissionDenied, ValidationFailed
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import OwnAccount, UnknownToken, UnknownUser
from cloudmgr.organisation.models import Role, User
from cloudmgr.runtime import Runtime


def _actor(seeded: Runtime, username: str) -> Actor:
    with seeded.db.unit_of_work() as uow:
        return Actor.of(org.get_user_by_name(uow.session, username))


def _issue(seeded: Runtime, username: str) -> str:
    with seeded.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        return org.issue_token(
            uow.session, user, name="t", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        ).token


def _uid(seeded: Runtime, username: str) -> int:
    with seeded.db.unit_of_work() as uow:
        return org.get_user_by_name(uow.session, username).id


def test_end_sessions_bumps_the_version_and_revokes_tokens(seeded: Runtime) -> None:
    token = _issue(seeded, "operator")
    uid = _uid(seeded, "operator")
    with seeded.db.unit_of_work() as uow:
        before = org.session_identity(uow.session, uid, 0)
        assert before is not None and before.session_version == 0
        assert (
            org.end_sessions(uow.session, uid, revoke_tokens=False, reason="logout", actor=Actor.system("operator"))
            == 1
        )
    with seeded.db.unit_of_work() as uow:
        assert org.session_identity(uow.session, uid, 0) is None  # the old session has ended
        assert org.session_identity(uow.session, uid, 1) is not None
        assert org.identity_for_token(uow.session, token) is not None  # a log-out leaves tokens
        assert (
            org.end_sessions(uow.session, uid, revoke_tokens=True, reason="password_change", actor=Actor.system("x"))
            == 2
        )
    with seeded.db.unit_of_work() as uow:
        assert org.identity_for_token(uow.session, token) is None
        ended = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.sessions_ended")).all()
        assert [(e.detail["reason"], e.detail["tokens_revoked"]) for e in ended] == [
            ("logout", 0),
            ("password_change", 1),
        ]


@pytest.mark.parametrize("version", [None, "0", True, 0.0, [0]])
def test_a_session_version_must_be_the_integer_stored(seeded: Runtime, version: object) -> None:
    uid = _uid(seeded, "admin")
    with seeded.db.unit_of_work() as uow:
        assert org.session_identity(uow.session, uid, version) is None


def test_attack_only_administrators_disable_enable_or_change_roles(seeded: Runtime) -> None:
    victim = _uid(seeded, "admin")
    for username in ("zhangwei", "lina", "operator", "finance"):
        actor = _actor(seeded, username)
        with seeded.db.unit_of_work() as uow:
            with pytest.raises(PermissionDenied, match="only administrators"):
                org.set_user_active(uow.session, actor, victim, active=False, reason="x")
            with pytest.raises(PermissionDenied, match="only administrators"):
                org.change_role(uow.session, actor, victim, role=Role.FINANCE, department_key=None, reason="x")
            with pytest.raises(PermissionDenied, match="only administrators"):
                org.revoke_tokens(uow.session, actor, victim, reason="x")
            with pytest.raises(PermissionDenied, match="only administrators"):
                org.list_tokens(uow.session, actor, victim)
    with seeded.db.unit_of_work() as uow:
        assert uow.session.get(User, victim).active  # type: ignore[union-attr]


def test_an_administrator_cannot_disable_themselves_or_change_their_own_role(seeded: Runtime) -> None:
    admin = _actor(seeded, "admin")
    finance = _uid(seeded, "finance")
    assert admin.user_id is not None
    with seeded.db.unit_of_work() as uow:
        with pytest.raises(OwnAccount, match="cannot disable your own account"):
            org.set_user_active(uow.session, admin, admin.user_id, active=False, reason="x")
        with pytest.raises(OwnAccount, match="cannot change your own role"):
            org.change_role(uow.session, admin, admin.user_id, role=Role.OPERATOR, department_key=None, reason="x")
        with pytest.raises(UnknownUser):
            org.set_user_active(uow.session, admin, 987654, active=False, reason="x")
        with pytest.raises(ValidationFailed, match="give a reason"):
            org.set_user_active(uow.session, admin, finance, active=False, reason=" \t")
        with pytest.raises(ValidationFailed, match="at most 500"):
            org.set_user_active(uow.session, admin, finance, active=False, reason="x" * 501)


def test_disable_is_audited_revokes_tokens_and_enable_keeps_them_revoked(seeded: Runtime) -> None:
    admin = _actor(seeded, "admin")
    token = _issue(seeded, "finance")
    uid = _uid(seeded, "finance")
    with seeded.db.unit_of_work() as uow:
        org.set_user_active(uow.session, admin, uid, active=False, reason="left")
        org.set_user_active(uow.session, admin, uid, active=False, reason="again")  # asked twice: nothing more
    with seeded.db.unit_of_work() as uow:
        assert org.identity_for_token(uow.session, token) is None
        assert org.active_user_identity(uow.session, uid) is None
        org.set_user_active(uow.session, admin, uid, active=True, reason="back")
    with seeded.db.unit_of_work() as uow:
        assert org.identity_for_token(uow.session, token) is None
        events = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action.in_(["user.disable", "user.enable"])).order_by(AuditEvent.id)
        ).all()
        assert [(e.action, e.actor, e.target_id, e.reason) for e in events] == [
            ("user.disable", "admin", str(uid), "left"),
            ("user.enable", "admin", str(uid), "back"),
        ]


def test_role_and_department_changes_end_sessions(seeded: Runtime) -> None:
    admin = _actor(seeded, "admin")
    token = _issue(seeded, "lina")
    uid = _uid(seeded, "lina")
    with seeded.db.unit_of_work() as uow:
        with pytest.raises(ValidationFailed, match="needs a department"):
            org.change_role(uow.session, admin, uid, role=Role.DEPT_STAFF, department_key=None, reason="x")
        with pytest.raises(ValidationFailed, match="does not belong"):
            org.change_role(uow.session, admin, uid, role=Role.FINANCE, department_key="prov-education", reason="x")
        # The same role and department: nothing changes, nothing ends.
        org.change_role(uow.session, admin, uid, role=Role.DEPT_HEAD, department_key="prov-education", reason="x")
        assert org.session_identity(uow.session, uid, 0) is not None
        org.change_role(uow.session, admin, uid, role=Role.DEPT_HEAD, department_key="prov-health", reason="moved")
    with seeded.db.unit_of_work() as uow:
        assert org.session_identity(uow.session, uid, 0) is None
        assert org.identity_for_token(uow.session, token) is None
        identity = org.session_identity(uow.session, uid, 1)
        assert identity is not None and identity.department is not None and identity.department.key == "prov-health"


def test_a_user_may_revoke_their_own_tokens_but_not_see_others(seeded: Runtime) -> None:
    own, other = _issue(seeded, "zhangwei"), _issue(seeded, "operator")
    actor = _actor(seeded, "zhangwei")
    assert actor.user_id is not None
    with seeded.db.unit_of_work() as uow:
        tokens = org.list_tokens(uow.session, actor, actor.user_id)
        assert [t.prefix for t in tokens] == [own[:12]]
        other_id = uow.session.scalar(select(org.ApiToken.id).where(org.ApiToken.prefix == other[:12]))
        assert other_id is not None
        with pytest.raises(UnknownToken):  # the other's token id, under one's own name
            org.revoke_tokens(uow.session, actor, actor.user_id, reason="x", token_id=other_id)
        assert org.revoke_tokens(uow.session, actor, actor.user_id, reason="lost laptop", token_id=tokens[0].id) == 1
        assert org.revoke_tokens(uow.session, actor, actor.user_id, reason="again", token_id=tokens[0].id) == 0
    with seeded.db.unit_of_work() as uow:
        assert org.identity_for_token(uow.session, own) is None
        assert org.identity_for_token(uow.session, other) is not None


def test_may_disable_is_what_set_user_active_allows(seeded: Runtime) -> None:
    """The admin page offers "disable" exactly when the service would do it: an administrator, not on
    their own account."""
    admin, operator = _actor(seeded, "admin"), _actor(seeded, "operator")
    with seeded.db.unit_of_work() as uow:
        own = org.get_user_by_name(uow.session, "admin")
        other = org.get_user_by_name(uow.session, "lina")
        assert org.may_disable(admin, other)
        assert not org.may_disable(admin, own)
        assert not org.may_disable(operator, other)
    with pytest.raises(OwnAccount), seeded.db.unit_of_work() as uow:
        org.set_user_active(uow.session, admin, own.id, active=False, reason="me")
    with pytest.raises(PermissionDenied), seeded.db.unit_of_work() as uow:
        org.set_user_active(uow.session, operator, other.id, active=False, reason="not mine")
