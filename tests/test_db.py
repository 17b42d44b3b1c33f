from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

import cloudmgr.models  # noqa: F401
from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import Base, Database
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


@pytest.mark.postgres
def test_a_pooled_connection_that_died_while_idle_is_replaced_before_use(
    postgres_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ping on every checkout (a round trip per request): only after an idle spell, and a
    connection that died meanwhile (a restarted server) is replaced, unseen by the caller."""
    from sqlalchemy import create_engine, text

    import cloudmgr.db

    database = Database(postgres_server_url)
    admin = create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    try:
        with database.engine.connect() as conn:
            first_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with database.engine.connect() as conn:  # just used: no ping, the same connection
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == first_pid
        with admin.connect() as killer:
            assert killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid}).scalar_one()
        monkeypatch.setattr(cloudmgr.db, "IDLE_PING_SECONDS", 0.0)
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != first_pid
    finally:
        database.dispose()
        admin.dispose()
