"""Refusals of the SSH key services.  Each names the field it is about (``field``) so a form
can put it under that field; the English message is what the API answers, the pages show
their translation of ``problem``."""

from __future__ import annotations

import enum

from cloudmgr.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


class KeyProblem(enum.StrEnum):
    """Why pasted text is not an acceptable public key."""

    EMPTY = "empty"
    PRIVATE_KEY = "private_key"
    TOO_LONG = "too_long"
    MULTIPLE_LINES = "multiple_lines"
    NOT_OPENSSH = "not_openssh"
    UNSUPPORTED_TYPE = "unsupported_type"
    DSA = "dsa"
    RSA_TOO_SHORT = "rsa_too_short"
    MALFORMED = "malformed"


class NameProblem(enum.StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"
    CONTROL_CHARACTER = "control_character"
    TAKEN = "taken"


class KeyRefused(ValidationFailed):
    """The text is not an acceptable OpenSSH public key.  The message never quotes the text."""

    code = "ssh_key_invalid"
    field = "public_key"

    def __init__(self, problem: KeyProblem, message: str, *, bits: int | None = None) -> None:
        super().__init__(f"public_key: {message}")
        self.problem = problem
        self.bits = bits


class PrivateKeyPasted(KeyRefused):
    """A private key was pasted where the public key belongs: refused, and not stored anywhere."""

    code = "ssh_private_key_refused"

    def __init__(self) -> None:
        super().__init__(
            KeyProblem.PRIVATE_KEY,
            "this is a PRIVATE key; it was NOT stored. Paste the public key (the .pub file) instead, "
            "and replace this key pair if the private key may have been seen by others",
        )


class KeyNameInvalid(ValidationFailed):
    code = "ssh_key_name_invalid"
    field = "name"

    def __init__(self, problem: NameProblem, message: str) -> None:
        super().__init__(f"name: {message}")
        self.problem = problem


class KeyNameTaken(Conflict):
    code = "ssh_key_name_taken"
    field = "name"
    problem = NameProblem.TAKEN


class KeyAlreadyKept(Conflict):
    """The same key (same fingerprint) is already in the user's list, under ``existing_name``."""

    code = "ssh_key_duplicate"
    field = "public_key"

    def __init__(self, existing_name: str) -> None:
        super().__init__(f"public_key: this key is already in your list as {existing_name!r}")
        self.existing_name = existing_name


class KeyNotFound(NotFound):
    """No key of this id that the actor may see (another user's key is not found either)."""

    code = "ssh_key_not_found"
    field = "key_id"


class KeysForbidden(PermissionDenied):
    code = "ssh_keys_forbidden"
    field = "role"


class KeyLimitReached(Conflict):
    code = "ssh_key_limit_reached"
    field = "public_key"

    def __init__(self, limit: int) -> None:
        super().__init__(f"public_key: you keep {limit} keys already, the most allowed; delete one first")
        self.limit = limit
