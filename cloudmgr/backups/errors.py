"""Refusals of the snapshot and backup services (the web maps ``code`` and ``http_status``)."""

from __future__ import annotations

from cloudmgr.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


class VolumeNotFound(NotFound):
    """No such volume, or another department's (the wall: it is not shown to exist)."""

    code = "volume_not_found"


class CopyNotFound(NotFound):
    """No such snapshot or backup of a volume the actor may see."""

    code = "copy_not_found"


class NotYourVolume(PermissionDenied):
    """The actor sees the volume (an auditor, finance) but does not act on volumes."""

    code = "not_your_volume"


class VolumeNotReady(Conflict):
    """The volume (or the copy) is not in a state the action needs: not made yet, failed, deleted."""

    code = "volume_not_ready"


class ScheduleInvalid(ValidationFailed):
    """A schedule field out of its range; ``field`` names it."""

    code = "schedule_invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
