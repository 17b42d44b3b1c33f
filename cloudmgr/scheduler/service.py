"""Building and running the scheduler."""

from __future__ import annotations

import logging
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from cloudmgr.db import Database
from cloudmgr.scheduler.jobs import PERIODIC_JOBS

log = logging.getLogger(__name__)

JOBS_TABLE = "scheduler_jobs"


def configure(scheduler: BaseScheduler, db: Database, *, max_workers: int = 4) -> BaseScheduler:
    """Attach the database job store and register the periodic jobs (idempotently)."""
    scheduler.configure(
        jobstores={"default": SQLAlchemyJobStore(engine=db.engine, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        timezone="UTC",
    )
    return scheduler


def register_periodic_jobs(scheduler: BaseScheduler) -> None:
    for job in PERIODIC_JOBS:
        scheduler.add_job(job.func, "interval", seconds=job.seconds, id=job.id, replace_existing=True)


def run_blocking(db: Database, **scheduler_kwargs: Any) -> None:
    scheduler = configure(BlockingScheduler(**scheduler_kwargs), db)
    register_periodic_jobs(scheduler)
    log.info("scheduler starting with jobs: %s", ", ".join(j.id for j in PERIODIC_JOBS))
    scheduler.start()
