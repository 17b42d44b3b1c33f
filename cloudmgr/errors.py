"""Errors shared by every domain package.

Domain packages raise subclasses of :class:`DomainError`; the web layer maps them to
HTTP answers (``code`` becomes the JSON ``error`` field, ``http_status`` the status).
"""

from __future__ import annotations

from cloudmgr.messages import Message


class CloudmgrError(Exception):
    """Base of every error cloudmgr raises on purpose."""


class ConfigurationError(CloudmgrError):
    """A setting is missing or malformed."""


class DomainError(CloudmgrError):
    code = "domain_error"
    http_status = 400

    def __init__(self, message: str | Message) -> None:
        # A Message is shown in the reader's language by the web (``translatable``); the API,
        # the CLI and the logs read its English text (``message``).
        text = str(message)
        super().__init__(text)
        self.message = text
        self.translatable: Message | None = message if isinstance(message, Message) else None


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class ValidationFailed(DomainError):
    code = "invalid"
    http_status = 400


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class PermissionDenied(DomainError):
    code = "forbidden"
    http_status = 403
