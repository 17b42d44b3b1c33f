from __future__ import annotations

from cloudmgr.errors import Conflict, NotFound, ValidationFailed


class QuotaFilesInvalid(ValidationFailed):
    """The quota files have problems; ``problems`` holds each as 'file:line: message'."""

    code = "quota_files_invalid"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class QuotaExceeded(Conflict):
    """A reservation does not fit: names the resource, the limit and what is free."""

    code = "quota_exceeded"

    def __init__(self, *, department: str, cloud: str, resource: str, limit: int, free: int, asked: int) -> None:
        super().__init__(
            f"quota exceeded on {cloud} for {department}: {resource} limit {limit}, {free} free, {asked} requested"
        )
        self.department, self.cloud, self.resource = department, cloud, resource
        self.limit, self.free, self.asked = limit, free, asked


class NoQuota(NotFound):
    code = "no_quota"


class QuotaBelowUsage(ValidationFailed):
    code = "quota_below_usage"


class QuotaChangeInvalid(ValidationFailed):
    code = "quota_change_invalid"


class ReservationNotFound(NotFound):
    code = "reservation_not_found"


class QuotaChangeNotFound(NotFound):
    code = "quota_change_not_found"
