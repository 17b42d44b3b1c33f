from __future__ import annotations

from cloudmgr.errors import Conflict, NotFound, ValidationFailed


class WaveNotFound(NotFound):
    code = "wave_not_found"


class WaveStateConflict(Conflict):
    code = "wave_state"


class WaveMemberRefused(Conflict):
    """A system cannot join (or leave) the wave: wrong zone, already in a wave, out of scope…"""

    code = "wave_member_refused"


class WaveDoesNotFit(Conflict):
    """The wave's last check found it does not fit (quota or capacity): it cannot start."""

    code = "wave_does_not_fit"


class WaveInvalid(ValidationFailed):
    code = "wave_invalid"


class RoomNotFound(NotFound):
    code = "server_room_not_found"


class RoomNotEmpty(Conflict):
    code = "server_room_not_empty"


class ProgrammeFileInvalid(ValidationFailed):
    code = "programme_file_invalid"
