"""What a call's outcome says about reaching the cloud (cloudmgr.cloud.reachability)."""

from __future__ import annotations

from cloudmgr.cloud import CloudError, CloudNotFound, CloudUnavailable
from cloudmgr.cloud.reachability import is_unreachable, tell


class Seen:
    def __init__(self) -> None:
        self.events: list[str] = []

    def reached(self) -> None:
        self.events.append("reached")

    def unreachable(self, error: CloudUnavailable) -> None:
        self.events.append(f"unreachable: {error.message}")


def _told(error: BaseException | None) -> list[str]:
    seen = Seen()
    tell(seen, error)
    return seen.events


def test_only_a_failure_to_talk_to_the_cloud_is_unreachable() -> None:
    refused = CloudUnavailable("refused", request_reached_server=False)
    assert _told(refused) == ["unreachable: refused"]
    assert _told(CloudUnavailable("dropped")) == ["unreachable: dropped"]
    # The cloud answered: with nothing wrong, a 5xx, or a refusal of its own.
    assert _told(None) == ["reached"]
    assert _told(CloudUnavailable("busy", status_code=503, request_reached_server=False)) == ["reached"]
    assert _told(CloudNotFound("no such server")) == ["reached"]
    # A configuration problem or a bug says nothing about the cloud.
    assert _told(CloudError("clouds.yaml is not usable")) == []
    assert _told(ValueError("bug")) == []


def test_unreachable_through_the_errors_raised_from_it() -> None:
    try:
        try:
            raise CloudUnavailable("refused", request_reached_server=False)
        except CloudUnavailable as exc:
            raise RuntimeError("retry later") from exc
    except RuntimeError as wrapped:
        assert is_unreachable(wrapped)
    assert not is_unreachable(CloudUnavailable("busy", status_code=503))
    assert not is_unreachable(ValueError("bug"))


def test_an_observer_that_fails_never_fails_the_call() -> None:
    class Broken:
        def reached(self) -> None:
            raise RuntimeError("database down")

        def unreachable(self, error: CloudUnavailable) -> None:
            raise RuntimeError("database down")

    tell(Broken(), None)
    tell(Broken(), CloudUnavailable("refused"))
