"""The registry of periodic jobs and of work-queue handlers.

Each job is a module-level function (so the persistent job store can name it) that
opens its own units of work through the runtime and is safe to run twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from cloudmgr.config import Settings
from cloudmgr.metrics import CLOUD_SYNC_PROBLEMS, JOB_RUNS, JOB_SECONDS
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import get_runtime

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def instrumented(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Count runs and failures and time each run of a job."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                result = func(*args, **kwargs)
            except Exception:
                JOB_RUNS.labels(job=name, outcome="failure").inc()
                log.exception("job %s failed", name)
                raise
            finally:
                JOB_SECONDS.labels(job=name).observe(time.perf_counter() - started)
            JOB_RUNS.labels(job=name, outcome="success").inc()
            return result

        return run

    return decorate


@dataclass(frozen=True)
class PeriodicJob:
    id: str
    func: Callable[[], Any]
    seconds: float


@instrumented("clouds.sync")
def sync_clouds_job() -> None:
    from cloudmgr.catalog.services import read_rates, sync_catalog
    from cloudmgr.organisation.sync import sync_clouds

    runtime = get_runtime()
    for result in sync_clouds(runtime.db, runtime.providers, actor=Actor.system("clouds.sync")):
        CLOUD_SYNC_PROBLEMS.labels(cloud=result.cloud_key).set(len(result.problems))
    sync_catalog(
        runtime.db, runtime.providers, read_rates(runtime.settings.rates_file), actor=Actor.system("clouds.sync")
    )


@instrumented("quotas.reconcile")
def reconcile_quotas_job() -> None:
    from cloudmgr.quotas.services import reconcile

    runtime = get_runtime()
    result = reconcile(runtime.db, runtime.providers)
    for problem in result.problems:
        log.warning("quota reconcile: %s", problem)


@instrumented("requests.reconcile")
def reconcile_requests_job() -> None:
    from cloudmgr.servicerequests.jobs import reconcile_requests

    runtime = get_runtime()
    report = reconcile_requests(runtime.db, runtime.providers, hold_days=runtime.settings.reservation_hold_days)
    for problem in report.problems:
        log.warning("request reconcile: %s", problem)


@instrumented("requests.expiry")
def expiry_job() -> None:
    from cloudmgr.servicerequests.jobs import handle_expiry

    settings = get_runtime().settings
    handle_expiry(get_runtime().db, reminder_days=settings.expiry_reminder_days, grace_days=settings.expiry_grace_days)


@instrumented("capacity.snapshot")
def capacity_snapshot_job() -> None:
    from cloudmgr.capacity.config import read_capacity_file
    from cloudmgr.capacity.services import take_snapshots

    runtime = get_runtime()
    result = take_snapshots(runtime.db, runtime.providers, read_capacity_file(runtime.settings.capacity_file))
    for problem in result.problems:
        log.warning("capacity: %s", problem)


@instrumented("programme.daily")
def programme_daily_job() -> None:
    """The programme's snapshot of the day (idempotent per day) and the reminders."""
    from cloudmgr.programme.jobs import programme_daily_job as run

    run()


@instrumented("lines.daily")
def lines_daily_job() -> None:
    """The network programme's reminders: departments at risk or overdue, contracts ending soon."""
    from cloudmgr.lines.jobs import lines_daily_job as run

    run()


@instrumented("waves.progress")
def waves_progress_job() -> None:
    """Running migration waves whose systems have all settled are done."""
    from cloudmgr.programme.jobs import waves_progress_job as run

    run()


@instrumented("backups.schedules")
def backup_schedules_job() -> None:
    """Queue the due scheduled volume backups (one per schedule and period) and prune beyond keep."""
    from cloudmgr.backups.jobs import run_backup_schedules

    run = run_backup_schedules(get_runtime().db)
    for skipped in run.skipped:
        log.warning("backup schedules: %s", skipped)


