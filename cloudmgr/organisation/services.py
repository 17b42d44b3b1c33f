"""Services of the organisation: importing the files, users and tokens, cloud sync.

Reading the clouds and departments, and what an actor sees of them, lives in
:mod:`~cloudmgr.organisation.reading`; its functions are re-exported here for the web, the CLI and the jobs.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Table, bindparam, func, select, update
from sqlalchemy.orm import Session, joinedload, selectinload
from werkzeug.security import check_password_hash, generate_password_hash

from cloudmgr.audit import services as audit
from cloudmgr.db import utcnow
from cloudmgr.errors import PermissionDenied, ValidationFailed
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import (
    InvalidCredentials,
    LastAdministrator,
    OwnAccount,
    UnknownToken,
    UnknownUser,
    UserHasHistory,
    UsernameTaken,
)
from cloudmgr.organisation.files import CloudEntry, DepartmentEntry, read_clouds_file, read_departments_file
from cloudmgr.organisation.models import (
    ApiToken,
    Cloud,
    Department,
    DepartmentCloud,
    NetworkZone,
    Role,
    User,
)
from cloudmgr.organisation.reachability import CloudStatus as CloudStatus
from cloudmgr.organisation.reachability import cloud_statuses as cloud_statuses
from cloudmgr.organisation.reachability import department_cloud_statuses as department_cloud_statuses
from cloudmgr.organisation.reachability import unreachable_clouds as unreachable_clouds
from cloudmgr.organisation.reading import (
    NamedChoice as NamedChoice,
)
from cloudmgr.organisation.reading import UserFilter as UserFilter
from cloudmgr.organisation.reading import (
    cloud_choices as cloud_choices,
)
from cloudmgr.organisation.reading import (
    clouds_of_department as clouds_of_department,
)
from cloudmgr.organisation.reading import (
    department_choices as department_choices,
)
from cloudmgr.organisation.reading import (
    department_cloud_choices as department_cloud_choices,
)
from cloudmgr.organisation.reading import (
    get_department as get_department,
)
from cloudmgr.organisation.reading import (
    get_visible_department as get_visible_department,
)
from cloudmgr.organisation.reading import (
    list_clouds as list_clouds,
)
from cloudmgr.organisation.reading import (
    list_departments as list_departments,
)
from cloudmgr.organisation.reading import (
    project_owners as project_owners,
)
from cloudmgr.organisation.reading import users_page as users_page
from cloudmgr.organisation.reading import (
    visible_cloud_id as visible_cloud_id,
)
from cloudmgr.organisation.reading import (
    visible_clouds as visible_clouds,
)
from cloudmgr.organisation.reading import (
    visible_departments as visible_departments,
)

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


# --- the organisation files -------------------------------------------------------


@dataclass
class ImportSummary:
    clouds_added: int = 0
    clouds_updated: int = 0
    departments_added: int = 0
    departments_updated: int = 0
    links_added: int = 0


def read_organisation(clouds_file: Path, departments_file: Path) -> tuple[list[CloudEntry], list[DepartmentEntry]]:
    """Validate both files completely before anything is written."""
    clouds = read_clouds_file(clouds_file)
    departments = read_departments_file(departments_file, [c.key for c in clouds])
    return clouds, departments


def import_organisation(
    session: Session, clouds: Sequence[CloudEntry], departments: Sequence[DepartmentEntry], *, actor: Actor
) -> ImportSummary:
    """Upsert clouds, zones, departments and their cloud links.  Re-importing updates in place."""
    summary = ImportSummary()
    by_key = {c.key: c for c in session.scalars(select(Cloud).options(selectinload(Cloud.zones)))}
    for entry in clouds:
        cloud = by_key.get(entry.key)
        if cloud is None:
            cloud = Cloud(key=entry.key)
            session.add(cloud)
            by_key[entry.key] = cloud
            summary.clouds_added += 1
        else:
            summary.clouds_updated += 1
        cloud.name_zh, cloud.name_en = entry.name_zh, entry.name_en
        cloud.kind, cloud.level, cloud.city = entry.kind.value, entry.level.value, entry.city
        cloud.os_cloud, cloud.region = entry.os_cloud, entry.region
        cloud.quota_drift_policy = entry.quota_drift_policy
        cloud.approval_policy = dict(entry.approval_policy)
        cloud.external_network = entry.external_network
        zones = {z.zone: z for z in cloud.zones}
        for zone_kind, network_name in entry.zones.items():
            zone = zones.get(zone_kind.value)
            if zone is None:
                cloud.zones.append(NetworkZone(zone=zone_kind.value, network_name=network_name))
            elif zone.network_name != network_name:
                zone.network_name, zone.network_id = network_name, None
        for zone_value, zone in zones.items():
            if zone_value not in {z.value for z in entry.zones}:
                cloud.zones.remove(zone)
    session.flush()

    depts = {d.key: d for d in session.scalars(select(Department).options(selectinload(Department.cloud_links)))}
    for dept_entry in departments:
        dept = depts.get(dept_entry.key)
        if dept is None:
            dept = Department(key=dept_entry.key)
            session.add(dept)
            depts[dept_entry.key] = dept
            summary.departments_added += 1
        else:
            summary.departments_updated += 1
        dept.name_zh, dept.name_en = dept_entry.name_zh, dept_entry.name_en
        dept.level, dept.city, dept.county = dept_entry.level.value, dept_entry.city, dept_entry.county
        linked = {link.cloud_id for link in dept.cloud_links}
        for cloud_key in dept_entry.clouds:
            cloud = by_key[cloud_key]
            if cloud.id not in linked:
                dept.cloud_links.append(
                    DepartmentCloud(
                        cloud_id=cloud.id,
                        domain_name=f"dept-{dept_entry.key}",
                        project_name=f"{dept_entry.key}--{cloud_key}",
                    )
                )
                summary.links_added += 1
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="organisation.import",
        target_type="organisation",
        target_id="files",
        detail={
            "clouds_added": summary.clouds_added,
            "departments_added": summary.departments_added,
            "links_added": summary.links_added,
        },
    )
    return summary


# --- users ------------------------------------------------------------------------


def validate_password(password: str, username: str = "") -> None:
    """The password policy of local accounts (``cloudmgr.identity.policy``)."""
    from cloudmgr.identity.policy import check_password

    check_password(password, username=username)


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str | None = None,
    department_key: str | None = None,
    email: str | None = None,
    actor: Actor,
) -> User:
    username = username.strip()
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValidationFailed("username must be 1-64 letters, digits, '.', '-' or '_'")
    validate_password(password, username)
    department: Department | None = None
    if role.needs_department:
        if not department_key:
            raise ValidationFailed(f"role {role.value} needs a department")
        department = get_department(session, department_key)
    elif department_key:
        raise ValidationFailed(f"role {role.value} does not belong to a department")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UsernameTaken(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        email=email,
        password_hash=generate_password_hash(password),
        role=role.value,
        department=department,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="user.create",
        target_type="user",
        target_id=user.id,
        detail={"username": username, "role": role.value, "department": department_key},
    )
    return user


def get_user(session: Session, user_id: int) -> User | None:
    # With its department in the same query: every page's login check reads both.
    return session.get(User, user_id, options=[joinedload(User.department)])


def list_users(session: Session) -> Sequence[User]:
    """Every user with their department, by role then username (the admin's user list)."""
    return session.scalars(select(User).options(selectinload(User.department)).order_by(User.role, User.username)).all()


def get_user_by_name(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UnknownUser(f"no user {username!r}")
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    # Hash even for an unknown user so timing does not tell which usernames exist.
    stored = user.password_hash if user else generate_password_hash("unknown-user-placeholder")
    if not check_password_hash(stored, password) or user is None or not user.active:
        raise InvalidCredentials("wrong username or password")
    user.last_login_at = utcnow()
    return user


# --- API tokens ---------------------------------------------------------------------


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once; only its hash is kept
    record: ApiToken = field(repr=False)


def issue_token(session: Session, user: User, *, name: str, expires_at: datetime | None, actor: Actor) -> IssuedToken:
    token = "cmt_" + secrets.token_urlsafe(32)
    record = ApiToken(
        user_id=user.id, name=name, token_hash=_hash_token(token), prefix=token[:12], expires_at=expires_at
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="token.issue",
        target_type="user",
        target_id=user.id,
        detail={"name": name},
    )
    return IssuedToken(token=token, record=record)


@dataclass(frozen=True, slots=True)
class UserIdentity:
    """Who a request's login or token belongs to, read with one lean query (no ORM objects):
    every page and API call needs it, so it is the cheapest read of the request."""

    id: int
    username: str
    display_name: str
    role: str
    department: NamedChoice | None
    active: bool = True
    # The user's session version when read: a web session opened under another one has ended.
    session_version: int = 0
    # An administrator reset the password: the web asks for a new one before any other page.
    password_change_required: bool = False

    @classmethod
    def of(cls, user: User) -> UserIdentity:
        """The identity of a user row already loaded (the login form's)."""
        dept = user.department
        department = NamedChoice(dept.id, dept.key, dept.name_zh, dept.name_en) if dept else None
        return cls(
            user.id,
            user.username,
            user.display_name,
            user.role,
            department,
            user.active,
            user.session_version or 0,
            bool(user.password_change_required),
        )


# The identity queries run on every page and API call, so they are built once, here, with their
# values as bound parameters: building a statement and computing its cache key cost several times
# what executing it does (0.5 ms of CPU a call, against 0.1).  They read the tables' columns (Core,
# not ORM entities), which spares the ORM's per-query bookkeeping; nothing is pending in the
# session when a request's user is read, so the ORM's autoflush has nothing to do there anyway.
_users = User.__table__.c
_departments = Department.__table__.c
_tokens = ApiToken.__table__.c
_IDENTITY_COLUMNS = (
    _users.id,
    _users.username,
    _users.display_name,
    _users.role,
    _users.active,
    _users.session_version,
    _users.password_change_required,
    _departments.id.label("dept_id"),
    _departments.key.label("dept_key"),
    _departments.name_zh.label("dept_name_zh"),
    _departments.name_en.label("dept_name_en"),
)
_USER_WITH_DEPARTMENT = User.__table__.outerjoin(Department.__table__, _departments.id == _users.department_id)
_IDENTITY_BY_ID = select(*_IDENTITY_COLUMNS).select_from(_USER_WITH_DEPARTMENT).where(_users.id == bindparam("user_id"))
_IDENTITY_OF_SESSION = _IDENTITY_BY_ID.where(_users.session_version == bindparam("session_version"))
_IDENTITY_OF_TOKEN = (
    select(
        *_IDENTITY_COLUMNS,
        _tokens.id.label("token_id"),
        _tokens.revoked_at,
        _tokens.expires_at,
        _tokens.last_used_at,
    )
    .select_from(_USER_WITH_DEPARTMENT.join(ApiToken.__table__, _tokens.user_id == _users.id))
    .where(_tokens.token_hash == bindparam("token_hash"))
)


def _identity(row: Any) -> UserIdentity:
    department = (
        NamedChoice(row.dept_id, row.dept_key, row.dept_name_zh, row.dept_name_en) if row.dept_id is not None else None
    )
    return UserIdentity(
        row.id,
        row.username,
        row.display_name,
        row.role,
        department,
        row.active,
        row.session_version,
        bool(row.password_change_required),
    )


def active_user_identity(session: Session, user_id: int) -> UserIdentity | None:
    """The identity of an active user, or None (whatever session it is asked for)."""
    row = session.execute(_IDENTITY_BY_ID, {"user_id": user_id}).first()
    return _identity(row) if row is not None and row.active else None


def session_identity(session: Session, user_id: int, session_version: object) -> UserIdentity | None:
    """The identity a logged-in web session stands for (one lean query on every request), or
    None when the user is disabled or the session was opened under an older session version
    (the user logged out, changed password, was disabled or changed role or department since);
    a session without a version (from before versions, or forged without one) has ended too."""
    if not isinstance(session_version, int) or isinstance(session_version, bool):
        return None
    row = session.execute(_IDENTITY_OF_SESSION, {"user_id": user_id, "session_version": session_version}).first()
    return _identity(row) if row is not None and row.active else None


def identity_for_token(session: Session, token: str) -> UserIdentity | None:
    """The identity an API token stands for: None when the token is unknown, revoked or
    expired, or its user is deactivated."""
    row = session.execute(_IDENTITY_OF_TOKEN, {"token_hash": _hash_token(token)}).first()
    if row is None or row.revoked_at is not None or not row.active:
        return None
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        return None
    # Recorded at most once a minute: a write on every API call would serialise readers.
    if row.last_used_at is None or now - row.last_used_at > TOKEN_USE_RESOLUTION:
        session.execute(update(ApiToken).where(ApiToken.id == row.token_id).values(last_used_at=now))
    return _identity(row)


# --- ending sessions; disabling users; revoking tokens ------------------------------------------
#
# Web sessions are signed cookies the server cannot delete: each carries the user's session
# version from its log-in, and the request's identity query (session_identity) refuses any
# other.  Every event that must end a user's sessions bumps the version here, in the service
# that performs the event, so no page, API or command can forget it.


def end_sessions(session: Session, user_id: int, *, revoke_tokens: bool, reason: str, actor: Actor) -> int:
    """End every web session of the user at once (and, with ``revoke_tokens``, revoke every API
    token still valid); audited.  Returns the new session version (for the session to keep, when
    the user themself acted, e.g. a password change)."""
    session.execute(
        update(User).where(User.id == user_id).values(session_version=User.session_version + 1),
        execution_options={"synchronize_session": "fetch"},
    )
    revoked = _revoke_all_tokens(session, user_id) if revoke_tokens else 0
    audit.record(
        session,
        actor=actor.username,
        action="user.sessions_ended",
        target_type="user",
        target_id=user_id,
        detail={"reason": reason, "tokens_revoked": revoked},
    )
    version: int = session.scalar(select(User.session_version).where(User.id == user_id)) or 0
    return version


def _revoke_all_tokens(session: Session, user_id: int) -> int:
    result = session.execute(
        update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow()),
        execution_options={"synchronize_session": "fetch"},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _require_admin(actor: Actor, what: str) -> None:
    if actor.role is not Role.ADMIN:
        raise PermissionDenied(f"only administrators may {what}")


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UnknownUser(f"no user with id {user_id}")
    return user


MAX_REASON_LENGTH = 500


def _reason(reason: str) -> str:
    """Why an administrator acts on an account: required, kept in the audit log."""
    cleaned = (reason or "").strip()
    if not cleaned:
        raise ValidationFailed("give a reason (it is kept in the audit log)")
    if len(cleaned) > MAX_REASON_LENGTH:
        raise ValidationFailed(f"the reason has at most {MAX_REASON_LENGTH} characters")
    return cleaned


def _is_self(actor: Actor, user: User) -> bool:
    return actor.user_id == user.id if actor.user_id is not None else actor.username == user.username


def may_disable(actor: Actor, user: User) -> bool:
    """Whether ``actor`` may disable ``user``: an administrator, never their own account (the page
    offers the button only then; :func:`set_user_active` refuses anyone else)."""
    return actor.role is Role.ADMIN and not _is_self(actor, user)


def set_user_active(session: Session, actor: Actor, user_id: int, *, active: bool, reason: str) -> User:
    """Disable (or enable again) a user; administrators only, never their own account.

    Disabling ends the user's web sessions and revokes their API tokens at once; enabling
    gives back the log-in, not the tokens.  Audited (``user.disable``/``user.enable``)."""
    _require_admin(actor, "disable or enable users")
    why = _reason(reason)
    user = _user(session, user_id)
    if not active and not may_disable(actor, user):
        raise OwnAccount("you cannot disable your own account: ask another administrator")
    if user.active == active:
        return user  # nothing to change: asked twice
    if not active:
        _keep_an_administrator(session, user)
    user.active = active
    audit.record(
        session,
        actor=actor.username,
        action="user.enable" if active else "user.disable",
        target_type="user",
        target_id=user.id,
        reason=why,
        detail={"username": user.username},
    )
    if not active:
        end_sessions(session, user.id, revoke_tokens=True, reason="disabled", actor=actor)
    session.flush()
    return user


def change_role(
    session: Session, actor: Actor, user_id: int, *, role: Role, department_key: str | None, reason: str
) -> User:
    """Give a user another role and/or department (administrators only, never their own);
    ends the user's sessions and revokes their tokens: what they were granted is gone."""
    _require_admin(actor, "change roles")
    why = _reason(reason)
    user = _user(session, user_id)
    if _is_self(actor, user):
        raise OwnAccount("you cannot change your own role: ask another administrator")
    department: Department | None = None
    if role.needs_department:
        if not department_key:
            raise ValidationFailed(f"role {role.value} needs a department")
        department = get_department(session, department_key)
    elif department_key:
        raise ValidationFailed(f"role {role.value} does not belong to a department")
    before = {"role": user.role, "department": user.department.key if user.department else None}
    after = {"role": role.value, "department": department.key if department else None}
    if before == after:
        return user
    if role is not Role.ADMIN:
        _keep_an_administrator(session, user)
    user.role, user.department = role.value, department  # both at once: the row's check ties them
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="user.role_change",
        target_type="user",
        target_id=user.id,
        reason=why,
        detail={"username": user.username, "before": before, "after": after},
    )
    end_sessions(session, user.id, revoke_tokens=True, reason="role_change", actor=actor)
    return user


def _may_manage_tokens_of(actor: Actor, user_id: int) -> None:
    if actor.role is not Role.ADMIN and actor.user_id != user_id:
        raise PermissionDenied("only administrators may manage other users' API tokens")


def list_tokens(session: Session, actor: Actor, user_id: int) -> Sequence[ApiToken]:
    """The API tokens of a user, newest first (the user themself or an administrator)."""
    _may_manage_tokens_of(actor, user_id)
    _user(session, user_id)
    return session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    ).all()


