"""Enqueue, claim, finish and retry work items; leases for the scheduler leader."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudmgr.db import Database, utcnow
from cloudmgr.metrics import JOB_RUNS, JOB_SECONDS
from cloudmgr.workqueue.models import Lease, WorkItem, WorkState

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(seconds=120)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class RetryLater(Exception):
    """Raised by a handler: the work could not be done now (the cloud is unreachable…).

    ``hold_until``: until then the item is retried whatever its attempts (a cloud that is down
    within its grace period: the work waits for it rather than failing)."""

    def __init__(self, message: str, *, delay: float | None = None, hold_until: datetime | None = None) -> None:
        super().__init__(message)
        self.delay = delay
        self.hold_until = hold_until


class GiveUp(Exception):
    """Raised by a handler: the work can never succeed; the item ends failed."""


def enqueue(
    session: Session,
    kind: str,
    key: str,
    payload: Mapping[str, Any] | None = None,
    *,
    delay: timedelta | None = None,
    max_attempts: int = 8,
) -> WorkItem:
    """Queue work in the caller's transaction; an item already queued or running for ``key`` is reused."""
    existing = session.scalar(
        select(WorkItem).where(
            WorkItem.key == key, WorkItem.state.in_([WorkState.QUEUED.value, WorkState.RUNNING.value])
        )
    )
    if existing is not None:
        return existing
    item = WorkItem(
        kind=kind,
        key=key,
        payload=dict(payload or {}),
        state=WorkState.QUEUED.value,
        run_after=utcnow() + (delay or timedelta()),
        max_attempts=max_attempts,
    )
    session.add(item)
    session.flush()
    return item


@dataclass(frozen=True)
class ClaimedItem:
    id: int
    kind: str
    key: str
    payload: Mapping[str, Any]
    attempts: int
    max_attempts: int
    lease_owner: str


def claim(
    db: Database, *, owner: str, lease: timedelta = DEFAULT_LEASE, kinds: set[str] | None = None
) -> ClaimedItem | None:
    """Take the oldest due item (or one whose lease expired) for ``owner``."""
    with db.unit_of_work() as uow:
        now = utcnow()
        query = (
            select(WorkItem)
            .where(
                or_(
                    (WorkItem.state == WorkState.QUEUED.value) & (WorkItem.run_after <= now),
                    (WorkItem.state == WorkState.RUNNING.value) & (WorkItem.lease_expires_at < now),
                )
            )
            .order_by(WorkItem.run_after, WorkItem.id)
            .limit(1)
            # PostgreSQL: concurrent workers skip each other's rows; SQLite serialises writers anyway.
            .with_for_update(skip_locked=True)
        )
        if kinds:
            query = query.where(WorkItem.kind.in_(kinds))
        item = uow.session.scalar(query)
        if item is None:
            return None
        item.state = WorkState.RUNNING.value
        item.lease_owner = owner
        item.lease_expires_at = now + lease
        item.attempts += 1
        return ClaimedItem(item.id, item.kind, item.key, dict(item.payload), item.attempts, item.max_attempts, owner)


