"""Log-in: disabled accounts, sessions that end with a password or role change, and the lock of
one client address across usernames (the services; the pages are in tests/web)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import utcnow
from cloudmgr.identity import services as identity
from cloudmgr.identity.errors import AccountDisabled, AccountLocked, AddressLocked
from cloudmgr.identity.mapping import Claims, parse_mapping
from cloudmgr.identity.models import LoginAddressThrottle
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import InvalidCredentials
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime

ADDRESS = "192.0.2.10"
MAPPING = parse_mapping(
    {"keystone": {"department_domain_pattern": "dept-{key}", "roles": {"member": "dept_staff", "ops": "operator"}}}
)


@dataclass
class FakeKeystone:
    """A backend that accepts one password and answers with the roles it is given."""

    roles: frozenset[str]
    source: str = "keystone"

    def authenticate(self, username: str, password: str) -> Claims | None:
        if password != "Keystone-Pass-1":
            return None
        return Claims(
            source="keystone",
            subject="ks-liu",
            username=username,
            display_name="Liu",
            domain="dept-prov-education",
            roles=self.roles,
        )


def _events(seeded: Runtime, action: str) -> list[AuditEvent]:
    with seeded.db.unit_of_work() as uow:
        return list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_attack_the_right_password_of_a_disabled_account_is_refused_and_says_so(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        admin = Actor.of(org.get_user_by_name(uow.session, "admin"))
        org.set_user_active(
            uow.session, admin, org.get_user_by_name(uow.session, "finance").id, active=False, reason="x"
        )
    with seeded.db.unit_of_work() as uow:
        with pytest.raises(AccountDisabled, match="disabled"):
            identity.login(uow.session, seeded.settings, "finance", "demo-finance-2026", remote_addr=ADDRESS)
        # A wrong password learns nothing more than for any account.
        with pytest.raises(InvalidCredentials):
            identity.login(uow.session, seeded.settings, "finance", "wrong-password-1", remote_addr=ADDRESS)
    assert len(_events(seeded, "auth.login_refused_disabled")) == 1


def test_attack_an_external_users_old_sessions_end_when_their_mapped_role_changes(seeded: Runtime) -> None:
    settings = seeded.settings.with_overrides(login_backends=("local", "keystone"))
    with seeded.db.unit_of_work() as uow:
        user = identity.login(
            uow.session,
            settings,
            "liu",
            "Keystone-Pass-1",
            backends=[FakeKeystone(frozenset({"ops"}))],
            mapping=MAPPING,
        )
        uid, first = user.id, user.session_version
        token = org.issue_token(uow.session, user, name="t", expires_at=None, actor=Actor.system("t")).token
    with seeded.db.unit_of_work() as uow:  # the same roles: nothing ends
        identity.login(
            uow.session,
            settings,
            "liu",
            "Keystone-Pass-1",
            backends=[FakeKeystone(frozenset({"ops"}))],
            mapping=MAPPING,
        )
        assert org.session_identity(uow.session, uid, first) is not None
    with seeded.db.unit_of_work() as uow:  # Keystone took the operator role away
        again = identity.login(
            uow.session,
            settings,
            "liu",
            "Keystone-Pass-1",
            backends=[FakeKeystone(frozenset({"member"}))],
            mapping=MAPPING,
        )
        latest = again.session_version
    with seeded.db.unit_of_work() as uow:
        assert org.session_identity(uow.session, uid, first) is None
        assert org.session_identity(uow.session, uid, latest) is not None  # the new log-in's session
        assert org.identity_for_token(uow.session, token) is None


def test_own_password_change_returns_the_version_the_session_keeps(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, "zhangwei")
        version = identity.change_own_password(uow.session, user, "demo-staff-2026", "Brand-New-2026")
        uid = user.id
    with seeded.db.unit_of_work() as uow:
        assert org.session_identity(uow.session, uid, version) is not None
        assert org.session_identity(uow.session, uid, version - 1) is None


def _fail(seeded: Runtime, username: str, address: str | None = ADDRESS) -> Exception:
    with seeded.db.unit_of_work() as uow:
        try:
            identity.login(uow.session, seeded.settings, username, "Wrong-Guess-1", remote_addr=address)
        except (InvalidCredentials, AccountLocked) as exc:
            return exc  # the unit of work commits: failures are kept, as the login page keeps them
    raise AssertionError("the log-in succeeded")


def test_attack_an_address_is_locked_across_usernames_and_a_success_does_not_reset_it(seeded: Runtime) -> None:
    settings = seeded.settings.with_overrides(login_max_failures_per_address=4)
    seeded = Runtime(settings=settings, db=seeded.db, providers=seeded.providers)
    for name in ("a1", "a2"):
        assert isinstance(_fail(seeded, name), InvalidCredentials)
    with seeded.db.unit_of_work() as uow:  # the attacker's own account logs in in between
        identity.login(uow.session, settings, "zhangwei", "demo-staff-2026", remote_addr=ADDRESS)
    assert isinstance(_fail(seeded, "a3"), InvalidCredentials)
    assert isinstance(_fail(seeded, "a4"), AddressLocked)
    with seeded.db.unit_of_work() as uow, pytest.raises(AddressLocked):
        identity.login(uow.session, settings, "zhangwei", "demo-staff-2026", remote_addr=ADDRESS)
    # No address (the command line): never throttled by address.
    for name in ("b1", "b2", "b3", "b4", "b5"):
        _fail(seeded, name, address=None)
    with seeded.db.unit_of_work() as uow:
        assert uow.session.scalar(select(LoginAddressThrottle.remote_addr)) == ADDRESS
        assert identity.unlock_address(uow.session, ADDRESS, actor=Actor("cli:root", Role.ADMIN))
        assert not identity.unlock_address(uow.session, ADDRESS, actor=Actor("cli:root", Role.ADMIN))
    with seeded.db.unit_of_work() as uow:
        identity.login(uow.session, settings, "zhangwei", "demo-staff-2026", remote_addr=ADDRESS)


def test_address_failures_count_within_the_lockout_window(seeded: Runtime) -> None:
    settings = seeded.settings.with_overrides(login_max_failures_per_address=3)
    seeded = Runtime(settings=settings, db=seeded.db, providers=seeded.providers)
    _fail(seeded, "c1")
    _fail(seeded, "c2")
    with seeded.db.unit_of_work() as uow:  # the window (the lock-out time, 15 minutes) passes
        uow.session.execute(update(LoginAddressThrottle).values(first_failure_at=utcnow() - timedelta(minutes=16)))
    assert isinstance(_fail(seeded, "c3"), InvalidCredentials)  # counted afresh: 1
    assert isinstance(_fail(seeded, "c4"), InvalidCredentials)
    assert isinstance(_fail(seeded, "c5"), AddressLocked)
    with seeded.db.unit_of_work() as uow:  # the lock runs out
        uow.session.execute(update(LoginAddressThrottle).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert isinstance(_fail(seeded, "c6"), InvalidCredentials)
