"""The scheduler keeps its jobs in cloudmgr's database and runs them instrumented."""

from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import inspect

from cloudmgr.metrics import REGISTRY
from cloudmgr.organisation.models import Cloud
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import PERIODIC_JOBS, sync_clouds_job
from cloudmgr.scheduler.service import JOBS_TABLE, configure, register_periodic_jobs


def test_jobs_are_stored_in_the_database_and_registered_once(runtime: Runtime) -> None:
    for _ in range(2):  # a restart registers the same jobs again without duplicating them
        scheduler = configure(BackgroundScheduler(), runtime.db)
        scheduler.start(paused=True)
        register_periodic_jobs(scheduler)
        assert sorted(j.id for j in scheduler.get_jobs()) == sorted(j.id for j in PERIODIC_JOBS)
        scheduler.shutdown(wait=False)
    assert JOBS_TABLE in inspect(runtime.db.engine).get_table_names()


def test_cloud_sync_job_syncs_and_counts_its_runs(seeded: Runtime) -> None:
    before = REGISTRY.get_sample_value("cloudmgr_job_runs_total", {"job": "clouds.sync", "outcome": "success"}) or 0
    sync_clouds_job()
    after = REGISTRY.get_sample_value("cloudmgr_job_runs_total", {"job": "clouds.sync", "outcome": "success"})
    assert after == before + 1
    with seeded.db.unit_of_work() as uow:
        clouds = uow.session.query(Cloud).all()
        assert clouds and all(c.synced_at is not None for c in clouds)
        assert all(z.network_id for c in clouds for z in c.zones)
