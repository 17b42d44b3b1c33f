from __future__ import annotations

from cloudmgr.errors import NotFound, ValidationFailed


class UnknownCloud(NotFound):
    code = "cloud_unknown"


class SyncRefused(ValidationFailed):
    """A sync asked for something it cannot do (a delta of one project, a page size out of range)."""

    code = "server_sync_refused"
