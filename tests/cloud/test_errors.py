"""Unit tests of the retry helper and of the SDK error translation.

The SDK exceptions are the real ones, built the way openstacksdk builds them from an HTTP
answer (``raise_from_response``) or raised by keystoneauth; nothing is mocked.
"""

from __future__ import annotations

import json
from pathlib import Path

import keystoneauth1.exceptions as ks_exc
import openstack.exceptions as os_exc
import pytest
import requests

from cloudmgr.cloud import (
    CloudBadRequest,
    CloudConflict,
    CloudError,
    CloudForbidden,
    CloudNotFound,
    CloudNoValidHost,
    CloudQuotaExceeded,
    CloudTimeout,
    CloudUnavailable,
    RetryPolicy,
    make_provider,
)
from cloudmgr.cloud.openstack import OpenStackProvider, idempotency_tag, translate_sdk_error
from cloudmgr.cloud.retry import call_with_retry, is_retryable_unsent
from cloudmgr.cloud.simulated import SimulatedProvider

# ---- error translation ------------------------------------------------------------------


def _http_error(status: int, body: dict[str, object] | None = None, text: str = "") -> os_exc.SDKException:
    """The exception openstacksdk raises for this HTTP answer."""
    response = requests.Response()
    response.status_code = status
    response.reason = requests.status_codes._codes[status][0].upper()  # type: ignore[attr-defined]
    if body is not None:
        response._content = json.dumps(body).encode()
        response.headers["content-type"] = "application/json"
    else:
        response._content = text.encode()
        response.headers["content-type"] = "text/plain"
    response.request = requests.Request("POST", "http://127.0.0.1:8774/v2.1/servers").prepare()
    response.url = response.request.url or ""
    with pytest.raises(os_exc.SDKException) as raised:
        os_exc.raise_from_response(response)
    return raised.value


NOVA_QUOTA = {
    "forbidden": {
        "code": 403,
        "message": "Quota exceeded for instances: Requested 1, but already used 3 of 3 instances",
    }
}


@pytest.mark.parametrize(
    ("status", "body", "expected", "detail_part"),
    [
        (404, {"itemNotFound": {"code": 404, "message": "Instance x could not be found."}}, CloudNotFound, "x could"),
        (403, NOVA_QUOTA, CloudQuotaExceeded, "already used 3 of 3"),
        (403, {"forbidden": {"code": 403, "message": "Maximum number of ports exceeded"}}, CloudQuotaExceeded, "ports"),
        (
            409,
            {"NeutronError": {"type": "OverQuota", "message": "Quota exceeded for resources: ['port'].", "detail": ""}},
            CloudQuotaExceeded,
            "['port']",
        ),
        (413, {"overLimit": {"code": 413, "message": "This request was rate-limited."}}, CloudQuotaExceeded, "rate"),
        # Cinder (issue 16): over its gigabytes, volumes or backups quota, and a missing volume.
        (
            413,
            {
                "overLimit": {
                    "code": 413,
                    "message": "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
                    "gigabytes quota. Requested 2G, quota is 1G and 0G has been consumed.",
                    "retryAfter": "0",
                }
            },
            CloudQuotaExceeded,
            "gigabytes quota",
        ),
        (
            413,
            {
                "overLimit": {
                    "code": 413,
                    "message": "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded "
                    "for quota 'volumes'.",
                    "retryAfter": "0",
                }
            },
            CloudQuotaExceeded,
            "number of volumes",
        ),
        (404, {"itemNotFound": {"code": 404, "message": "Volume v could not be found."}}, CloudNotFound, "Volume v"),
        (
            403,
            {"forbidden": {"code": 403, "message": "Policy doesn't allow os_compute_api:os-hypervisors"}},
            CloudForbidden,
            "Policy",
        ),
        (
            401,
            {"error": {"code": 401, "message": "The request you have made requires authentication."}},
            CloudForbidden,
            "requires",
        ),
        (
            409,
            {"conflictingRequest": {"code": 409, "message": "Cannot 'stop' instance while it is in vm_state stopped"}},
            CloudConflict,
            "vm_state stopped",
        ),
        (400, {"badRequest": {"code": 400, "message": "Invalid flavorRef provided."}}, CloudBadRequest, "flavorRef"),
        (
            400,
            {"badRequest": {"code": 400, "message": "No valid host was found. There are not enough hosts"}},
            CloudNoValidHost,
            "No valid host",
        ),
        (501, {"notImplemented": {"code": 501, "message": "not implemented"}}, CloudError, "not implemented"),
    ],
)
def test_http_errors_map_to_cloud_errors(
    status: int, body: dict[str, object], expected: type[CloudError], detail_part: str
) -> None:
    error = translate_sdk_error(_http_error(status, body), "create server web-1")
    assert type(error) is expected
    assert detail_part in error.detail
    assert error.status_code == status
    assert error.message.startswith("create server web-1")
    assert not error.retryable


