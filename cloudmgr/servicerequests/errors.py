from __future__ import annotations

from cloudmgr.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


class RequestNotFound(NotFound):
    code = "request_not_found"


class ServerNotFound(NotFound):
    code = "server_not_found"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class RequestInvalid(ValidationFailed):
    code = "request_invalid"


class NotYourTurn(PermissionDenied):
    code = "not_your_turn"


class NotYourDepartment(PermissionDenied):
    code = "not_your_department"
