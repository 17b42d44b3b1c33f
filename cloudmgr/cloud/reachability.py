"""Telling someone whether a cloud answers: the adapter's side of cloud reachability.

A provider knows, at the one place every call goes through (the OpenStack adapter's ``_call``,
the simulator's transaction), whether it reached the cloud.  It tells its observer, which the
registry sets (:mod:`cloudmgr.organisation.reachability` records it for every process and page);
the adapter itself keeps no state and has no database.

"Unreachable" is a failure to talk to the cloud at all (nothing listens, the connection drops,
no answer in time): :class:`~cloudmgr.cloud.errors.CloudUnavailable` without an HTTP status.
A cloud that answers, even with a 5xx, is reachable; its refusals are the calls' own failures.
"""

from __future__ import annotations

import logging
from typing import Protocol

from cloudmgr.cloud.errors import (
    CloudBadRequest,
    CloudConflict,
    CloudError,
    CloudForbidden,
    CloudNotFound,
    CloudNoValidHost,
    CloudQuotaExceeded,
    CloudUnavailable,
)

log = logging.getLogger(__name__)


class ReachabilityObserver(Protocol):
    def reached(self) -> None:
        """A call reached the cloud and it answered."""

    def unreachable(self, error: CloudUnavailable) -> None:
        """A call could not reach the cloud."""


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` (or the CloudError it was raised from) says the cloud could not be reached."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, CloudUnavailable):
            return seen.status_code is None
        if isinstance(seen, CloudError):
            return False
        seen = seen.__cause__
    return False


def unreachable_cause(error: BaseException) -> CloudUnavailable | None:
    """The CloudUnavailable behind ``error`` when it says the cloud could not be reached."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, CloudUnavailable):
            return seen if seen.status_code is None else None
        seen = seen.__cause__
    return None


#: Refusals only a cloud that answered can make (the simulator raises them without a status).
ANSWERS = (CloudNotFound, CloudConflict, CloudBadRequest, CloudForbidden, CloudQuotaExceeded, CloudNoValidHost)


def tell(observer: ReachabilityObserver | None, error: BaseException | None) -> None:
    """Tell ``observer`` what a call's outcome says about reaching the cloud.  ``error`` None: it
    answered; a refusal with an HTTP status or of a kind only an answer gives: it answered too;
    anything else (a configuration problem, a bug) says nothing about the cloud.  The observer's
    own failures are logged, never raised into the cloud call."""
    if observer is None:
        return
    try:
        cause = unreachable_cause(error) if error is not None else None
        if cause is not None:
            observer.unreachable(cause)
        elif error is None or (
            isinstance(error, CloudError) and (error.status_code is not None or isinstance(error, ANSWERS))
        ):
            observer.reached()
    except Exception:
        log.exception("recording the cloud's reachability failed")