@pytest.mark.parametrize(("status", "unsent"), [(500, False), (502, False), (504, False), (503, True), (429, True)])
def test_server_side_failures_are_retryable(status: int, unsent: bool) -> None:
    error = translate_sdk_error(_http_error(status, text="try later"), "list servers")
    assert isinstance(error, CloudUnavailable)
    assert error.retryable
    assert error.request_reached_server is not unsent
    assert is_retryable_unsent(error) is unsent


def test_connection_refused_was_never_sent() -> None:
    refused = ks_exc.ConnectFailure(
        "Unable to establish connection to http://127.0.0.1:8774/v2.1/servers: HTTPConnectionPool(host='127.0.0.1', "
        "port=8774): Max retries exceeded (Caused by NewConnectionError(... [Errno 111] Connection refused'))"
    )
    error = translate_sdk_error(refused, "stop server x")
    assert isinstance(error, CloudUnavailable)
    assert error.retryable and not error.request_reached_server


def test_dropped_connection_may_have_been_processed() -> None:
    dropped = ks_exc.ConnectFailure(
        "Unable to establish connection to http://127.0.0.1:8774: ('Connection aborted.', "
        "RemoteDisconnected('Remote end closed connection without response'))"
    )
    error = translate_sdk_error(dropped)
    assert isinstance(error, CloudUnavailable)
    assert error.request_reached_server
    assert not is_retryable_unsent(error)


@pytest.mark.parametrize(
    ("raised", "expected", "retryable"),
    [
        (ks_exc.ConnectTimeout("Request to http://127.0.0.1:9696 timed out"), CloudUnavailable, True),
        (ks_exc.SSLError("SSL exception connecting"), CloudUnavailable, True),
        (ks_exc.DiscoveryFailure("Could not find versioned identity endpoints"), CloudUnavailable, True),
        (
            ks_exc.Unauthorized("The request you have made requires authentication.", http_status=401),
            CloudForbidden,
            False,
        ),
        (ks_exc.AuthorizationFailure("bad password"), CloudForbidden, False),
        (ks_exc.EndpointNotFound("public endpoint for placement service not found"), CloudError, False),
        (os_exc.EndpointNotFound("no endpoint"), CloudError, False),
        (os_exc.ResourceTimeout("Timeout waiting for the server to come up."), CloudTimeout, False),
        (os_exc.DuplicateResource("More than one Project exists with the name 'x'."), CloudConflict, False),
        (os_exc.ConfigException("Cloud cloudmgr-lab was not found."), CloudError, False),
        (os_exc.SDKException("something else"), CloudError, False),
        (requests.ConnectionError("reset"), CloudUnavailable, True),
    ],
)
def test_other_sdk_errors_map_to_cloud_errors(raised: Exception, expected: type[CloudError], retryable: bool) -> None:
    error = translate_sdk_error(raised, "list hypervisors")
    assert type(error) is expected
    assert error.retryable is retryable
    assert error.message.startswith("list hypervisors")
    assert error.detail


def test_foreign_exceptions_are_not_translated() -> None:
    assert translate_sdk_error(ValueError("a bug")) is None
    assert translate_sdk_error(KeyError("status")) is None
    already = CloudNotFound("server x not found")
    assert translate_sdk_error(already) is already


def test_cloud_error_text_has_message_and_detail() -> None:
    error = CloudQuotaExceeded("create server a refused: quota exceeded", "Quota exceeded for cores")
    assert str(error) == "create server a refused: quota exceeded (Quota exceeded for cores)"
    assert str(CloudError("plain")) == "plain"
    assert isinstance(error, CloudError)


def test_idempotency_tag_fits_nova_tag_rules() -> None:
    for key in ("simple", "dept/42,request=7", "x" * 255, "部门-申请-1"):
        tag = idempotency_tag(key)
        assert len(tag) <= 60
        assert "/" not in tag and "," not in tag
        assert tag == idempotency_tag(key)
    assert idempotency_tag("a") != idempotency_tag("b")


# ---- retry helper -----------------------------------------------------------------------


