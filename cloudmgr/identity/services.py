"""Logging in (every backend), lock-out, external users, and password changes."""

from __future__ import annotations

import functools
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from cloudmgr.audit import services as audit
from cloudmgr.config import Settings
from cloudmgr.db import utcnow
from cloudmgr.errors import PermissionDenied, ValidationFailed
from cloudmgr.identity.errors import (
    AccountDisabled,
    AccountLocked,
    AddressLocked,
    DirectoryAccountLocked,
    ExternalAccount,
    NoMappedRole,
    PasswordRejected,
    PasswordUnchanged,
)
from cloudmgr.identity.mapping import Claims, IdentityMapping, load_mapping, resolve
from cloudmgr.identity.models import ExternalIdentity, LoginAddressThrottle, LoginThrottle
from cloudmgr.identity.policy import check_password
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import InvalidCredentials, OwnAccount, UnknownUser
from cloudmgr.organisation.models import Department, Role, User

# Stored as the password hash of external users: never a valid hash, so no local login.
EXTERNAL_PASSWORD_HASH = "!external"  # noqa: S105  (not a password: a marker no hash matches)


@functools.cache
def _unknown_user_hash() -> str:
    """A real hash of the configured method, checked for unknown names: same time, no leak."""
    return _hash("unknown-user-placeholder")


def _hash(password: str) -> str:
    # Through the organisation module: one hashing method for every password (tests cheapen it there).
    hashed: str = org.generate_password_hash(password)  # type: ignore[attr-defined]
    return hashed


class Backend(Protocol):
    source: str

    def authenticate(self, username: str, password: str) -> Claims | None: ...


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    # Failures from one client address, across usernames, within ``lockout`` before it is refused.
    max_failures_per_address: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginPolicy:
        return cls(
            max(1, settings.login_max_failures),
            timedelta(minutes=max(1, settings.login_lockout_minutes)),
            max(1, settings.login_max_failures_per_address),
        )


def external_backends(settings: Settings) -> list[Backend]:
    """The configured external backends, in the order of ``CLOUDMGR_LOGIN_BACKENDS``."""
    backends: list[Backend] = []
    for name in settings.login_backends:
        if name == "keystone":
            from cloudmgr.identity.keystone import KeystoneBackend, keystone_config

            backends.append(KeystoneBackend(keystone_config(settings)))
        elif name == "ldap":
            from cloudmgr.identity.ldap import LdapBackend, ldap_config

            backends.append(LdapBackend(ldap_config(settings)))
    return backends


def _throttle_key(username: str) -> str:
    return username.strip().lower()[:128]


def _throttle(session: Session, username: str) -> LoginThrottle | None:
    return session.scalar(select(LoginThrottle).where(LoginThrottle.username == _throttle_key(username)))


def locked_until(session: Session, username: str, *, now: datetime | None = None) -> datetime | None:
    row = _throttle(session, username)
    now = now or utcnow()
    if row is not None and row.locked_until is not None and row.locked_until > now:
        return row.locked_until
    return None


def _record_failure(
    session: Session, username: str, policy: LoginPolicy, *, remote_addr: str | None, reason: str
) -> datetime | None:
    """Count a failed log-in; returns the lock's end when this failure locks the username."""
    now = utcnow()
    key = _throttle_key(username)
    row = _throttle(session, username)
    if row is None:
        row = LoginThrottle(username=key, failures=0)
        session.add(row)
    if row.locked_until is not None and row.locked_until <= now:
        row.failures, row.locked_until, row.first_failure_at = 0, None, None  # an old lock ran out: start afresh
    row.failures += 1
    row.first_failure_at = row.first_failure_at or now
    row.last_failure_at = now
    actor = key or "anonymous"
    audit.record(
        session,
        actor=actor,
        action="auth.login_failed",
        target_type="user",
        target_id=key,
        detail={"remote_addr": remote_addr, "reason": reason, "failures": row.failures},
    )
    if row.failures >= policy.max_failures:
        row.locked_until = now + policy.lockout
        audit.record(
            session,
            actor=actor,
            action="auth.locked",
            target_type="user",
            target_id=key,
            detail={"remote_addr": remote_addr, "until": row.locked_until.isoformat(), "failures": row.failures},
        )
        session.flush()
        return row.locked_until
    session.flush()
    return None


def _address_key(remote_addr: str | None) -> str | None:
    key = (remote_addr or "").strip()[:64]
    return key or None


def _address_throttle(session: Session, key: str) -> LoginAddressThrottle | None:
    return session.scalar(select(LoginAddressThrottle).where(LoginAddressThrottle.remote_addr == key))


def address_locked_until(session: Session, remote_addr: str | None, *, now: datetime | None = None) -> datetime | None:
    key = _address_key(remote_addr)
    row = _address_throttle(session, key) if key else None
    now = now or utcnow()
    if row is not None and row.locked_until is not None and row.locked_until > now:
        return row.locked_until
    return None