def revoke_tokens(session: Session, actor: Actor, user_id: int, *, reason: str, token_id: int | None = None) -> int:
    """Revoke the API tokens of a user still valid, all or the one ``token_id`` (the user
    themself or an administrator); audited (``token.revoke``).  Returns how many were revoked."""
    _may_manage_tokens_of(actor, user_id)
    why = _reason(reason)
    user = _user(session, user_id)
    if token_id is None:
        revoked = _revoke_all_tokens(session, user.id)
    else:
        token = session.get(ApiToken, token_id)
        if token is None or token.user_id != user.id:
            raise UnknownToken(f"{user.username} has no API token with id {token_id}")
        revoked = 0
        if token.revoked_at is None:
            token.revoked_at, revoked = utcnow(), 1
    audit.record(
        session,
        actor=actor.username,
        action="token.revoke",
        target_type="user",
        target_id=user.id,
        reason=why,
        detail={"username": user.username, "token_id": token_id, "revoked": revoked},
    )
    session.flush()
    return revoked


def _keep_an_administrator(session: Session, user: User) -> None:
    """Refuse a change that takes ``user``'s administration away when no other active
    administrator would be left (the console would have nobody to manage it)."""
    if user.role != Role.ADMIN.value or not user.active:
        return
    others = session.scalar(
        select(func.count(User.id)).where(User.role == Role.ADMIN.value, User.active.is_(True), User.id != user.id)
    )
    if not others:
        raise LastAdministrator(f"{user.username} is the last active administrator: make another one first")