def work_handlers() -> Mapping[str, Callable[..., None]]:
    from cloudmgr.backups.jobs import (
        handle_backup,
        handle_delete,
        handle_restore,
        handle_server_restore,
        handle_server_snapshot,
        handle_snapshot,
    )
    from cloudmgr.capacity.jobs import handle_consolidation_wave
    from cloudmgr.lines.jobs import handle_line_reminder
    from cloudmgr.moves.jobs import handle_move
    from cloudmgr.notifications.jobs import handle_notify
    from cloudmgr.organisation.jobs import handle_clouds_sync
    from cloudmgr.organisation.reachability import waits_for_unreachable_clouds
    from cloudmgr.programme.jobs import handle_programme_reminder
    from cloudmgr.purchases.jobs import handle_purchase_findings
    from cloudmgr.quotas.jobs import handle_quota_apply, handle_quota_push
    from cloudmgr.runbooks.jobs import handle_migrate_system, handle_run_step
    from cloudmgr.servicerequests.jobs import (
        handle_orphan_action,
        handle_provision,
        handle_resize,
        handle_server_action,
    )
    from cloudmgr.storage.jobs import handle_storage

    handlers: dict[str, Callable[..., None]] = {
        "provision": handle_provision,
        "resize": handle_resize,
        "server_action": handle_server_action,
        "storage": handle_storage,
        "orphan_action": handle_orphan_action,
        "notify": handle_notify,
        "programme.reminder": handle_programme_reminder,
        "lines.reminder": handle_line_reminder,
        "consolidation_wave": handle_consolidation_wave,
        "move": handle_move,
        "runbook.migrate_system": handle_migrate_system,
        "runbook.run_step": handle_run_step,
        "quota.push": handle_quota_push,
        "quotas.apply": handle_quota_apply,
        "clouds.sync_now": handle_clouds_sync,
        "purchase.findings": handle_purchase_findings,
        "backups.snapshot": handle_snapshot,
        "backups.backup": handle_backup,
        "backups.restore": handle_restore,
        "backups.delete": handle_delete,
        "backups.server_snapshot": handle_server_snapshot,
        "backups.server_restore": handle_server_restore,
    }
    # Work on a cloud that is down waits for it, whichever cloud and kind (issue 17).
    return {kind: waits_for_unreachable_clouds(handler, _settings) for kind, handler in handlers.items()}


def _settings() -> Settings:
    return get_runtime().settings


def _drain(kinds: set[str]) -> int:
    from cloudmgr.workqueue.services import Worker

    runtime = get_runtime()
    handlers = {k: v for k, v in work_handlers().items() if k in kinds}
    worker = Worker(runtime.db, handlers, lease=timedelta(seconds=runtime.settings.work_lease_seconds))
    return worker.drain()


def drain_cloud_work_job() -> None:
    """Work that talks to a cloud: provisioning, server and orphan actions, moves, quota pushes, purchase findings."""
    _drain(
        {
            "provision",
            "resize",
            "server_action",
            "orphan_action",
            "storage",
            "consolidation_wave",
            "move",
            "quota.push",
            "quotas.apply",
            "clouds.sync_now",
            "purchase.findings",
        }
    )


def drain_backup_work_job() -> None:
    """Volume and server snapshots, backups, restores and rebuilds (a backup may take minutes), drained
    apart: never delaying a boot."""
    from cloudmgr.backups.services import WORK_KINDS

    _drain(set(WORK_KINDS))


def drain_runbook_work_job() -> None:
    """Migration runbooks (Ansible: minutes to hours), drained apart so they never delay a boot."""
    _drain({"runbook.migrate_system", "runbook.run_step"})


def drain_notifications_job() -> None:
    """Notifications (fast), drained apart so a long boot never delays an e-mail."""
    _drain({"notify", "programme.reminder", "lines.reminder"})


def periodic_jobs(work_poll_seconds: float = 2.0) -> tuple[PeriodicJob, ...]:
    return (
        PeriodicJob("clouds.sync", sync_clouds_job, 30 * 60),
        PeriodicJob("quotas.reconcile", reconcile_quotas_job, 5 * 60),
        PeriodicJob("requests.reconcile", reconcile_requests_job, 60),
        PeriodicJob("requests.expiry", expiry_job, 60 * 60),
        PeriodicJob("capacity.snapshot", capacity_snapshot_job, 60 * 60),
        PeriodicJob("programme.daily", programme_daily_job, 60 * 60),
        PeriodicJob("lines.daily", lines_daily_job, 60 * 60),
        PeriodicJob("waves.progress", waves_progress_job, 60),
        PeriodicJob("backups.schedules", backup_schedules_job, 5 * 60),
        PeriodicJob("work.cloud", drain_cloud_work_job, work_poll_seconds),
        PeriodicJob("work.notify", drain_notifications_job, work_poll_seconds),
        PeriodicJob("work.runbooks", drain_runbook_work_job, work_poll_seconds),
        PeriodicJob("work.backups", drain_backup_work_job, work_poll_seconds),
    )


PERIODIC_JOBS = periodic_jobs()
