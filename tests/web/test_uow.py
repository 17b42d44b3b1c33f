"""One unit of work per request: commit on success, roll back on error, side effects after commit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, abort, g
from sqlalchemy import func, select

from cloudmgr.audit import services as audit
from cloudmgr.audit.models import AuditEvent
from cloudmgr.errors import Conflict
from cloudmgr.runtime import Runtime
from web import create_app
from web.core.uow import discard_changes, keep_changes_on_error, request_uow, run_job_outside_request


def _events(runtime: Runtime, action: str) -> int:
    with runtime.db.unit_of_work() as uow:
        return int(uow.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == action)) or 0)


@pytest.fixture
def probe_app(seeded: Runtime) -> Iterator[tuple[Flask, list[str]]]:
    app = create_app(runtime=seeded)
    side_effects: list[str] = []

    def write(action: str) -> None:
        uow = request_uow()
        audit.record(uow.session, actor="test", action=action, target_type="probe", target_id=1)
        uow.after_commit(lambda: side_effects.append(action))

    @app.get("/probe/ok")
    def ok() -> str:
        write("probe.ok")
        return "ok"

    @app.get("/probe/domain-error")
    def domain_error() -> str:
        write("probe.domain_error")
        raise Conflict("busy")

    @app.get("/probe/crash")
    def crash() -> str:
        write("probe.crash")
        raise RuntimeError("crash")

    @app.get("/probe/abort")
    def aborted() -> str:
        write("probe.abort")
        abort(404)

    @app.get("/probe/keep")
    def keep() -> tuple[str, int]:
        write("probe.keep")
        keep_changes_on_error()
        return "kept", 401

    @app.get("/probe/discard")
    def discard() -> str:
        write("probe.discard")
        discard_changes()
        return "discarded"

    @app.get("/probe/commit-fails")
    def commit_fails() -> str:
        uow = request_uow()
        event = audit.record(uow.session, actor="test", action="probe.commit_fails", target_type="p", target_id=1)
        uow.session.flush()
        event.actor = "changed"  # the audit log is append-only: the commit's flush refuses this
        uow.after_commit(lambda: side_effects.append("probe.commit_fails"))
        return "never"

    yield app, side_effects


def test_success_commits_then_runs_after_commit(probe_app: tuple[Flask, list[str]], seeded: Runtime) -> None:
    app, side_effects = probe_app
    assert app.test_client().get("/probe/ok").status_code == 200
    assert _events(seeded, "probe.ok") == 1
    assert side_effects == ["probe.ok"]


@pytest.mark.parametrize(
    ("path", "status", "action"),
    [
        ("/probe/domain-error", 409, "probe.domain_error"),
        ("/probe/crash", 500, "probe.crash"),
        ("/probe/abort", 404, "probe.abort"),
        ("/probe/discard", 200, "probe.discard"),
    ],
)
def test_errors_roll_back_and_skip_side_effects(
    probe_app: tuple[Flask, list[str]], seeded: Runtime, path: str, status: int, action: str
) -> None:
    app, side_effects = probe_app
    assert app.test_client().get(path).status_code == status
    assert _events(seeded, action) == 0
    assert side_effects == []


def test_keep_changes_on_error(probe_app: tuple[Flask, list[str]], seeded: Runtime) -> None:
    app, side_effects = probe_app
    assert app.test_client().get("/probe/keep").status_code == 401
    assert _events(seeded, "probe.keep") == 1
    assert side_effects == ["probe.keep"]


def test_failed_commit_is_a_500_without_side_effects(probe_app: tuple[Flask, list[str]], seeded: Runtime) -> None:
    app, side_effects = probe_app
    response = app.test_client().get("/probe/commit-fails")
    assert response.status_code == 500
    assert "系统内部错误" in response.get_data(as_text=True)
    assert _events(seeded, "probe.commit_fails") == 0
    assert side_effects == []


def test_domain_error_becomes_an_error_page(probe_app: tuple[Flask, list[str]]) -> None:
    app, _ = probe_app
    response = app.test_client().get("/probe/domain-error")
    assert response.status_code == 409
    assert "busy" in response.get_data(as_text=True)


def test_a_job_run_for_a_view_has_no_request_transaction_around_it(seeded: Runtime) -> None:
    """A job-shaped service (it opens its own units of work and reads a cloud between them)
    runs with the request's unit of work ended: no transaction, so on SQLite no write lock,
    is held across it, and its own units of work commit; the view reads afresh afterwards."""
    app = create_app(runtime=seeded)
    seen: list[object] = []

    def job(label: str) -> str:
        seen.append(g.get("_cloudmgr_uow"))
        with seeded.db.unit_of_work() as uow:
            audit.record(uow.session, actor="test", action="probe.job", target_type="probe", target_id=1, reason=label)
        return label

    @app.get("/probe/job")
    def run_job() -> str:
        request_uow().session.scalar(select(func.count(AuditEvent.id)))  # the request reads first
        answer = run_job_outside_request(job, "now")
        count = request_uow().session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "probe.job"))
        return f"{answer} {count}"

    response = app.test_client().get("/probe/job")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "now 1")
    assert seen == [None]
    assert _events(seeded, "probe.job") == 1


@pytest.mark.parametrize("flushed", [False, True])
def test_a_view_that_changed_the_database_may_not_run_a_job(seeded: Runtime, flushed: bool) -> None:
    """Running a job ends the request's unit of work: a change the view made before (pending
    or already flushed) would be committed half-way through the request, so it is refused
    and rolled back, the job unrun."""
    app = create_app(runtime=seeded)
    ran: list[str] = []

    @app.get("/probe/write-then-job")
    def write_then_job() -> str:
        session = request_uow().session
        audit.record(session, actor="test", action="probe.half", target_type="probe", target_id=1)
        if flushed:
            session.flush()
        return run_job_outside_request(lambda: ran.append("job") or "ran")

    response = app.test_client().get("/probe/write-then-job")
    assert response.status_code == 500
    assert ran == []
    assert _events(seeded, "probe.half") == 0
