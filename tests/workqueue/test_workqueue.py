from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from cloudmgr.runtime import Runtime
from cloudmgr.workqueue.models import WorkItem
from cloudmgr.workqueue.services import (
    ClaimedItem,
    GiveUp,
    RetryLater,
    Worker,
    acquire_lease,
    claim,
    enqueue,
    lease_holder,
    release_lease,
)


def test_enqueue_dedupes_by_key_while_queued_or_running(runtime: Runtime) -> None:
    with runtime.db.unit_of_work() as uow:
        first = enqueue(uow.session, "k", "key:1", {"a": 1})
        again = enqueue(uow.session, "k", "key:1", {"a": 2})
        assert first.id == again.id


def test_an_expired_lease_is_taken_over(runtime: Runtime) -> None:
    with runtime.db.unit_of_work() as uow:
        enqueue(uow.session, "k", "key:1")
    first = claim(runtime.db, owner="dead-worker", lease=timedelta(seconds=-1))  # dies holding an expired lease
    assert first is not None
    second = claim(runtime.db, owner="new-worker")
    assert second is not None and second.id == first.id and second.attempts == 2
    assert claim(runtime.db, owner="third") is None  # a live lease is respected


def test_retry_with_backoff_then_give_up(runtime: Runtime) -> None:
    calls: list[int] = []
    gave_up: list[str] = []

    def flaky(_db: object, item: ClaimedItem) -> None:
        calls.append(item.attempts)
        raise RetryLater("cloud unreachable", delay=0)

    def on_give_up(_db: object, _item: ClaimedItem, error: str) -> None:
        gave_up.append(error)

    flaky.on_give_up = on_give_up  # type: ignore[attr-defined]
    with runtime.db.unit_of_work() as uow:
        enqueue(uow.session, "flaky", "f:1", max_attempts=3)
    worker = Worker(runtime.db, {"flaky": flaky})
    worker.drain()
    assert calls == [1, 2, 3]
    assert gave_up and "gave up after 3 attempts" not in gave_up[0]
    with runtime.db.unit_of_work() as uow:
        item = uow.session.scalars(select(WorkItem)).one()
        assert item.state == "failed" and item.last_error and "gave up after 3 attempts" in item.last_error


def test_backoff_delays_the_next_attempt(runtime: Runtime) -> None:
    def flaky(_db: object, _item: ClaimedItem) -> None:
        raise RetryLater("later")

    with runtime.db.unit_of_work() as uow:
        enqueue(uow.session, "flaky", "f:1")
    assert Worker(runtime.db, {"flaky": flaky}).drain() == 1  # not run again at once
    with runtime.db.unit_of_work() as uow:
        item = uow.session.scalars(select(WorkItem)).one()
        assert item.state == "queued" and item.attempts == 1 and item.run_after > item.created_at


def test_give_up_and_unexpected_errors(runtime: Runtime) -> None:
    def hopeless(_db: object, _item: ClaimedItem) -> None:
        raise GiveUp("no such server")

    with runtime.db.unit_of_work() as uow:
        enqueue(uow.session, "hopeless", "h:1")
    Worker(runtime.db, {"hopeless": hopeless}).drain()
    with runtime.db.unit_of_work() as uow:
        assert uow.session.scalars(select(WorkItem.state)).one() == "failed"


def test_concurrent_workers_never_run_one_item_twice(runtime: Runtime) -> None:
    ran: list[int] = []
    lock = threading.Lock()

    def record(_db: object, item: ClaimedItem) -> None:
        with lock:
            ran.append(item.id)

    with runtime.db.unit_of_work() as uow:
        for i in range(30):
            enqueue(uow.session, "r", f"r:{i}")
    workers = [Worker(runtime.db, {"r": record}) for _ in range(4)]
    threads = [threading.Thread(target=w.drain, kwargs={"max_items": 100}) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ran) == sorted(set(ran)) and len(ran) == 30


def test_leader_lease(runtime: Runtime) -> None:
    ttl = timedelta(seconds=30)
    assert acquire_lease(runtime.db, "scheduler", "a", ttl)
    assert not acquire_lease(runtime.db, "scheduler", "b", ttl)
    assert acquire_lease(runtime.db, "scheduler", "a", ttl)  # renewal
    assert lease_holder(runtime.db, "scheduler") == ("a", True)
    release_lease(runtime.db, "scheduler", "a")
    assert acquire_lease(runtime.db, "scheduler", "b", ttl)  # taken over once released or expired
