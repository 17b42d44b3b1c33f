"""The registry of periodic jobs.

Each job is a module-level function (so the persistent job store can name it) that
opens its own unit of work through the runtime and is safe to run twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from cloudmgr.metrics import CLOUD_SYNC_PROBLEMS, JOB_RUNS, JOB_SECONDS
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
    seconds: int


@instrumented("clouds.sync")
def sync_clouds_job() -> None:
    from cloudmgr.organisation.sync import sync_clouds

    runtime = get_runtime()
    for result in sync_clouds(runtime.db, runtime.providers, actor="system:clouds.sync"):
        CLOUD_SYNC_PROBLEMS.labels(cloud=result.cloud_key).set(len(result.problems))


@instrumented("quotas.reconcile")
def reconcile_quotas_job() -> None:
    from cloudmgr.quotas.services import reconcile

    runtime = get_runtime()
    result = reconcile(runtime.db, runtime.providers)
    for problem in result.problems:
        log.warning("quota reconcile: %s", problem)


PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("clouds.sync", sync_clouds_job, 30 * 60),
    PeriodicJob("quotas.reconcile", reconcile_quotas_job, 5 * 60),
)
