from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cloudmgr.audit import services as audit
from cloudmgr.audit.services import AuditLogIsAppendOnly
from cloudmgr.runtime import Runtime


def test_events_are_recorded_and_listed_newest_first(runtime: Runtime) -> None:
    with runtime.db.unit_of_work() as uow:
        audit.record(uow.session, actor="a", action="x.one", target_type="t", target_id=1, reason="because")
        audit.record(uow.session, actor="b", action="x.two", target_type="t", target_id=2, detail={"k": "v"})
    with runtime.db.unit_of_work() as uow:
        events = audit.recent(uow.session, target_type="t")
        assert [e.action for e in events] == ["x.two", "x.one"]
        assert events[0].detail == {"k": "v"} and events[1].reason == "because"
        assert events[0].at.tzinfo is not None


def test_orm_refuses_to_change_or_delete_events(runtime: Runtime) -> None:
    with runtime.db.unit_of_work() as uow:
        audit.record(uow.session, actor="a", action="x", target_type="t", target_id=1)
    with pytest.raises(AuditLogIsAppendOnly), runtime.db.unit_of_work() as uow:
        event = audit.recent(uow.session)[0]
        event.reason = "rewritten"
        uow.session.flush()
    with pytest.raises(AuditLogIsAppendOnly), runtime.db.unit_of_work() as uow:
        uow.session.delete(audit.recent(uow.session)[0])
        uow.session.flush()


def test_database_refuses_to_change_or_delete_events(runtime: Runtime) -> None:
    with runtime.db.unit_of_work() as uow:
        audit.record(uow.session, actor="a", action="x", target_type="t", target_id=1)
    for statement in ("UPDATE audit_events SET actor = 'forged'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), runtime.db.engine.begin() as conn:
            conn.execute(text(statement))
    with runtime.db.unit_of_work() as uow:
        assert [e.actor for e in audit.recent(uow.session)] == ["a"]