def _record_address_failure(
    session: Session, remote_addr: str | None, policy: LoginPolicy, *, username: str
) -> datetime | None:
    """Count a failed log-in against the client address (whatever username it tried); returns
    the lock's end when this failure locks the address.  Failures count within a window of the
    lock-out time: a success does not reset them (an attacker holding one account could, by
    logging in between guesses)."""
    key = _address_key(remote_addr)
    if key is None:
        return None  # not a web log-in: nothing to count by
    now = utcnow()
    row = _address_throttle(session, key)
    if row is None:
        row = LoginAddressThrottle(remote_addr=key, failures=0)
        session.add(row)
    lock_over = row.locked_until is not None and row.locked_until <= now
    window_over = row.first_failure_at is not None and now - row.first_failure_at > policy.lockout
    if lock_over or (row.locked_until is None and window_over):
        row.failures, row.locked_until, row.first_failure_at = 0, None, None
    row.failures += 1
    row.first_failure_at = row.first_failure_at or now
    row.last_failure_at = now
    if row.failures >= policy.max_failures_per_address and row.locked_until is None:
        row.locked_until = now + policy.lockout
        audit.record(
            session,
            actor=_throttle_key(username) or "anonymous",
            action="auth.address_locked",
            target_type="address",
            target_id=key,
            detail={"remote_addr": key, "until": row.locked_until.isoformat(), "failures": row.failures},
        )
        session.flush()
        return row.locked_until
    session.flush()
    return None


def unlock_address(session: Session, remote_addr: str, *, actor: Actor) -> bool:
    """Lift an address's lock-out by hand (``cloudmgr users unlock --address``); True when there was one."""
    key = _address_key(remote_addr)
    row = _address_throttle(session, key) if key else None
    if row is None:
        return False
    session.delete(row)
    audit.record(
        session, actor=actor.username, action="auth.unlock_address", target_type="address", target_id=row.remote_addr
    )
    return True


def _clear_failures(session: Session, username: str) -> None:
    row = _throttle(session, username)
    if row is not None:
        session.delete(row)


def unlock(session: Session, username: str, *, actor: Actor) -> bool:
    """Lift a lock-out by hand (``cloudmgr users unlock``); True when there was one."""
    row = _throttle(session, username)
    if row is None:
        return False
    session.delete(row)
    audit.record(
        session, actor=actor.username, action="auth.unlock", target_type="user", target_id=_throttle_key(username)
    )
    return True


def _locked_error(until: datetime) -> AccountLocked:
    return AccountLocked(f"too many failed log-ins: this account is locked until {until:%Y-%m-%d %H:%M} UTC", until)


def _address_locked_error(until: datetime) -> AddressLocked:
    return AddressLocked(
        f"too many failed log-ins from this address: it is refused until {until:%Y-%m-%d %H:%M} UTC", until
    )


def is_external(session: Session, user_id: int) -> bool:
    return session.scalar(select(ExternalIdentity.id).where(ExternalIdentity.user_id == user_id)) is not None


def external_user_ids(session: Session, user_ids: Sequence[int] | None = None) -> dict[int, str]:
    """user id → source ("keystone"/"ldap") of the external users (all, or among ``user_ids``)."""
    query = select(ExternalIdentity.user_id, ExternalIdentity.source)
    if user_ids is not None:
        query = query.where(ExternalIdentity.user_id.in_(list(user_ids)))
    return {uid: source for uid, source in session.execute(query)}


