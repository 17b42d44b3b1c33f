"""Building and running the scheduler.

Several scheduler processes may run; exactly one is the leader, holding the "scheduler"
lease in the database.  The others stand by and take over when the leader's lease runs
out (it renews it every few seconds while alive).  Jobs are safe to run twice anyway.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from cloudmgr.db import Database
from cloudmgr.scheduler.jobs import PeriodicJob, periodic_jobs
from cloudmgr.workqueue.services import acquire_lease, release_lease, worker_identity

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


def run_blocking(
    db: Database,
    *,
    work_poll_seconds: float = 2.0,
    lease_seconds: int = 30,
    stop: threading.Event | None = None,
) -> None:
    """Stand by until this process holds the leader lease, then run the jobs until stopped
    or until the lease is lost (then exit: a supervisor restarts us as a stand-by)."""
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

    while not stop.is_set() and not acquire_lease(db, LEADER_LEASE, me, ttl):
        log.info("scheduler standing by: another process holds the leader lease")
        stop.wait(renew_every)
    if stop.is_set():
        return
    log.info("scheduler %s is the leader", me)
    scheduler = configure(BackgroundScheduler(), db)
    scheduler.start(paused=True)
    register_periodic_jobs(scheduler, periodic_jobs(work_poll_seconds))
    scheduler.resume()
    try:
        while not stop.wait(renew_every):
            if not acquire_lease(db, LEADER_LEASE, me, ttl):
                log.error("leader lease lost: stopping so a stand-by takes over cleanly")
                break
    finally:
        scheduler.shutdown(wait=True)
        release_lease(db, LEADER_LEASE, me)
