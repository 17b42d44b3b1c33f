"""Cloud reachability, recorded once for every place that talks to a cloud.

The cloud adapters tell an observer whether each call reached the cloud
(:mod:`cloudmgr.cloud.reachability`); the registry gives every provider a
:class:`ReachabilityRecorder` of this module, so sync, provisioning, capacity, orphans, quota
reconcile, moves and the pages all record the same way without doing anything themselves.
The table ``cloud_reachability`` holds, per cloud, the last success, the last failure with its
kind and detail, and since when the cloud is unreachable (cleared by the next success).

Work on an unreachable cloud waits for it (:func:`retry_when_back`): it is retried with a
bounded backoff and never failed within the grace period, while every other cloud's work goes on.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.cloud import CloudUnavailable
from cloudmgr.cloud.reachability import unreachable_cause
from cloudmgr.config import Settings
from cloudmgr.db import Database, unit_of_work_open, utcnow
from cloudmgr.organisation.models import Cloud, CloudReachability, DepartmentCloud
from cloudmgr.workqueue.services import ClaimedItem, Handler, RetryLater, backoff

log = logging.getLogger(__name__)

#: One process writes the same outcome for a cloud at most this often (a busy worker's every
#: call succeeds; the table needs the news, not each call).
RECORD_EVERY = timedelta(seconds=15)
DETAIL_LENGTH = 500

# The kinds of failure to reach a cloud (the pages say them in words: web.common.cloud_status).
REFUSED = "refused"  # nothing answered: connection refused, no route, name unknown
LOST = "lost"  # the connection dropped or no answer came in time


@dataclass(frozen=True)
class CloudStatus:
    """A cloud's reachability as the pages show it."""

    cloud_key: str
    name_zh: str
    name_en: str
    last_success_at: datetime | None
    last_failure_at: datetime | None
    unreachable_since: datetime | None
    failure_kind: str | None
    failure_detail: str | None

    @property
    def reachable(self) -> bool:
        return self.unreachable_since is None

    def display_name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_zh


def failure_kind(error: CloudUnavailable) -> str:
    return LOST if error.request_reached_server else REFUSED


def record_success(db: Database, cloud_key: str, *, at: datetime | None = None) -> None:
    """The cloud answered: it is reachable (again)."""
    at = at or utcnow()
    with db.unit_of_work() as uow:
        row = _row(uow.session, cloud_key)
        if row is None:
            return
        if row.unreachable_since is not None:
            log.info("cloud %s is reachable again (unreachable since %s)", cloud_key, row.unreachable_since)
        row.last_success_at = at
        row.unreachable_since = None


def record_failure(db: Database, cloud_key: str, error: CloudUnavailable, *, at: datetime | None = None) -> None:
    """A call could not reach the cloud: unreachable since now, or since the first failure."""
    at = at or utcnow()
    with db.unit_of_work() as uow:
        row = _row(uow.session, cloud_key)
        if row is None:
            return
        if row.unreachable_since is None:
            log.warning("cloud %s is unreachable: %s", cloud_key, error)
            row.unreachable_since = at
        row.last_failure_at = at
        row.failure_kind = failure_kind(error)
        row.failure_detail = str(error)[:DETAIL_LENGTH]


def _row(session: Session, cloud_key: str) -> CloudReachability | None:
    cloud_id = session.scalar(select(Cloud.id).where(Cloud.key == cloud_key))
    if cloud_id is None:  # a provider for a cloud not (or no longer) in the organisation
        return None
    row = session.get(CloudReachability, cloud_id, with_for_update=True)
    if row is None:
        row = CloudReachability(cloud_id=cloud_id)
        session.add(row)
    return row