class _Flaky:
    """Fails with the given errors in turn, then returns "done"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


NO_JITTER = RetryPolicy(attempts=4, base_delay=0.5, multiplier=2.0, max_delay=1.5, jitter=0.0)


def test_retry_recovers_from_transient_failures_with_growing_delays() -> None:
    slept: list[float] = []
    flaky = _Flaky(CloudUnavailable("down"), CloudUnavailable("still down"), CloudUnavailable("again"))
    assert call_with_retry(flaky, NO_JITTER, sleep=slept.append) == "done"
    assert flaky.calls == 4
    assert slept == [0.5, 1.0, 1.5]  # doubled, then capped at max_delay


def test_retry_gives_up_after_the_last_attempt() -> None:
    slept: list[float] = []
    errors = [CloudUnavailable(f"down {n}") for n in range(5)]
    flaky = _Flaky(*errors)
    with pytest.raises(CloudUnavailable) as raised:
        call_with_retry(flaky, NO_JITTER, sleep=slept.append)
    assert raised.value is errors[3]
    assert flaky.calls == 4
    assert len(slept) == 3


def test_retry_does_not_retry_permanent_errors() -> None:
    slept: list[float] = []
    flaky = _Flaky(CloudQuotaExceeded("no room"))
    with pytest.raises(CloudQuotaExceeded):
        call_with_retry(flaky, NO_JITTER, sleep=slept.append)
    assert flaky.calls == 1 and slept == []


def test_retry_of_non_idempotent_calls_only_resends_unsent_requests() -> None:
    slept: list[float] = []
    unsent = _Flaky(CloudUnavailable("refused", request_reached_server=False))
    assert call_with_retry(unsent, NO_JITTER, should_retry=is_retryable_unsent, sleep=slept.append) == "done"
    maybe_processed = _Flaky(CloudUnavailable("dropped", request_reached_server=True))
    with pytest.raises(CloudUnavailable):
        call_with_retry(maybe_processed, NO_JITTER, should_retry=is_retryable_unsent, sleep=slept.append)
    assert maybe_processed.calls == 1


def test_retry_leaves_other_exceptions_alone() -> None:
    flaky = _Flaky(RuntimeError("bug"))
    with pytest.raises(RuntimeError):
        call_with_retry(flaky, NO_JITTER, sleep=lambda _: None)
    assert flaky.calls == 1


def test_retry_policy_jitter_and_validation() -> None:
    policy = RetryPolicy(base_delay=1.0, multiplier=2.0, max_delay=10.0, jitter=0.5)
    assert policy.delay(3, rng=lambda: 0.0) == 4.0
    assert policy.delay(3, rng=lambda: 1.0) == 2.0
    assert policy.delay(10, rng=lambda: 0.0) == 10.0
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)


# ---- the OpenStack provider against clouds that are not there ----------------------------


def _clouds_yaml(tmp_path: Path, auth_url: str) -> Path:
    path = tmp_path / "clouds.yaml"
    path.write_text(
        "clouds:\n"
        "  nowhere:\n"
        "    auth:\n"
        f"      auth_url: {auth_url}\n"
        "      username: admin\n"
        "      password: secret\n"
        "      project_name: admin\n"
        "      user_domain_name: Default\n"
        "      project_domain_name: Default\n"
        "    region_name: RegionOne\n"
        "    identity_api_version: 3\n"
    )
    return path


def test_unreachable_cloud_raises_cloud_unavailable_after_retries(tmp_path: Path) -> None:
    # Port 9 on loopback: nothing listens, so every try is refused at once.
    clouds_yaml = _clouds_yaml(tmp_path, "http://127.0.0.1:9/v3")
    provider = OpenStackProvider(
        cloud="nowhere",
        config_files=[clouds_yaml],
        timeout=5,
        retry_policy=RetryPolicy(attempts=2, base_delay=0.01, jitter=0.0),
    )
    assert not provider.is_simulated
    assert "nowhere" in provider.name
    with pytest.raises(CloudUnavailable) as raised:
        provider.list_flavors()
    assert raised.value.retryable
    assert "list flavors" in raised.value.message


def test_unknown_cloud_name_is_a_configuration_error(tmp_path: Path) -> None:
    clouds_yaml = _clouds_yaml(tmp_path, "http://127.0.0.1:9/v3")
    provider = OpenStackProvider(cloud="not-in-the-file", config_files=[clouds_yaml])
    with pytest.raises(CloudError) as raised:
        provider.list_hypervisors()
    assert not raised.value.retryable
    assert "configuration" in raised.value.message


def test_make_provider_builds_both_kinds(tmp_path: Path) -> None:
    simulated = make_provider("simulated", state_path=tmp_path / "sim.json")
    assert isinstance(simulated, SimulatedProvider)
    assert simulated.is_simulated and "simulated" in simulated.name
    real = make_provider("openstack", cloud="nowhere", config_files=[_clouds_yaml(tmp_path, "http://127.0.0.1:9/v3")])
    assert isinstance(real, OpenStackProvider)
    with pytest.raises(ValueError):
        make_provider("vmware", x=1)  # type: ignore[arg-type]