# --- editing and deleting users (administrators) ------------------------------------------------

MAX_DISPLAY_NAME_LENGTH = 128
MAX_EMAIL_LENGTH = 255


def _clean_email(email: str | None) -> str | None:
    cleaned = (email or "").strip()
    if not cleaned:
        return None
    local, at, domain = cleaned.partition("@")
    if len(cleaned) > MAX_EMAIL_LENGTH or not at or not local or "." not in domain or any(c.isspace() for c in cleaned):
        raise ValidationFailed("enter an email address like name@example.gov.cn")
    if "@" in domain or domain.startswith(".") or domain.endswith("."):
        raise ValidationFailed("enter an email address like name@example.gov.cn")
    return cleaned


def update_user(
    session: Session,
    actor: Actor,
    user_id: int,
    *,
    display_name: str | None,
    email: str | None,
    role: Role,
    department_key: str | None,
    reason: str,
) -> User:
    """An administrator edits a user: name and email, and role and department (with the rules of
    :func:`change_role`: a reason, never their own, sessions and tokens ended).  Each change is
    audited with its before and after (``user.update``, ``user.role_change``)."""
    _require_admin(actor, "edit users")
    user = _user(session, user_id)
    name = (display_name or "").strip() or user.username
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise ValidationFailed(f"the full name has at most {MAX_DISPLAY_NAME_LENGTH} characters")
    mail = _clean_email(email)
    current_department = user.department.key if user.department else None
    if (user.role, current_department) != (role.value, department_key or None):
        change_role(session, actor, user.id, role=role, department_key=department_key or None, reason=reason)
    before = {"display_name": user.display_name, "email": user.email}
    after = {"display_name": name, "email": mail}
    if before != after:
        user.display_name, user.email = name, mail
        session.flush()
        audit.record(
            session,
            actor=actor.username,
            action="user.update",
            target_type="user",
            target_id=user.id,
            reason=(reason or "").strip()[:MAX_REASON_LENGTH] or None,
            detail={"username": user.username, "before": before, "after": after},
        )
    return user


