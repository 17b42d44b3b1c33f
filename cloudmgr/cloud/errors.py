"""The errors every CloudProvider raises.

Callers handle these and nothing else: a provider translates whatever its backend raises
(openstacksdk, keystoneauth, the simulator) into one of them, so code above the adapter
never imports an SDK to decide what went wrong.
"""

from __future__ import annotations

from cloudmgr.errors import CloudmgrError


class CloudError(CloudmgrError):
    """A cloud refused or failed an operation.

    ``message`` is written for a person (it ends up in the UI and the audit log);
    ``detail`` keeps what the cloud itself said, for operators and bug reports.
    """

    #: Whether trying the same call again later can succeed without changing anything.
    retryable: bool = False

    def __init__(self, message: str, detail: str = "", *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.status_code = status_code

    def __str__(self) -> str:
        if self.detail and self.detail not in self.message:
            return f"{self.message} ({self.detail})"
        return self.message


class CloudNotFound(CloudError):
    """The thing asked for does not exist (HTTP 404)."""


class CloudQuotaExceeded(CloudError):
    """The project's quota does not allow this."""


class CloudNoValidHost(CloudError):
    """No compute host has room for the server (the scheduler found no valid host)."""


class CloudConflict(CloudError):
    """The resource is in a state that does not allow this now (HTTP 409)."""


class CloudBadRequest(CloudError):
    """The cloud rejected the request as malformed or invalid (HTTP 400)."""


class CloudForbidden(CloudError):
    """Authentication failed or the credentials lack the rights (HTTP 401/403)."""


class CloudTimeout(CloudError):
    """Waiting for a resource to reach a state took longer than allowed."""


class CloudUnavailable(CloudError):
    """The cloud could not be reached or answered with a server error (5xx).

    ``request_reached_server`` is False when the cloud cannot have acted on the request
    (connection refused, connect timeout, 503 or 429), so even a non-idempotent call
    may be sent again; when True the request may have been processed.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        detail: str = "",
        *,
        status_code: int | None = None,
        request_reached_server: bool = True,
    ) -> None:
        super().__init__(message, detail, status_code=status_code)
        self.request_reached_server = request_reached_server
        #: Which of cloudmgr's clouds could not be reached, when its observer was told
        #: (cloudmgr.organisation.reachability); the adapter knows only its own name.
        self.cloud_key: str | None = None