def login(
    session: Session,
    settings: Settings,
    username: str,
    password: str,
    *,
    remote_addr: str | None = None,
    backends: Sequence[Backend] | None = None,
    mapping: IdentityMapping | None = None,
) -> User:
    """Check ``username``/``password`` against the local accounts, then the external backends.

    Raises :class:`AddressLocked` (too many failures from ``remote_addr``, whatever the
    username), :class:`AccountLocked` (locked, whatever the password), ``InvalidCredentials``,
    :class:`AccountDisabled` (the right password of a disabled account), ``NoMappedRole``
    (external account without a cloudmgr role) or ``IdentityBackendUnavailable``.  Failures
    are counted and audited in ``session``: the caller commits it even though the login failed.
    """
    policy = LoginPolicy.from_settings(settings)
    username = username.strip()
    address_until = address_locked_until(session, remote_addr)
    if address_until is not None:
        audit.record(
            session,
            actor=_throttle_key(username) or "anonymous",
            action="auth.login_refused_address_locked",
            target_type="address",
            target_id=_address_key(remote_addr) or "",
            detail={
                "remote_addr": remote_addr,
                "username": _throttle_key(username),
                "until": address_until.isoformat(),
            },
        )
        raise _address_locked_error(address_until)
    until = locked_until(session, username)
    if until is not None:
        audit.record(
            session,
            actor=_throttle_key(username) or "anonymous",
            action="auth.login_refused_locked",
            target_type="user",
            target_id=_throttle_key(username),
            detail={"remote_addr": remote_addr, "until": until.isoformat()},
        )
        raise _locked_error(until)

    user = session.scalar(select(User).where(User.username == username))
    external = user is not None and is_external(session, user.id)
    if user is not None and not external:
        ok = check_password_hash(user.password_hash, password)
        return _finish(session, user, ok, username, policy, remote_addr)
    if user is None and "local" in settings.login_backends:
        check_password_hash(_unknown_user_hash(), password)  # same time as a known user: names do not leak
    if backends is None:
        backends = external_backends(settings)
    for backend in backends:
        try:
            claims = backend.authenticate(username, password)
        except DirectoryAccountLocked:
            # Not counted as a failure: the directory refuses every password of it, so there is
            # nothing to guess; audited so the refusal is on record here too.
            _audit_refusal(session, username, "auth.login_refused_directory_locked", remote_addr, backend.source)
            raise
        if claims is None:
            continue
        try:
            found = provision_external_user(session, claims, mapping or load_mapping(settings.identity_mapping_file))
        except NoMappedRole as exc:
            _audit_refusal(session, username, "auth.login_refused_no_role", remote_addr, backend.source, exc.message)
            raise
        return _finish(session, found, True, username, policy, remote_addr)
    return _finish(session, None, False, username, policy, remote_addr)


def _audit_refusal(
    session: Session, typed: str, action: str, remote_addr: str | None, source: str, reason: str | None = None
) -> None:
    """An external account that authenticated (or that its directory locked) and is still refused."""
    detail: dict[str, str | None] = {"remote_addr": remote_addr, "source": source}
    if reason:
        detail["reason"] = reason
    key = _throttle_key(typed)
    audit.record(session, actor=key or "anonymous", action=action, target_type="user", target_id=key, detail=detail)


def _finish(
    session: Session, user: User | None, ok: bool, typed: str, policy: LoginPolicy, remote_addr: str | None
) -> User:
    if not ok or user is None:
        until = _record_failure(session, typed, policy, remote_addr=remote_addr, reason="wrong username or password")
        address_until = _record_address_failure(session, remote_addr, policy, username=typed)
        if address_until is not None:
            raise _address_locked_error(address_until)
        if until is not None:
            raise _locked_error(until)
        raise InvalidCredentials("wrong username or password")
    if not user.active:
        # The right password of a disabled account: say so (only the password's holder learns it).
        audit.record(
            session,
            actor=user.username,
            action="auth.login_refused_disabled",
            target_type="user",
            target_id=user.id,
            detail={"remote_addr": remote_addr},
        )
        raise AccountDisabled("this account is disabled: ask an administrator")
    _clear_failures(session, typed)
    user.last_login_at = utcnow()
    audit.record(
        session,
        actor=user.username,
        action="auth.login",
        target_type="user",
        target_id=user.id,
        detail={"remote_addr": remote_addr},
    )
    return user


def provision_external_user(session: Session, claims: Claims, mapping: IdentityMapping) -> User:
    """Create or update the local record of an external account from its mapped role and department."""
    mapped = resolve(mapping, claims)
    department: Department | None = None
    if mapped.department_key:
        department = org.get_department(session, mapped.department_key)
    identity = session.scalar(
        select(ExternalIdentity).where(
            ExternalIdentity.source == claims.source, ExternalIdentity.subject == claims.subject
        )
    )
    now = utcnow()
    claim_detail = {"roles": sorted(claims.roles), "groups": sorted(claims.groups)}
    if identity is None:
        if session.scalar(select(User.id).where(User.username == claims.username)) is not None:
            # A local account of that name exists: never take it over.
            raise InvalidCredentials(f"the username {claims.username!r} belongs to a local account")
        user = User(
            username=claims.username[:64],
            display_name=claims.display_name[:128],
            email=(claims.email or None),
            password_hash=EXTERNAL_PASSWORD_HASH,
            role=mapped.role.value,
            department=department,
        )
        session.add(user)
        session.flush()
        session.add(
            ExternalIdentity(
                user_id=user.id,
                source=claims.source,
                subject=claims.subject,
                domain=claims.domain,
                claims=claim_detail,
                first_login_at=now,
                last_login_at=now,
            )
        )
        audit.record(
            session,
            actor=f"{claims.source}:{claims.username}",
            action="user.create_external",
            target_type="user",
            target_id=user.id,
            detail={"source": claims.source, "role": mapped.role.value, "department": mapped.department_key},
        )
        session.flush()
        return user
    user = identity.user
    changes: dict[str, object] = {}
    if user.role != mapped.role.value or user.department_id != (department.id if department else None):
        changes = {"role": [user.role, mapped.role.value], "department": mapped.department_key}
        # Both at once: the row's check ties department to role.
        user.role, user.department = mapped.role.value, department
    if claims.email and user.email != claims.email:
        user.email = claims.email
    identity.claims, identity.domain, identity.last_login_at = claim_detail, claims.domain, now
    if changes:
        audit.record(
            session,
            actor=f"{claims.source}:{claims.username}",
            action="user.update_external",
            target_type="user",
            target_id=user.id,
            detail=changes,
        )
        session.flush()
        # What the other sessions and tokens were granted is gone: end them (this log-in then
        # stores the new version).
        # The directory acts (audited under its name, as the changes above are).
        directory = Actor(username=f"{claims.source}:{claims.username}", role=Role(user.role), user_id=user.id)
        org.end_sessions(session, user.id, revoke_tokens=True, reason="role_change", actor=directory)
    session.flush()
    return user


