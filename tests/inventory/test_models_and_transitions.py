from __future__ import annotations

import pytest
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.inventory.errors import InvalidSystemTransition
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.inventory.services import TRANSITIONS, transition_system
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime
from tests.inventory.helpers import make_system


def test_happy_path_stamps_and_audits_every_transition(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        system = make_system(uow.session, "edu-web-01")
        for to in ("planned", "migrating", "on_cloud", "decommissioned"):
            assert transition_system(uow.session, system, to, actor=Actor("ops", Role.OPERATOR), reason=f"to {to}")
        system_id = system.id
    with seeded.db.unit_of_work() as uow:
        stored = uow.session.get(LegacySystem, system_id)
        assert stored is not None
        assert stored.state == "decommissioned"
        assert stored.migrated_at is not None and stored.decommissioned_at is not None
        events = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.target_type == "legacy_system", AuditEvent.target_id == str(system_id))
        ).all()
        assert [(e.detail["from"], e.detail["to"]) for e in events] == [
            ("legacy", "planned"),
            ("planned", "migrating"),
            ("migrating", "on_cloud"),
            ("on_cloud", "decommissioned"),
        ]
        assert {e.actor for e in events} == {"ops"}
    # forbidden transitions are refused and change nothing
    with seeded.db.unit_of_work() as uow:
        system = make_system(uow.session, "edu-web-02")
        with pytest.raises(InvalidSystemTransition):
            transition_system(uow.session, system, "on_cloud", actor=Actor("ops", Role.OPERATOR), reason=None)
        with pytest.raises(InvalidSystemTransition):
            transition_system(uow.session, system, "nonsense", actor=Actor("ops", Role.OPERATOR), reason=None)
        assert system.state == "legacy"
        # the same state is a harmless no-op
        assert transition_system(uow.session, system, "legacy", actor=Actor("ops", Role.OPERATOR), reason=None) is False
        transition_system(uow.session, system, "planned", actor=Actor("ops", Role.OPERATOR), reason=None)
        transition_system(uow.session, system, "migrating", actor=Actor("ops", Role.OPERATOR), reason=None)
        transition_system(uow.session, system, "rolled_back", actor=Actor("ops", Role.OPERATOR), reason="verify failed")
        assert system.migrated_at is None
        transition_system(uow.session, system, "planned", actor=Actor("ops", Role.OPERATOR), reason="next wave")


def test_decommissioned_is_terminal_and_intranet_only_goes_back_to_legacy() -> None:
    assert TRANSITIONS["decommissioned"] == frozenset()
    assert TRANSITIONS["intranet"] == frozenset({"legacy"})
    every = set(TRANSITIONS)
    for targets in TRANSITIONS.values():
        assert targets <= every
