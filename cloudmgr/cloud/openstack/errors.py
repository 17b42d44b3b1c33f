"""openstacksdk and keystoneauth exceptions translated into :mod:`cloudmgr.cloud.errors`."""

from __future__ import annotations

import re

import keystoneauth1.exceptions as ks_exc
import openstack.exceptions as os_exc
import requests

from cloudmgr.cloud.errors import (
    CloudBadRequest,
    CloudConflict,
    CloudError,
    CloudForbidden,
    CloudNotFound,
    CloudNoValidHost,
    CloudQuotaExceeded,
    CloudTimeout,
    CloudUnavailable,
)
from cloudmgr.cloud.provider import NO_VALID_HOST_MARKER

# Nova: "Quota exceeded for instances: ..." (403), "Maximum number of ports exceeded" (403);
# Neutron: "Quota exceeded for resources: ['port']" (409); old clouds answer 413.
_QUOTA_TEXT = re.compile(r"quota exceeded|over ?quota|exceeds? .*quota|maximum number of \w+ exceeded", re.I)

# ConnectFailure covers both "nothing listens there" (the request never left) and "the
# connection dropped mid-request" (it may have been processed); only the former is safe
# to resend for a call that must not run twice.
_NEVER_SENT_TEXT = re.compile(
    r"connection refused|failed to establish a new connection|name or service not known"
    r"|nodename nor servname|temporary failure in name resolution|no route to host",
    re.I,
)


def translate_sdk_error(error: BaseException, action: str = "cloud call") -> CloudError | None:
    """The CloudError for an exception raised by openstacksdk or keystoneauth, or None
    when ``error`` does not come from them (a bug, left to propagate as it is).

    ``action`` says what was being done, for the human message ("get server x failed: ...").
    """
    if isinstance(error, CloudError):
        return error
    if isinstance(error, os_exc.HttpException):
        return _from_http_status(error.status_code, _sdk_http_detail(error), action)
    if isinstance(error, ks_exc.HttpError):
        return _from_http_status(error.http_status, _ks_http_detail(error), action)
    detail = str(error)
    if isinstance(error, ks_exc.ConnectFailure):
        return CloudUnavailable(
            f"{action} failed: the cloud could not be reached",
            detail,
            request_reached_server=not _NEVER_SENT_TEXT.search(detail),
        )
    if isinstance(error, ks_exc.ConnectTimeout):
        # keystoneauth raises this for read timeouts too, so the request may have arrived.
        return CloudUnavailable(f"{action} failed: the cloud did not answer in time", detail)
    if isinstance(error, ks_exc.ConnectionError):
        return CloudUnavailable(f"{action} failed: connection to the cloud failed", detail)
    if isinstance(error, ks_exc.DiscoveryFailure):
        # Version discovery is a GET before the real request: nothing was acted on.
        return CloudUnavailable(
            f"{action} failed: the cloud's service catalog or API versions could not be read",
            detail,
            request_reached_server=False,
        )
    if isinstance(error, ks_exc.EndpointNotFound | os_exc.EndpointNotFound):
        return CloudError(f"{action} failed: the cloud does not offer the service needed", detail)
    if isinstance(error, ks_exc.AuthorizationFailure | ks_exc.MissingAuthPlugin | ks_exc.NoMatchingPlugin):
        return CloudForbidden(f"{action} failed: could not authenticate to the cloud", detail)
    if isinstance(error, os_exc.ResourceTimeout):
        return CloudTimeout(f"{action} timed out", detail)
    if isinstance(error, os_exc.DuplicateResource):
        return CloudConflict(f"{action} failed: more than one resource matches", detail)
    if isinstance(error, os_exc.ConfigException):
        return CloudError(f"{action} failed: the cloud's configuration (clouds.yaml) is not usable", detail)
    if isinstance(error, os_exc.SDKException | ks_exc.ClientException):
        return CloudError(f"{action} failed", detail)
    if isinstance(error, requests.RequestException):
        return CloudUnavailable(f"{action} failed: connection to the cloud failed", detail)
    return None


def _from_http_status(status: int | None, detail: str, action: str) -> CloudError:
    if status in (403, 409, 413) and _QUOTA_TEXT.search(detail):
        return CloudQuotaExceeded(f"{action} refused: quota exceeded", detail, status_code=status)
    if NO_VALID_HOST_MARKER in detail.lower():
        return CloudNoValidHost(f"{action} failed: no compute host has room", detail, status_code=status)
    if status == 400:
        return CloudBadRequest(f"{action} rejected as invalid", detail, status_code=status)
    if status == 401:
        return CloudForbidden(f"{action} failed: not authenticated", detail, status_code=status)
    if status == 403:
        return CloudForbidden(f"{action} refused: not allowed", detail, status_code=status)
    if status == 404:
        return CloudNotFound(f"{action} failed: not found", detail, status_code=status)
    if status == 409:
        return CloudConflict(
            f"{action} refused: conflicts with the resource's current state", detail, status_code=status
        )
    if status == 413:
        return CloudQuotaExceeded(f"{action} refused: over a limit", detail, status_code=status)
    if status in (429, 503):
        # Throttled or not serving right now: the cloud turned the request away unprocessed.
        return CloudUnavailable(
            f"{action} failed: the cloud is busy or unavailable",
            detail,
            status_code=status,
            request_reached_server=False,
        )
    if status is not None and status >= 500 and status != 501:
        return CloudUnavailable(f"{action} failed: the cloud had an internal error", detail, status_code=status)
    return CloudError(f"{action} failed (HTTP {status})", detail, status_code=status)


def _sdk_http_detail(error: os_exc.HttpException) -> str:
    if error.details:
        return str(error.details)
    return error.message if error.message and error.message != "Error" else str(error)


def _ks_http_detail(error: ks_exc.HttpError) -> str:
    parts = [str(error.message or "")]
    if error.details:
        parts.append(str(error.details))
    return ": ".join(p for p in parts if p)
