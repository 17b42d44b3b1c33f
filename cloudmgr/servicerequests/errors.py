from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from cloudmgr.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cloudmgr.messages import Message


class RequestNotFound(NotFound):
    code = "request_not_found"


class ServerNotFound(NotFound):
    code = "server_not_found"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class ChoiceProblem(enum.StrEnum):
    """What is wrong with one of a request's choices for a usable VM (issue 16); the web
    shows each in the user's language, the API and the logs in English."""

    DISK_SIZE = "disk_size"
    TOO_MANY_DISKS = "too_many_disks"
    DISK_TYPE = "disk_type"
    USER_DATA_TOO_LONG = "user_data_too_long"
    USER_DATA_NUL = "user_data_nul"
    SSH_KEY_NOT_FOUND = "ssh_key_not_found"
    ADDRESS_ZONE = "address_zone"
    ADDRESS_NOT_OFFERED = "address_not_offered"
    FIREWALL_TEMPLATE = "firewall_template"
    # Deleting a server with data volumes: whether they are kept or deleted was not said.
    VOLUMES_CHOICE = "volumes_choice"


#: The English text of each problem; ``%(...)s`` take the problem's params.
CHOICE_PROBLEM_TEXT: dict[ChoiceProblem, str] = {
    ChoiceProblem.DISK_SIZE: "%(field)s: a data disk is a whole number of GB from 1 to %(max_gb)s",
    ChoiceProblem.TOO_MANY_DISKS: "%(field)s: at most %(max_disks)s data disks per VM",
    ChoiceProblem.DISK_TYPE: "%(field)s: choose a volume type offered on this cloud",
    ChoiceProblem.USER_DATA_TOO_LONG: "%(field)s: at most %(max_kib)s KiB (UTF-8)",
    ChoiceProblem.USER_DATA_NUL: "%(field)s: must not contain NUL characters",
    ChoiceProblem.SSH_KEY_NOT_FOUND: "%(field)s: no such SSH key of yours in this department",
    ChoiceProblem.ADDRESS_ZONE: "%(field)s: a public address is only given in the internet zone, not in %(zone)s",
    ChoiceProblem.ADDRESS_NOT_OFFERED: "%(field)s: this cloud offers no public addresses",
    ChoiceProblem.FIREWALL_TEMPLATE: "%(field)s: choose firewall templates from the list (GET /firewall/templates)",
    ChoiceProblem.VOLUMES_CHOICE: (
        "%(field)s: the server has %(count)s data volume(s); say whether they are kept or deleted (keep or delete)"
    ),
}


@dataclass(frozen=True)
class FieldProblem:
    field: str  # as the API names it: "data_disks[2].size_gb", "user_data", ...
    code: ChoiceProblem
    params: dict[str, str | int] = dataclasses.field(default_factory=dict)

    @property
    def message(self) -> str:
        return CHOICE_PROBLEM_TEXT[self.code] % {"field": self.field, **self.params}


class RequestInvalid(ValidationFailed):
    code = "request_invalid"

    def __init__(
        self, message: str | Message, problems: tuple[FieldProblem, ...] = (), *, other_problems: str = ""
    ) -> None:
        super().__init__(message)
        #: The problems of the choices for a usable VM, for showing them translated, and the
        #: form's other problems (English) found with them.
        self.problems = problems
        self.other_problems = other_problems


class NotYourTurn(PermissionDenied):
    code = "not_your_turn"


class NotYourDepartment(PermissionDenied):
    code = "not_your_department"
