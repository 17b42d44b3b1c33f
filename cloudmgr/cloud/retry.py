"""Retry with exponential backoff for calls to a cloud.

Small on purpose (no dependency): clouds of the province are reached over WAN links where
a dropped connection or a 503 while a service restarts is routine and goes away on its own.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from cloudmgr.cloud.errors import CloudError, CloudUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry.

    ``attempts`` counts every try including the first; delays grow as
    ``base_delay * multiplier**n`` up to ``max_delay``, each scaled by a random factor
    in [1 - jitter, 1] so that many workers hitting a recovering cloud do not retry in step.
    """

    attempts: int = 4
    base_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 8.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def delay(self, retry_number: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        raw = min(self.max_delay, self.base_delay * self.multiplier ** (retry_number - 1))
        return raw * (1.0 - self.jitter * rng())


NO_RETRY = RetryPolicy(attempts=1)


def is_retryable(error: CloudError) -> bool:
    """Safe to resend an idempotent call: any transient failure."""
    return error.retryable


def is_retryable_unsent(error: CloudError) -> bool:
    """Safe to resend a call that must not run twice: only if the cloud never acted on it."""
    return isinstance(error, CloudUnavailable) and not error.request_reached_server


def call_with_retry(
    operation: Callable[[], T],
    policy: RetryPolicy,
    *,
    description: str = "cloud call",
    should_retry: Callable[[CloudError], bool] = is_retryable,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``operation``; when it raises a CloudError that ``should_retry`` accepts, wait and
    run it again, up to ``policy.attempts`` tries in all.  The last error propagates.

    Only CloudError is considered: ``operation`` is expected to translate backend errors
    first, so anything else is a bug and is not retried.
    """
    retry_number = 0
    while True:
        try:
            return operation()
        except CloudError as error:
            retry_number += 1
            if retry_number >= policy.attempts or not should_retry(error):
                raise
            wait = policy.delay(retry_number)
            log.warning(
                "%s failed (%s); retry %d of %d in %.1fs",
                description,
                error,
                retry_number,
                policy.attempts - 1,
                wait,
            )
            sleep(wait)
