from __future__ import annotations

from cloudmgr.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


class OrganisationFileInvalid(ValidationFailed):
    """The clouds or departments file is malformed; the message names the file and entry."""

    code = "organisation_file_invalid"


class UnknownCloud(NotFound):
    code = "unknown_cloud"


class UnknownDepartment(NotFound):
    code = "unknown_department"


class UnknownUser(NotFound):
    code = "unknown_user"


class UsernameTaken(Conflict):
    code = "username_taken"


class InvalidCredentials(PermissionDenied):
    code = "invalid_credentials"


class UnknownToken(NotFound):
    code = "unknown_token"


class OwnAccount(Conflict):
    """An administrator tried to disable their own account or change their own role."""

    code = "own_account"


class LastAdministrator(Conflict):
    """The change would leave no active administrator (disable, role change or delete)."""

    code = "last_administrator"


class UserHasHistory(Conflict):
    """The user is named by recorded work (requests, keys, purchases …): disable instead of deleting."""

    code = "user_has_history"
