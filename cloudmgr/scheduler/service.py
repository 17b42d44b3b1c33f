"""Building and running the scheduler.

Several scheduler processes may run; exactly one is the leader, holding the "scheduler"
lease in the database.  The others stand by and take over when the leader's lease runs
out (it renews it every few seconds while alive).  Jobs are safe to run twice anyway.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import timedelta
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from cloudmgr.db import Database
from cloudmgr.scheduler.jobs import PeriodicJob, periodic_jobs
from cloudmgr.workqueue.services import acquire_lease, lease_holder, release_lease, worker_identity

log = logging.getLogger(__name__)

JOBS_TABLE = "scheduler_jobs"
LEADER_LEASE = "scheduler"


def configure(scheduler: BaseScheduler, db: Database, *, max_workers: int = 6) -> BaseScheduler:
    """Attach the database job store."""
    scheduler.configure(
        jobstores={"default": SQLAlchemyJobStore(engine=db.engine, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        timezone="UTC",
    )
    return scheduler


def register_periodic_jobs(scheduler: BaseScheduler, jobs: tuple[PeriodicJob, ...] | None = None) -> None:
    for job in jobs or periodic_jobs():
        scheduler.add_job(job.func, "interval", seconds=job.seconds, id=job.id, replace_existing=True)


def _try_lease(db: Database, holder: str, ttl: timedelta) -> bool:
    """Take or renew the leader lease; a database error counts as "not held" (logged)."""
    try:
        return acquire_lease(db, LEADER_LEASE, holder, ttl)
    except Exception:  # the database restarting, a network blip: try again at the next beat
        log.exception("scheduler: could not reach the database for the leader lease")
        return False


def run_blocking(
    db: Database,
    *,
    work_poll_seconds: float = 2.0,
    lease_seconds: int = 30,
    stop: threading.Event | None = None,
) -> None:
    """Stand by until this process holds the leader lease, then run the jobs until stopped.

    The leader renews its lease every third of ``lease_seconds``.  When a renewal fails
    (another process took the lease, or the database cannot be reached until the lease
    runs out) it stops its jobs at once and goes back to standing by, so at most one
    process runs jobs once its lease has expired.  Jobs are safe to run twice anyway.
    """
    import cloudmgr.models  # noqa: F401  (every mapper registered before a job touches one)

    stop = stop or threading.Event()
    me = worker_identity()
    ttl = timedelta(seconds=lease_seconds)
    renew_every = max(lease_seconds / 3, 0.5)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    while not stop.is_set():
        log.info("scheduler %s standing by until it holds the leader lease", me)
        while not stop.is_set() and not _try_lease(db, me, ttl):
            log.debug("scheduler standing by: another process holds the leader lease")
            stop.wait(renew_every)
        if stop.is_set():
            return
        _lead(db, me, ttl, renew_every, work_poll_seconds, stop)


def _lead(
    db: Database, me: str, ttl: timedelta, renew_every: float, work_poll_seconds: float, stop: threading.Event
) -> None:
    held_until = time.monotonic() + ttl.total_seconds()
    log.info("scheduler %s is the leader", me)
    scheduler = configure(BackgroundScheduler(), db)
    scheduler.start(paused=True)
    register_periodic_jobs(scheduler, periodic_jobs(work_poll_seconds))
    scheduler.resume()
    try:
        while not stop.wait(renew_every):
            renewed_at = time.monotonic()
            if _try_lease(db, me, ttl):
                held_until = renewed_at + ttl.total_seconds()
                continue
            if lease_holder_safe(db) not in {None, me} or time.monotonic() + renew_every >= held_until:
                log.error("leader lease lost: stopping the jobs and standing by")
                break
    finally:
        # Stopping (SIGTERM): let running jobs finish.  Lease lost: do not wait for them.
        scheduler.shutdown(wait=stop.is_set())
        try:
            release_lease(db, LEADER_LEASE, me)
        except Exception:
            log.exception("scheduler: could not release the leader lease (it expires on its own)")


def lease_holder_safe(db: Database) -> str | None:
    """Who holds the leader lease now (None when nobody, or when the database cannot say)."""
    try:
        held = lease_holder(db, LEADER_LEASE)
    except Exception:
        return None
    return held[0] if held is not None and held[1] else None
