from __future__ import annotations

from datetime import datetime

from cloudmgr.errors import DomainError, PermissionDenied, ValidationFailed


class PasswordRejected(ValidationFailed):
    """The password does not meet the policy; the message says which rule."""

    code = "weak_password"


class PasswordUnchanged(PasswordRejected):
    """The new password is the current one: after an administrator's reset, the administrator knows it."""

    code = "password_unchanged"


class AccountLocked(PermissionDenied):
    """Too many failed log-ins: refused until ``until`` whatever the password."""

    code = "account_locked"
    http_status = 429

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class AddressLocked(AccountLocked):
    """Too many failed log-ins from one client address (any usernames): refused until ``until``."""

    code = "address_locked"


class AccountDisabled(PermissionDenied):
    """The account was disabled by an administrator: no log-in, whatever the password."""

    code = "account_disabled"


class NoMappedRole(PermissionDenied):
    """The external account authenticated but none of its roles or groups maps to a cloudmgr role
    (or a department role without a department)."""

    code = "no_mapped_role"


class IdentityBackendUnavailable(DomainError):
    """Keystone or the LDAP server did not answer."""

    code = "identity_backend_unavailable"
    http_status = 503


class MappingFileInvalid(ValidationFailed):
    code = "identity_mapping_invalid"


class ExternalAccount(ValidationFailed):
    """The account's password lives in Keystone or LDAP, not here."""

    code = "external_account"


class DirectoryAccountLocked(PermissionDenied):
    """The LDAP directory has locked the account (its password policy: ``pwdAccountLockedTime``):
    refused whatever the password, until the directory's administrators unlock it."""

    code = "directory_account_locked"
