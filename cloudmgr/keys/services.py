"""SSH public keys: a department user adds, lists and deletes their own; operators read a
department's; a service request takes one of its requester's keys (:func:`key_for_request`).

The wall: a key belongs to the user who added it.  Nobody else may see, use or delete it
(another user's key is "not found", as if it did not exist); operators may list keys, read
only, to help someone whose login fails.  Audit events name the key and its fingerprint,
never its text; a pasted private key is refused before anything is written, and the refusal
is audited without a byte of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.keys.errors import (
    KeyAlreadyKept,
    KeyLimitReached,
    KeyNameInvalid,
    KeyNameTaken,
    KeyNotFound,
    KeyProblem,
    KeyRefused,
    KeysForbidden,
    NameProblem,
    PrivateKeyPasted,
)
from cloudmgr.keys.models import SshKey
from cloudmgr.keys.parsing import (
    MAX_COMMENT_LENGTH,
    MAX_TEXT_LENGTH,
    MIN_RSA_BITS,
    KeyType,
    looks_like_private_key,
    parse_public_key,
)
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role, User

__all__ = [
    "MAX_COMMENT_LENGTH",
    "MAX_KEYS_PER_USER",
    "MAX_TEXT_LENGTH",
    "MIN_RSA_BITS",
    "NAME_MAX",
    "KeyChoice",
    "KeyInfo",
    "KeyProblem",
    "KeyRefused",
    "KeyType",
    "NameProblem",
    "add_key",
    "delete_key",
    "key_for_request",
    "list_department_keys",
    "list_keys",
    "looks_like_private_key",
    "may_keep_keys",
    "may_list_department_keys",
    "private_key_refusal",
]

NAME_MAX = 64
MAX_KEYS_PER_USER = 20
TARGET = "ssh_key"


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    key_type: KeyType
    bits: int
    fingerprint: str
    comment: str
    public_key: str
    created_at: datetime
    owner_username: str
    department_id: int


@dataclass(frozen=True)
class KeyChoice:
    """The key a service request puts on its servers (what Nova's keypair gets)."""

    name: str
    public_key: str
    fingerprint: str


def private_key_refusal() -> PrivateKeyPasted:
    """The refusal of a pasted private key, for a form that finds one before asking :func:`add_key`."""
    return PrivateKeyPasted()


def may_keep_keys(actor: Actor) -> bool:
    """Department users keep keys: they are who request servers and log in to them."""
    return actor.is_department and actor.user_id is not None and actor.department_id is not None


def may_list_department_keys(actor: Actor) -> bool:
    return actor.role is Role.OPERATOR


def _keeper(actor: Actor) -> tuple[int, int]:
    if not may_keep_keys(actor):
        raise KeysForbidden("only department users keep SSH keys")
    assert actor.user_id is not None and actor.department_id is not None
    return actor.user_id, actor.department_id


def _info(key: SshKey, owner_username: str) -> KeyInfo:
    return KeyInfo(
        id=key.id,
        name=key.name,
        key_type=key.key_type,
        bits=key.bits,
        fingerprint=key.fingerprint,
        comment=key.comment,
        public_key=key.public_key,
        created_at=key.created_at,
        owner_username=owner_username,
        department_id=key.department_id,
    )


def _clean_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise KeyNameInvalid(NameProblem.EMPTY, "give the key a name")
    if len(cleaned) > NAME_MAX:
        raise KeyNameInvalid(NameProblem.TOO_LONG, f"at most {NAME_MAX} characters")
    if not cleaned.isprintable():
        raise KeyNameInvalid(NameProblem.CONTROL_CHARACTER, "the name may not contain control characters")
    return cleaned


def _name_taken(session: Session, owner_id: int, name: str) -> bool:
    query = select(SshKey.id).where(SshKey.owner_user_id == owner_id, SshKey.name == name)
    return session.scalar(query) is not None


def _kept_as(session: Session, owner_id: int, fingerprint: str) -> str | None:
    query = select(SshKey.name).where(SshKey.owner_user_id == owner_id, SshKey.fingerprint == fingerprint)
    return session.scalar(query)


def add_key(session: Session, actor: Actor, name: str, text: str) -> KeyInfo:
    """Keep the public key ``text`` under ``name`` for the acting department user."""
    owner_id, department_id = _keeper(actor)
    try:
        parsed = parse_public_key(text)
    except PrivateKeyPasted:
        audit.record_surviving_rollback(
            session,
            actor=actor.username,
            action="ssh_key.private_key_refused",
            target_type="user",
            target_id=owner_id,
            detail={"stored": False},
        )
        raise
    clean_name = _clean_name(name)
    if _name_taken(session, owner_id, clean_name):
        raise KeyNameTaken(f"name: you already have a key named {clean_name!r}")
    existing = _kept_as(session, owner_id, parsed.fingerprint)
    if existing is not None:
        raise KeyAlreadyKept(existing)
    count = session.scalar(select(func.count()).select_from(SshKey).where(SshKey.owner_user_id == owner_id)) or 0
    if count >= MAX_KEYS_PER_USER:
        raise KeyLimitReached(MAX_KEYS_PER_USER)
    key = SshKey(
        owner_user_id=owner_id,
        department_id=department_id,
        name=clean_name,
        public_key=parsed.public_key,
        comment=parsed.comment,
        key_type=parsed.key_type,
        bits=parsed.bits,
        fingerprint=parsed.fingerprint,
    )
    try:
        with session.begin_nested():  # the same name or key added at the same moment by another request
            session.add(key)
    except IntegrityError:
        if _name_taken(session, owner_id, clean_name):
            raise KeyNameTaken(f"name: you already have a key named {clean_name!r}") from None
        raise KeyAlreadyKept(_kept_as(session, owner_id, parsed.fingerprint) or clean_name) from None
    audit.record(
        session,
        actor=actor.username,
        action="ssh_key.added",
        target_type=TARGET,
        target_id=key.id,
        detail={"name": key.name, "fingerprint": key.fingerprint, "key_type": key.key_type.value, "bits": key.bits},
    )
    return _info(key, actor.username)


def list_keys(session: Session, actor: Actor) -> list[KeyInfo]:
    """The acting user's own keys, by name."""
    owner_id, _department_id = _keeper(actor)
    keys = session.scalars(select(SshKey).where(SshKey.owner_user_id == owner_id).order_by(SshKey.name, SshKey.id))
    return [_info(key, actor.username) for key in keys]


def list_department_keys(session: Session, actor: Actor, department_id: int | None = None) -> list[KeyInfo]:
    """Every user's keys of one department (or of all, with None), for an operator: read only."""
    if not may_list_department_keys(actor):
        raise KeysForbidden("only operators list other users' SSH keys")
    query = select(SshKey, User.username).join(User, User.id == SshKey.owner_user_id)
    if department_id is not None:
        query = query.where(SshKey.department_id == department_id)
    rows: Sequence[tuple[SshKey, str]] = (
        session.execute(query.order_by(SshKey.department_id, User.username, SshKey.name)).tuples().all()
    )
    return [_info(key, username) for key, username in rows]


def _own_key(session: Session, actor: Actor, key_id: int) -> SshKey:
    owner_id, _department_id = _keeper(actor)
    key = session.scalar(select(SshKey).where(SshKey.id == key_id, SshKey.owner_user_id == owner_id))
    if key is None:
        raise KeyNotFound(f"key_id: no SSH key #{key_id} of yours")
    return key


def delete_key(session: Session, actor: Actor, key_id: int) -> None:
    """Delete one of the acting user's keys (servers that already have it keep it)."""
    key = _own_key(session, actor, key_id)
    audit.record(
        session,
        actor=actor.username,
        action="ssh_key.deleted",
        target_type=TARGET,
        target_id=key.id,
        detail={"name": key.name, "fingerprint": key.fingerprint},
    )
    session.delete(key)


def key_for_request(session: Session, actor: Actor, key_id: int) -> KeyChoice:
    """The key ``key_id`` for a server the acting user requests: theirs, added in the department
    they request for (a key from a department they left is not put on this one's servers)."""
    key = _own_key(session, actor, key_id)
    if key.department_id != actor.department_id:
        raise KeyNotFound(f"key_id: SSH key #{key_id} was added in another department; add it again here")
    return KeyChoice(name=key.name, public_key=key.public_key, fingerprint=key.fingerprint)