# Rows that belong to the account itself and go with it: its credentials, not its history.
_OWNED_BY_USER = frozenset({"api_tokens", "external_identities"})


def _user_references() -> list[tuple[Table, Column[Any]]]:
    """Every table column that refers to a user (foreign keys to ``users.id``)."""
    import cloudmgr.models  # noqa: F401  (every model in the metadata)
    from cloudmgr.db import Base

    found: list[tuple[Table, Column[Any]]] = []
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == User.__tablename__ and isinstance(fk.parent, Column):
                found.append((table, fk.parent))
    return found


def user_history(session: Session, user_id: int) -> list[str]:
    """The tables holding records of the user (requests, keys, purchases …), by name; empty when
    the account can be deleted without losing anything recorded."""
    named: list[str] = []
    for table, column in _user_references():
        if table.name in _OWNED_BY_USER:
            continue
        if session.scalar(select(func.count()).select_from(table).where(column == user_id)):
            named.append(table.name)
    return sorted(set(named))


def may_delete(actor: Actor, user: User) -> bool:
    """Whether the page offers deleting ``user`` to ``actor`` (an administrator, never themself)."""
    return actor.role is Role.ADMIN and not _is_self(actor, user)


def delete_user(session: Session, actor: Actor, user_id: int, *, reason: str) -> str:
    """Delete an account that has no history (administrators only; never their own nor the last
    active administrator).  A user named by recorded work is refused (:class:`UserHasHistory`):
    disable them instead.  Their API tokens go with them.  Audited (``user.delete``) with what the
    account was.  Returns the username."""
    _require_admin(actor, "delete users")
    why = _reason(reason)
    user = _user(session, user_id)
    if _is_self(actor, user):
        raise OwnAccount("you cannot delete your own account: ask another administrator")
    _keep_an_administrator(session, user)
    history = user_history(session, user.id)
    if history:
        raise UserHasHistory(
            f"{user.username} has recorded work ({', '.join(history)}): disable the account instead of deleting it"
        )
    username = user.username
    was = {
        "username": username,
        "display_name": user.display_name,
        "email": user.email,
        "role": user.role,
        "department": user.department.key if user.department else None,
        "active": user.active,
    }
    for table, column in _user_references():
        if table.name in _OWNED_BY_USER:
            session.execute(table.delete().where(column == user.id))
    session.delete(user)
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="user.delete",
        target_type="user",
        target_id=user_id,
        reason=why,
        detail=was,
    )
    return username


