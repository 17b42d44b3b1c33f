"""The SSH key services on both databases: the wall between users, the operators' read-only
list, the audit trail without key text, and the key a request gets."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.keys import services as keys
from cloudmgr.keys.errors import (
    KeyAlreadyKept,
    KeyLimitReached,
    KeyNameInvalid,
    KeyNameTaken,
    KeyNotFound,
    KeysForbidden,
    NameProblem,
    PrivateKeyPasted,
)
from cloudmgr.keys.models import SshKey
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from tests.keys.keygen import ed25519_key, openssh_private, public_line, rsa_key


def _actor(rt: Runtime, username: str) -> Actor:
    with rt.db.unit_of_work() as uow:
        return Actor.of(org.get_user_by_name(uow.session, username))


def _add(rt: Runtime, username: str, name: str, text: str) -> keys.KeyInfo:
    actor = _actor(rt, username)
    with rt.db.unit_of_work() as uow:
        return keys.add_key(uow.session, actor, name, text)


def test_add_list_delete_with_audit_naming_the_fingerprint_only(seeded: Runtime) -> None:
    line = public_line(ed25519_key(), "zhangwei@laptop")
    added = _add(seeded, "zhangwei", " laptop ", line)
    assert added.name == "laptop" and added.owner_username == "zhangwei"
    assert added.fingerprint.startswith("SHA256:") and not added.fingerprint.endswith("=")
    zhangwei = _actor(seeded, "zhangwei")
    with seeded.db.unit_of_work() as uow:
        assert [k.name for k in keys.list_keys(uow.session, zhangwei)] == ["laptop"]
        keys.delete_key(uow.session, zhangwei, added.id)
    with seeded.db.unit_of_work() as uow:
        assert keys.list_keys(uow.session, zhangwei) == []
        events = uow.session.scalars(select(AuditEvent).where(AuditEvent.action.like("ssh_key.%"))).all()
    assert [e.action for e in events] == ["ssh_key.added", "ssh_key.deleted"]
    blob = line.split()[1]
    for event in events:
        assert event.detail["fingerprint"] == added.fingerprint and event.detail["name"] == "laptop"
        assert blob[20:60] not in json.dumps(event.detail)


def test_names_are_unique_per_user_not_across_users(seeded: Runtime) -> None:
    _add(seeded, "zhangwei", "laptop", public_line(ed25519_key()))
    with pytest.raises(KeyNameTaken):
        _add(seeded, "zhangwei", "laptop", public_line(ed25519_key()))
    _add(seeded, "lina", "laptop", public_line(ed25519_key()))  # another user, same name


def test_the_same_key_twice_is_refused_naming_where_it_is(seeded: Runtime) -> None:
    line = public_line(rsa_key(2048), "one")
    _add(seeded, "zhangwei", "work", line)
    with pytest.raises(KeyAlreadyKept) as caught:
        _add(seeded, "zhangwei", "again", line.replace(" one", " two"))
    assert caught.value.existing_name == "work"


@pytest.mark.parametrize(
    ("name", "problem"),
    [("  ", NameProblem.EMPTY), ("x" * 65, NameProblem.TOO_LONG), ("a\x00b", NameProblem.CONTROL_CHARACTER)],
)
def test_bad_names(seeded: Runtime, name: str, problem: NameProblem) -> None:
    with pytest.raises(KeyNameInvalid) as caught:
        _add(seeded, "zhangwei", name, public_line(ed25519_key()))
    assert caught.value.problem is problem and caught.value.field == "name"


def test_a_user_keeps_at_most_the_limit(seeded: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "MAX_KEYS_PER_USER", 2)
    _add(seeded, "zhangwei", "a", public_line(ed25519_key()))
    _add(seeded, "zhangwei", "b", public_line(ed25519_key()))
    with pytest.raises(KeyLimitReached):
        _add(seeded, "zhangwei", "c", public_line(ed25519_key()))


def test_a_pasted_private_key_is_audited_without_a_byte_of_it_and_nothing_is_stored(seeded: Runtime) -> None:
    private = openssh_private(ed25519_key())
    zhangwei = _actor(seeded, "zhangwei")
    with pytest.raises(PrivateKeyPasted), seeded.db.unit_of_work() as uow:
        keys.add_key(uow.session, zhangwei, "oops", private)
    with seeded.db.unit_of_work() as uow:
        assert uow.session.scalars(select(SshKey)).all() == []
        event = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "ssh_key.private_key_refused")).one()
        assert event.actor == "zhangwei" and event.detail == {"stored": False}


def test_the_wall_between_users(seeded: Runtime) -> None:
    mine = _add(seeded, "zhangwei", "laptop", public_line(ed25519_key()))
    for other in ("lina", "wangfang"):  # the same department's head, another department's staff
        actor = _actor(seeded, other)
        with seeded.db.unit_of_work() as uow:
            assert keys.list_keys(uow.session, actor) == []
            with pytest.raises(KeyNotFound):
                keys.delete_key(uow.session, actor, mine.id)
            with pytest.raises(KeyNotFound):
                keys.key_for_request(uow.session, actor, mine.id)
    with seeded.db.unit_of_work() as uow:
        assert uow.session.get(SshKey, mine.id) is not None


def test_only_department_users_keep_keys(seeded: Runtime) -> None:
    for username in ("operator", "finance", "admin"):
        with pytest.raises(KeysForbidden):
            _add(seeded, username, "k", public_line(ed25519_key()))
        actor = _actor(seeded, username)
        with seeded.db.unit_of_work() as uow, pytest.raises(KeysForbidden):
            keys.list_keys(uow.session, actor)
    with seeded.db.unit_of_work() as uow, pytest.raises(KeysForbidden):
        keys.add_key(uow.session, Actor.system("job"), "k", public_line(ed25519_key()))


def test_operators_list_a_departments_keys_read_only(seeded: Runtime) -> None:
    _add(seeded, "zhangwei", "laptop", public_line(ed25519_key()))
    _add(seeded, "lina", "desk", public_line(ed25519_key()))
    _add(seeded, "wangfang", "pc", public_line(ed25519_key()))
    actors = {username: _actor(seeded, username) for username in ("operator", "zhangwei", "lina", "finance", "admin")}
    with seeded.db.unit_of_work() as uow:
        education = org.get_department(uow.session, "prov-education").id
        found = keys.list_department_keys(uow.session, actors["operator"], education)
        assert sorted((k.owner_username, k.name) for k in found) == [("lina", "desk"), ("zhangwei", "laptop")]
        assert len(keys.list_department_keys(uow.session, actors["operator"])) == 3
        for username in ("zhangwei", "lina", "finance", "admin"):
            with pytest.raises(KeysForbidden):
                keys.list_department_keys(uow.session, actors[username], education)


def test_key_for_request_gives_the_owners_key(seeded: Runtime) -> None:
    line = public_line(ed25519_key(), "c")
    added = _add(seeded, "zhangwei", "laptop", line)
    zhangwei = _actor(seeded, "zhangwei")
    with seeded.db.unit_of_work() as uow:
        choice = keys.key_for_request(uow.session, zhangwei, added.id)
    assert choice == keys.KeyChoice(name="laptop", public_key=line.rsplit(" ", 1)[0], fingerprint=added.fingerprint)
    with pytest.raises(AttributeError):
        choice.name = "other"  # type: ignore[misc]


def test_a_key_added_in_another_department_is_not_put_on_this_ones_servers(seeded: Runtime) -> None:
    added = _add(seeded, "zhangwei", "laptop", public_line(ed25519_key()))
    moved = _actor(seeded, "zhangwei")
    with seeded.db.unit_of_work() as uow:
        other_department = org.get_department(uow.session, "ts-hrss").id
        moved = Actor(moved.username, moved.role, department_id=other_department, user_id=moved.user_id)
        with pytest.raises(KeyNotFound):
            keys.key_for_request(uow.session, moved, added.id)