def renew(db: Database, item: ClaimedItem, *, lease: timedelta = DEFAULT_LEASE) -> bool:
    """Extend the lease while a long handler works; False when someone else took the item."""
    with db.unit_of_work() as uow:
        result = uow.session.execute(
            update(WorkItem)
            .where(WorkItem.id == item.id, WorkItem.lease_owner == item.lease_owner)
            .values(lease_expires_at=utcnow() + lease)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _finish(db: Database, item: ClaimedItem, **values: Any) -> None:
    with db.unit_of_work() as uow:
        uow.session.execute(
            update(WorkItem).where(WorkItem.id == item.id, WorkItem.lease_owner == item.lease_owner).values(**values)
        )


def complete(db: Database, item: ClaimedItem) -> None:
    _finish(db, item, state=WorkState.DONE.value, finished_at=utcnow(), lease_owner=None, lease_expires_at=None)


def backoff(attempts: int, *, base: float = 5.0, cap: float = 300.0) -> float:
    return float(min(cap, base * 2 ** max(attempts - 1, 0)))


def retry_later(
    db: Database, item: ClaimedItem, error: str, delay: float | None = None, *, hold_until: datetime | None = None
) -> bool:
    """Requeue with exponential backoff; returns False (and fails the item) after max_attempts,
    unless it is before ``hold_until``."""
    held = hold_until is not None and utcnow() < hold_until
    if item.attempts >= item.max_attempts and not held:
        fail(db, item, f"gave up after {item.attempts} attempts: {error}")
        return False
    wait = delay if delay is not None else backoff(item.attempts)
    _finish(
        db,
        item,
        state=WorkState.QUEUED.value,
        run_after=utcnow() + timedelta(seconds=wait),
        last_error=error,
        lease_owner=None,
        lease_expires_at=None,
    )
    return True


def fail(db: Database, item: ClaimedItem, error: str) -> None:
    _finish(
        db,
        item,
        state=WorkState.FAILED.value,
        last_error=error,
        finished_at=utcnow(),
        lease_owner=None,
        lease_expires_at=None,
    )


Handler = Callable[[Database, ClaimedItem], None]


class Worker:
    """Runs claimed items through their kind's handler."""

    def __init__(self, db: Database, handlers: Mapping[str, Handler], *, lease: timedelta = DEFAULT_LEASE) -> None:
        self.db = db
        self.handlers = dict(handlers)
        self.lease = lease
        self.owner = worker_identity()

    def run_one(self) -> bool:
        """Claim and run one item; False when nothing was due."""
        item = claim(self.db, owner=self.owner, lease=self.lease, kinds=set(self.handlers))
        if item is None:
            return False
        handler = self.handlers[item.kind]
        started = time.perf_counter()
        outcome = "success"
        try:
            handler(self.db, item)
        except RetryLater as exc:
            outcome = "retry"
            log.warning("work %s (%s) will be retried: %s", item.id, item.key, exc)
            if not retry_later(self.db, item, str(exc), exc.delay, hold_until=exc.hold_until):
                outcome = "failure"
                self._on_give_up(item, str(exc))
            return True
        except GiveUp as exc:
            outcome = "failure"
            fail(self.db, item, str(exc))
            self._on_give_up(item, str(exc))
            return True
        except Exception as exc:  # an unexpected bug: retry with backoff, keep the trace in the log
            outcome = "failure"
            log.exception("work %s (%s) failed", item.id, item.key)
            if not retry_later(self.db, item, f"{type(exc).__name__}: {exc}"):
                self._on_give_up(item, str(exc))
            return True
        finally:
            JOB_RUNS.labels(job=f"work.{item.kind}", outcome=outcome).inc()
            JOB_SECONDS.labels(job=f"work.{item.kind}").observe(time.perf_counter() - started)
        complete(self.db, item)
        return True

    def _on_give_up(self, item: ClaimedItem, error: str) -> None:
        on_give_up = getattr(self.handlers[item.kind], "on_give_up", None)
        if on_give_up is not None:
            try:
                on_give_up(self.db, item, error)
            except Exception:
                log.exception("give-up hook of work %s failed", item.id)

    def drain(self, *, max_items: int = 50) -> int:
        done = 0
        while done < max_items and self.run_one():
            done += 1
        return done


# --- leases ----------------------------------------------------------------------------------


def acquire_lease(db: Database, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew the lease ``name`` for ``holder``; True when ``holder`` now holds it."""
    now = utcnow()
    with db.unit_of_work() as uow:
        result = uow.session.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
            .values(holder=holder, expires_at=now + ttl)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            return True
        if uow.session.get(Lease, name) is not None:
            return False
    try:
        with db.unit_of_work() as uow:
            uow.session.add(Lease(name=name, holder=holder, expires_at=now + ttl, acquired_at=now))
        return True
    except IntegrityError:  # another process created it first
        return False


def release_lease(db: Database, name: str, holder: str) -> None:
    with db.unit_of_work() as uow:
        lease = uow.session.get(Lease, name)
        if lease is not None and lease.holder == holder:
            lease.expires_at = utcnow()


def lease_holder(db: Database, name: str) -> tuple[str, bool] | None:
    with db.unit_of_work() as uow:
        lease = uow.session.get(Lease, name)
        if lease is None:
            return None
        return lease.holder, lease.expires_at > utcnow()