# --- the organisation files, from the admin pages: import now, sync the clouds through the worker ----

CLOUDS_SYNC_WORK = "clouds.sync_now"


@dataclass(frozen=True)
class FilesImported:
    """What importing the clouds and departments files did (``cloudmgr org import``)."""

    clouds: int
    departments: int
    summary: ImportSummary
    # The work item that syncs the clouds (the worker runs it: never a cloud call in a request).
    sync_item_id: int | None = None


def import_organisation_files(
    session: Session, clouds_file: Path, departments_file: Path, *, actor: Actor, sync_clouds: bool = False
) -> FilesImported:
    """Validate both files and import them, as ``cloudmgr org import`` does (administrators; the
    files are all checked before anything is written: a bad file raises
    :class:`~cloudmgr.organisation.errors.OrganisationFileInvalid` naming the file and entry).
    With ``sync_clouds``, also queue ``cloudmgr clouds sync`` in the same transaction for the
    worker: it calls the clouds, which never happens inside a request's transaction."""
    from cloudmgr.workqueue.services import enqueue

    _require_admin(actor, "import the organisation files")
    clouds, departments = read_organisation(clouds_file, departments_file)
    summary = import_organisation(session, clouds, departments, actor=actor)
    item_id = None
    if sync_clouds:
        item = enqueue(session, CLOUDS_SYNC_WORK, CLOUDS_SYNC_WORK, {"actor": actor.username}, max_attempts=1)
        item_id = item.id
    return FilesImported(len(clouds), len(departments), summary, item_id)


@dataclass(frozen=True)
class FileSyncRun:
    """The last "sync now" of a kind of file: its work item's state and what it reported."""

    state: str  # queued, running, done, failed (the work item's)
    queued_at: datetime
    finished_at: datetime | None
    actor: str
    error: str | None
    # What the run did, as its handler recorded it in the audit log (counts, problems).
    detail: dict[str, Any] = field(default_factory=dict)


def last_file_sync(session: Session, kind: str) -> FileSyncRun | None:
    """The latest "sync now" run of ``kind`` (CLOUDS_SYNC_WORK or the quotas' apply), or None."""
    from cloudmgr.audit.models import AuditEvent
    from cloudmgr.workqueue.models import WorkItem

    item = session.scalar(select(WorkItem).where(WorkItem.kind == kind).order_by(WorkItem.id.desc()).limit(1))
    if item is None:
        return None
    event = session.scalar(
        select(AuditEvent)
        .where(AuditEvent.action == kind, AuditEvent.target_type == "work", AuditEvent.target_id == str(item.id))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    return FileSyncRun(
        item.state,
        item.created_at,
        item.finished_at,
        str(item.payload.get("actor", "")),
        item.last_error,
        dict(event.detail) if event is not None else {},
    )
