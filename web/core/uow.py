"""One unit of work per request.

The first call to :func:`request_uow` in a request opens ``runtime.db.unit_of_work()``;
the app then ends it once, after the view has produced its response and before the
response is sent:

* the response is a success (status < 400): commit, then run the actions queued with
  ``request_uow().after_commit(...)`` (cloud calls, scheduler kicks …);
* the view raised, or the response is an error (status >= 400, which includes every
  domain error the error handlers map to HTTP): roll back, and the after-commit actions
  never run.  A view that must keep its writes although it answers with an error (the
  audit record of a failed login) calls :func:`keep_changes_on_error`;
* a view that caught a domain error and still answers with a success (a redirect with
  a flash message) calls :func:`discard_changes` so half-done writes are rolled back;
* a view that caught a domain error and re-renders a page from the database (a form
  with the error in it) calls :func:`restart_request_uow` first: the failed attempt is
  rolled back at once and the page reads the committed state;
* a view that must answer with what a cloud says now runs the job-shaped service through
  :func:`run_job_outside_request`: no transaction is open around the cloud calls.

If the commit itself fails, the response is replaced by a 500 error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Flask, Response, current_app, g
from sqlalchemy import event
from sqlalchemy.orm import Session

from cloudmgr.db import UnitOfWork
from cloudmgr.runtime import Runtime

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_UOW = "_cloudmgr_uow"
_KEEP = "_cloudmgr_uow_keep_on_error"
_DISCARD = "_cloudmgr_uow_discard"


def runtime() -> Runtime:
    """The runtime of the current app (settings, database, cloud providers)."""
    rt: Runtime = current_app.extensions["cloudmgr"]
    return rt


def request_uow() -> UnitOfWork:
    """The request's unit of work, opened on first use."""
    uow: UnitOfWork | None = g.get(_UOW)
    if uow is None:
        uow = runtime().db.unit_of_work()
        uow.__enter__()
        setattr(g, _UOW, uow)
        # Remembered for run_job_outside_request: a flush empties session.new/dirty/deleted.
        event.listen(uow.session, "after_flush", _mark_flushed)
    return uow


def _mark_flushed(session: Session, _context: object) -> None:
    session.info["request_flushed"] = True


def _has_changes(session: Session) -> bool:
    return bool(session.info.get("request_flushed") or session.new or session.dirty or session.deleted)


def keep_changes_on_error() -> None:
    """Commit this request's writes even if the response is an error."""
    setattr(g, _KEEP, True)


def discard_changes() -> None:
    """Roll back this request's writes even if the response is a success."""
    setattr(g, _DISCARD, True)


def restart_request_uow() -> None:
    """Roll back everything this request has written so far and start afresh.

    For a view that caught a domain error half-way through a service call and now renders
    a page from the database: the next :func:`request_uow` opens a new unit of work, so
    the page shows the committed state, never the failed attempt's flushed rows.  ORM
    objects loaded before are detached: load what the page needs again.
    """
    _finish(commit=False)


def run_job_outside_request(job: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a job-shaped service for a view that must answer with what a cloud says now
    (the move a person asked for, refused or stored; a snapshot; a plan; a wave's check).

    Such a service takes the ``Database``, opens short units of work of its own and reads
    the cloud between them.  The request's unit of work is ended first, so no transaction
    is open across the cloud calls (on SQLite a transaction holds the write lock from its
    start).  What it holds then is the log-in's bookkeeping (an API token's last use),
    committed; a change of the view's own would be committed half-way through the request,
    so it is refused: a view writes through session services or runs a job, never both.
    The next :func:`request_uow` opens a new unit of work for the page or JSON the view
    renders afterwards.
    """
    uow: UnitOfWork | None = g.get(_UOW)
    if uow is not None and _has_changes(uow.session):
        raise RuntimeError("a view changed the database before running a job: write through a service instead")
    _finish(commit=True)
    return job(*args, **kwargs)


class CommitFailed(Exception):
    """The request's transaction could not be committed."""


def _finish(*, commit: bool) -> None:
    uow: UnitOfWork | None = g.pop(_UOW, None)
    if uow is None:
        return
    if commit:
        try:
            uow.__exit__(None, None, None)  # commits, closes, then runs the after-commit actions
        except Exception as exc:
            raise CommitFailed(str(exc)) from exc
    else:
        uow.__exit__(RuntimeError, RuntimeError("request failed"), None)  # rolls back and closes


def end_request_uow(response: Response) -> Response:
    """``after_request``: commit or roll back (see the module docstring)."""
    commit = not g.get(_DISCARD) and (response.status_code < 400 or bool(g.get(_KEEP)))
    try:
        _finish(commit=commit)
    except CommitFailed:
        log.exception("commit of the request's unit of work failed")
        from web.core.errors import error_response

        return error_response(500, minimal=True)
    return response


def teardown_request_uow(exc: BaseException | None) -> None:
    """``teardown_request``: a unit of work still open here (an exception escaped the
    error handlers, or after_request did not run) is rolled back."""
    if g.get(_UOW) is not None:
        _finish(commit=False)


def init_app(app: Flask) -> None:
    app.after_request(end_request_uow)
    app.teardown_request(teardown_request_uow)