def set_password(
    session: Session,
    user: User,
    new_password: str,
    *,
    actor: Actor,
    action: str = "user.password_change",
    reason: str | None = None,
    detail: dict[str, object] | None = None,
    change_required: bool = False,
) -> int:
    """Give a local account a new password (policy enforced; audited).  Every session of the
    user ends and every API token is revoked: whoever held the old password may hold those.
    ``change_required``: the user must choose another at the next log-in (an administrator
    set this one, so it is not the user's secret alone); a password of their own clears it.
    Returns the new session version (the session of a user changing their own keeps it)."""
    if is_external(session, user.id):
        raise ExternalAccount("this account logs in through Keystone or LDAP: change its password there")
    check_password(new_password, username=user.username)
    user.password_hash = _hash(new_password)
    user.password_change_required = change_required
    _clear_failures(session, user.username)
    audit.record(
        session,
        actor=actor.username,
        action=action,
        target_type="user",
        target_id=user.id,
        reason=reason,
        detail=detail,
    )
    session.flush()
    return org.end_sessions(session, user.id, revoke_tokens=True, reason="password_change", actor=actor)


TEMPORARY_PASSWORD_LENGTH = 14
_TEMPORARY_ALPHABET = string.ascii_letters + string.digits + "-_"


def temporary_password(username: str = "") -> str:
    """A random password that meets the policy (shown once to the administrator who reset it)."""
    while True:
        candidate = "".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(TEMPORARY_PASSWORD_LENGTH))
        try:
            check_password(candidate, username=username)
        except PasswordRejected:
            continue
        return candidate


def reset_password(session: Session, actor: Actor, user_id: int, *, new_password: str | None, reason: str) -> str:
    """An administrator gives a local account a new password: the one typed (policy enforced) or,
    without one, a random temporary one.  Like a change, it ends the user's sessions and revokes
    their API tokens; the user must choose a new password at the next log-in before any other
    page (API tokens issued afterwards are not held back by it).  Audited (``user.password_reset``,
    never the password).  Returns the new
    password, for the administrator to pass on (shown once, never stored in clear)."""
    if actor.role is not Role.ADMIN:
        raise PermissionDenied("only administrators may reset passwords")
    why = (reason or "").strip()
    if not why:
        raise ValidationFailed("give a reason (it is kept in the audit log)")
    if len(why) > org.MAX_REASON_LENGTH:
        raise ValidationFailed(f"the reason has at most {org.MAX_REASON_LENGTH} characters")
    user = session.get(User, user_id)
    if user is None:
        raise UnknownUser(f"no user with id {user_id}")
    if actor.user_id == user.id:
        raise OwnAccount("change your own password with the password form, which asks for the current one")
    generated = not new_password
    password = temporary_password(user.username) if generated else str(new_password)
    set_password(
        session,
        user,
        password,
        actor=actor,
        action="user.password_reset",
        reason=why,
        detail={"username": user.username, "generated": generated},
        change_required=True,
    )
    return password


def change_own_password(session: Session, user: User, current: str, new_password: str) -> int:
    """The user changes their own password: the current one first.  Returns the new session
    version: the session that changed it goes on under it, every other one has ended."""
    if not check_password_hash(user.password_hash, current):
        raise InvalidCredentials("the current password is wrong")
    if new_password == current:
        raise PasswordUnchanged("choose a password other than the current one")
    return set_password(session, user, new_password, actor=Actor.of(user))


def logout(session: Session, user_id: int, *, actor: Actor) -> None:
    """Log the user out everywhere: every web session of theirs ends (a copied cookie too).
    API tokens stay: they are credentials issued on purpose, with their own lifetime, and are
    revoked by a password change, a disable or ``revoke_tokens``."""
    audit.record(session, actor=actor.username, action="auth.logout", target_type="user", target_id=user_id)
    org.end_sessions(session, user_id, revoke_tokens=False, reason="logout", actor=actor)