class ReachabilityRecorder:
    """The observer of one cloud's provider in this process (see cloudmgr.cloud.reachability).

    An outcome is written when it differs from the one this process wrote last, or that one is
    older than RECORD_EVERY.  A call made inside a unit of work (a page reading as it calls the
    cloud) is noted and written by the next call outside one: writing from inside would wait on
    the thread's own transaction with SQLite's one write lock."""

    def __init__(self, db: Database, cloud_key: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._cloud_key = cloud_key
        self._clock = clock
        self._lock = threading.Lock()
        self._written: tuple[bool, float] | None = None  # (reached, when written)
        self._pending: tuple[datetime, CloudUnavailable | None] | None = None

    def reached(self) -> None:
        self._observe(None)

    def unreachable(self, error: CloudUnavailable) -> None:
        # Which cloud, for the work queue's wait (waits_for_unreachable_clouds): the error
        # knows only the adapter's name of it.
        error.cloud_key = self._cloud_key
        self._observe(error)

    def _observe(self, error: CloudUnavailable | None) -> None:
        reached = error is None
        now = self._clock()
        with self._lock:
            written = self._written
            if written is not None and written[0] == reached and now - written[1] < RECORD_EVERY.total_seconds():
                return
            self._pending = (utcnow(), error)
            if unit_of_work_open():
                return
            at, pending_error = self._pending
            self._pending = None
            self._written = (reached, now)
        try:
            if pending_error is None:
                record_success(self._db, self._cloud_key, at=at)
            else:
                record_failure(self._db, self._cloud_key, pending_error, at=at)
        except Exception:
            with self._lock:
                self._written = None  # try again at the next call
            raise


def recorder_factory(db: Database) -> Callable[[str], ReachabilityRecorder]:
    """What the provider registry gives each cloud's provider."""
    return lambda cloud_key: ReachabilityRecorder(db, cloud_key)


# --- reading -----------------------------------------------------------------------------------


def cloud_statuses(session: Session, *, cloud_keys: Iterable[str] | None = None) -> list[CloudStatus]:
    """The enabled clouds' reachability (all, or ``cloud_keys``), in the clouds' order."""
    query = (
        select(Cloud, CloudReachability)
        .outerjoin(CloudReachability, CloudReachability.cloud_id == Cloud.id)
        .where(Cloud.enabled.is_(True))
        .order_by(Cloud.id)
    )
    if cloud_keys is not None:
        query = query.where(Cloud.key.in_(list(cloud_keys)))
    return [_status(cloud, row) for cloud, row in session.execute(query)]


def department_cloud_statuses(session: Session, department_id: int) -> list[CloudStatus]:
    """The reachability of the clouds a department uses."""
    keys = session.scalars(
        select(Cloud.key)
        .join(DepartmentCloud, DepartmentCloud.cloud_id == Cloud.id)
        .where(DepartmentCloud.department_id == department_id)
    )
    return cloud_statuses(session, cloud_keys=list(keys))


def unreachable_clouds(statuses: Iterable[CloudStatus]) -> list[CloudStatus]:
    return [s for s in statuses if not s.reachable]


def is_unreachable(session: Session, cloud_key: str) -> bool:
    return any(not s.reachable for s in cloud_statuses(session, cloud_keys=[cloud_key]))


def _status(cloud: Cloud, row: CloudReachability | None) -> CloudStatus:
    return CloudStatus(
        cloud_key=cloud.key,
        name_zh=cloud.name_zh,
        name_en=cloud.name_en,
        last_success_at=row.last_success_at if row else None,
        last_failure_at=row.last_failure_at if row else None,
        unreachable_since=row.unreachable_since if row else None,
        failure_kind=row.failure_kind if row else None,
        failure_detail=row.failure_detail if row else None,
    )


# --- work on a cloud that is down ---------------------------------------------------------------


def retry_when_back(
    db: Database,
    cloud_key: str,
    error: BaseException,
    *,
    attempts: int,
    grace: timedelta,
    max_delay: float,
) -> RetryLater:
    """The RetryLater for work that found ``cloud_key`` unreachable: retried with a backoff of
    at most ``max_delay`` seconds (so the work resumes soon after the cloud is back), and held
    (never failed) until ``grace`` after the cloud went down."""
    with db.unit_of_work() as uow:
        row = _row(uow.session, cloud_key)
        since = row.unreachable_since if row is not None else None
    since = since or utcnow()
    return RetryLater(
        f"cloud {cloud_key} unreachable since {since.isoformat(timespec='seconds')}: {error}",
        delay=min(backoff(attempts), max_delay),
        hold_until=since + grace,
    )


def waits_for_unreachable_clouds(handler: Handler, settings: Callable[[], Settings]) -> Handler:
    """``handler``, whose work on a cloud that cannot be reached waits for it (retry_when_back,
    with the grace and retry of ``settings()``) instead of counting towards giving up.  Only
    that: a cloud answering 5xx, and every other failure, are retried and given up on as before.
    The handler's attributes (its give-up hook) are kept."""

    @functools.wraps(handler)
    def run(db: Database, item: ClaimedItem) -> None:
        try:
            handler(db, item)
        except (RetryLater, CloudUnavailable) as exc:
            held = _held(db, item, exc, settings())
            if held is None:
                raise
            raise held from exc

    return run


def _held(
    db: Database, item: ClaimedItem, error: RetryLater | CloudUnavailable, settings: Settings
) -> RetryLater | None:
    if isinstance(error, RetryLater) and error.hold_until is not None:
        return None
    cause = unreachable_cause(error)
    cloud_key = getattr(cause, "cloud_key", None) if cause is not None else None
    if cause is None or not cloud_key:
        return None
    return retry_when_back(
        db,
        cloud_key,
        cause,
        attempts=item.attempts,
        grace=timedelta(seconds=settings.cloud_unreachable_grace_seconds),
        max_delay=settings.cloud_unreachable_retry_seconds,
    )
