from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

import cloudmgr.models  # noqa: F401
from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import Base
from cloudmgr.runtime import Runtime


def test_migrations_build_exactly_the_models(runtime: Runtime) -> None:
    with runtime.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, Base.metadata) if "scheduler_jobs" not in repr(d)]
    assert diff == []


def test_unit_of_work_commits_once_then_runs_side_effects(runtime: Runtime) -> None:
    seen: list[int] = []
    with runtime.db.unit_of_work() as uow:
        uow.session.add(AuditEvent(actor="t", action="a", target_type="x", target_id="1", detail={}))

        def after() -> None:
            # The change is visible to a new transaction by the time side effects run.
            with runtime.db.unit_of_work() as other:
                seen.append(other.session.scalar(select(func.count()).select_from(AuditEvent)) or 0)

        uow.after_commit(after)
        assert seen == []
    assert seen == [1]


def test_unit_of_work_rolls_back_and_skips_side_effects_on_error(runtime: Runtime) -> None:
    ran: list[bool] = []
    with pytest.raises(RuntimeError), runtime.db.unit_of_work() as uow:
        uow.session.add(AuditEvent(actor="t", action="a", target_type="x", target_id="1", detail={}))
        uow.after_commit(lambda: ran.append(True))
        raise RuntimeError("boom")
    assert ran == []
    with runtime.db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_a_failing_side_effect_does_not_undo_the_commit(runtime: Runtime) -> None:
    def broken() -> None:
        raise ValueError("cloud down")

    with runtime.db.unit_of_work() as uow:
        uow.session.add(AuditEvent(actor="t", action="a", target_type="x", target_id="1", detail={}))
        uow.after_commit(broken)
    with runtime.db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AuditEvent)) == 1
