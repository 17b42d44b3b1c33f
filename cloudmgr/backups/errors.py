"""Refusals of the snapshot and backup services (the web maps ``code`` and ``http_status``)."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from cloudmgr.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed


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


# --- server snapshots, and deleting copies (issue 16) --------------------------------------------


class ServerNotFound(NotFound):
    """No such server, or another department's (the wall: it is not shown to exist)."""

    code = "server_not_found"


class NotYourServer(PermissionDenied):
    """The actor sees the server (an auditor, finance) but does not act on its snapshots."""

    code = "not_your_server"


class CopyProblem(enum.StrEnum):
    NAME = "name"
    SERVER_NOT_READY = "server_not_ready"
    SERVER_BUSY = "server_busy"
    SNAPSHOT_NOT_READY = "snapshot_not_ready"
    CONFIRM = "confirm"
    COPY_BUSY = "copy_busy"
    COPY_IN_USE = "copy_in_use"
    SCHEDULED_BACKUP = "scheduled_backup"


class CopyKind(enum.StrEnum):
    """What a refusal is about, for the page to name it in the reader's language."""

    SERVER_SNAPSHOT = "server snapshot"
    VOLUME_SNAPSHOT = "volume snapshot"
    BACKUP = "backup"


#: The English each problem is answered with (the API's ``message``; a page translates
#: ``problem`` with ``params`` instead).  The text before the colon is the field it is about.
PROBLEM_TEXT: Mapping[CopyProblem, str] = {
    CopyProblem.NAME: "name: 1 to %(max)s characters, no control characters",
    CopyProblem.SERVER_NOT_READY: (
        "server_id: server %(server)s is %(state)s; only a running or stopped server is snapshotted or restored"
    ),
    CopyProblem.SERVER_BUSY: (
        "server_id: server %(server)s has a snapshot or a restore under way; wait until it is done"
    ),
    CopyProblem.SNAPSHOT_NOT_READY: "snapshot_id: snapshot %(copy)s is %(state)s; only a ready snapshot is restored",
    CopyProblem.CONFIRM: (
        "confirm: type the server's name (%(server)s) to confirm that its root disk is replaced by the snapshot's"
    ),
    CopyProblem.COPY_BUSY: "id: %(kind)s %(copy)s is %(state)s; wait until that is done",
    CopyProblem.COPY_IN_USE: "id: %(kind)s %(copy)s is being restored; delete it once that is done",
    CopyProblem.SCHEDULED_BACKUP: (
        "id: backup %(copy)s belongs to the volume's schedule, which deletes its own beyond keep; "
        "lower keep or remove the schedule"
    ),
}


class CopyRefused(DomainError):
    """A refusal about a snapshot or backup: its ``problem``, the ``params`` the texts take and
    the ``field`` it is about."""

    def __init__(self, problem: CopyProblem, **params: str | int) -> None:
        self.problem = problem
        self.params: dict[str, str | int] = dict(params)
        text = PROBLEM_TEXT[problem] % self.params
        self.field = text.split(":", 1)[0]
        super().__init__(text)


class CopyInvalid(CopyRefused, ValidationFailed):
    code = "copy_invalid"


class CopyConflict(CopyRefused, Conflict):
    code = "copy_conflict"
