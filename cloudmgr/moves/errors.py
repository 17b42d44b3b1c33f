from __future__ import annotations

from cloudmgr.errors import Conflict, NotFound, ValidationFailed


class MoveNotFound(NotFound):
    code = "move_not_found"


class MoveInvalid(ValidationFailed):
    code = "move_invalid"


class InvalidMoveTransition(Conflict):
    code = "invalid_move_transition"


class MoveInProgress(Conflict):
    """Another open move already works on this server or host."""

    code = "move_in_progress"


class DrainRefused(Conflict):
    """The other hosts' free capacity cannot take the host's servers."""

    code = "drain_capacity_short"


class MoveCloudError(Conflict):
    """The cloud refused what the move needs to read or check before it starts."""

    code = "move_cloud_error"
