"""The Database's sessions keep refusal records through a rollback and refuse changes to
append-only rows; no listener of cloudmgr's touches sessions of the process it did not make
(issue 15: the import-time listener on SQLAlchemy's Session class is gone)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session

from cloudmgr import db as cloudmgr_db
from cloudmgr.audit import services as audit
from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import Database


class Refused(Exception):
    pass


def _actions(database: Database) -> list[str]:
    with database.unit_of_work() as uow:
        return [e.action for e in uow.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_a_refusal_record_survives_the_rollback_of_the_refused_action(db: Database) -> None:
    with pytest.raises(Refused), db.unit_of_work() as uow:
        audit.record(uow.session, actor="x", action="ordinary", target_type="t", target_id=1)
        audit.record_surviving_rollback(uow.session, actor="x", action="refused", target_type="t", target_id=1)
        uow.session.flush()
        raise Refused
    assert _actions(db) == ["refused"]  # the ordinary event went with the rollback


def test_a_refusal_record_in_a_committed_transaction_is_written_once(db: Database) -> None:
    with db.unit_of_work() as uow:
        audit.record_surviving_rollback(uow.session, actor="x", action="refused", target_type="t", target_id=1)
    assert _actions(db) == ["refused"]


def test_no_cloudmgr_listener_on_every_session_of_the_process() -> None:
    for name, hook in (
        ("after_transaction_end", cloudmgr_db._write_rows_lost_to_rollback),
        ("before_flush", cloudmgr_db._refuse_changes_to_append_only_rows),
    ):
        assert not event.contains(Session, name, hook)
    # A session cloudmgr did not make is left alone: it may change rows the ORM models call append-only.
    engine = create_engine("sqlite://")
    AuditEvent.__table__.create(engine)
    with Session(engine) as session:
        session.add(AuditEvent(actor="x", action="a", target_type="t", target_id="1", detail={}))
        session.commit()
        row = session.scalars(select(AuditEvent)).one()
        row.reason = "edited"
        session.commit()  # no AuditLogIsAppendOnly: that is the Database's sessions' rule
