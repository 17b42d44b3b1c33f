"""The reachability record (cloudmgr.organisation.reachability): what one process writes, and when."""

from __future__ import annotations

from cloudmgr.cloud import CloudUnavailable
from cloudmgr.organisation import reachability
from cloudmgr.runtime import Runtime

CLOUD = "education"


def _status(rt: Runtime) -> reachability.CloudStatus:
    with rt.db.unit_of_work() as uow:
        (status,) = reachability.cloud_statuses(uow.session, cloud_keys=[CLOUD])
        return status


def test_a_cloud_goes_down_and_comes_back(seeded: Runtime) -> None:
    now = [0.0]
    recorder = reachability.ReachabilityRecorder(seeded.db, CLOUD, clock=lambda: now[0])
    assert _status(seeded).last_success_at is None and _status(seeded).reachable  # never called

    recorder.reached()
    up = _status(seeded)
    assert up.reachable and up.last_success_at is not None

    error = CloudUnavailable(
        "get server failed: the cloud could not be reached", "refused", request_reached_server=False
    )
    recorder.unreachable(error)
    assert error.cloud_key == CLOUD  # for the work queue's wait
    down = _status(seeded)
    assert not down.reachable and down.failure_kind == reachability.REFUSED
    assert down.unreachable_since is not None and "could not be reached" in (down.failure_detail or "")

    # Still down a while later: the first failure is when it went down.
    now[0] += reachability.RECORD_EVERY.total_seconds() + 1
    recorder.unreachable(CloudUnavailable("dropped"))
    still = _status(seeded)
    assert still.unreachable_since == down.unreachable_since and still.failure_kind == reachability.LOST

    recorder.reached()
    back = _status(seeded)
    assert back.reachable and back.last_success_at is not None and back.last_success_at >= still.unreachable_since


def test_the_same_outcome_is_written_once_in_a_while_and_a_call_inside_a_unit_of_work_later(
    seeded: Runtime,
) -> None:
    now = [0.0]
    recorder = reachability.ReachabilityRecorder(seeded.db, CLOUD, clock=lambda: now[0])
    recorder.reached()
    first = _status(seeded).last_success_at
    now[0] += 1
    recorder.reached()
    assert _status(seeded).last_success_at == first  # not written again so soon

    # A call made inside a unit of work: noted, written by the next call outside one.
    with seeded.db.unit_of_work():
        recorder.unreachable(CloudUnavailable("refused", request_reached_server=False))
    assert _status(seeded).reachable
    recorder.unreachable(CloudUnavailable("refused", request_reached_server=False))
    assert not _status(seeded).reachable


def test_a_cloud_not_in_the_organisation_is_not_recorded(seeded: Runtime) -> None:
    reachability.ReachabilityRecorder(seeded.db, "atlantis").unreachable(CloudUnavailable("refused"))
    with seeded.db.unit_of_work() as uow:
        assert all(s.reachable for s in reachability.cloud_statuses(uow.session))
