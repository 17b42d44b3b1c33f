"""Two real `cloudmgr scheduler run` processes: exactly one leads (the "scheduler" lease in
the database), the other stands by; SIGKILL the leader and the stand-by takes over within
the lease time and finishes the work the dead one left (safe to run twice)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from cloudmgr.cloud.types import IDEMPOTENCY_METADATA_KEY
from cloudmgr.db import utcnow
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import periodic_jobs
from cloudmgr.scheduler.service import LEADER_LEASE, run_blocking
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.workqueue.models import Lease
from cloudmgr.workqueue.services import lease_holder
from tests.journey_fixtures import Journey
from tests.production.processes import Proc, process_env, scheduler_proc, wait_until

pytestmark = pytest.mark.slow

LEASE_SECONDS = 3


def _leader_pid(j: Journey) -> int | None:
    held = lease_holder(j.rt.db, LEADER_LEASE)
    if held is None or not held[1]:
        return None
    return int(held[0].split(":")[1])  # host:pid:thread


def _request(j: Journey, count: int) -> int:
    with j.rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(
            uow.session, j.staff, j.form(count, prefix="lead"), submit=True, settings=j.rt.settings
        ).id
    for actor in (j.head, j.operator):
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actor, request_id)
    return request_id


def _state(j: Journey, request_id: int) -> str:
    with j.rt.db.unit_of_work() as uow:
        return str(uow.session.scalar(select(ServiceRequest.state).where(ServiceRequest.id == request_id)))


def test_one_scheduler_leads_and_a_stand_by_takes_over_after_sigkill(journey: Journey, tmp_path: Path) -> None:
    j = journey
    env = process_env(
        j.rt.settings,
        CLOUDMGR_SCHEDULER_LEASE_SECONDS=str(LEASE_SECONDS),
        CLOUDMGR_WORK_POLL_SECONDS="0.3",
        CLOUDMGR_WORK_LEASE_SECONDS="4",
    )
    procs: list[Proc] = [
        scheduler_proc(env, tmp_path / f"scheduler-{name}.log", name=f"scheduler-{name}") for name in ("a", "b")
    ]
    try:
        for proc in procs:
            proc.start()
        leader_pid = wait_until(lambda: _leader_pid(j), 60, lambda: "\n".join(p.tail() for p in procs))
        leader = next(p for p in procs if p.pid == leader_pid)
        standby = next(p for p in procs if p.pid != leader_pid)
        # The stand-by is alive, says it stands by, and the lease does not change hands
        # while the leader lives (several renewals).
        wait_until(lambda: "standing by" in standby.tail(), 30, standby.tail)
        for _ in range(3 * LEASE_SECONDS):
            assert _leader_pid(j) == leader.pid
            assert standby.alive() and leader.alive()
            time.sleep(0.5)
        with j.rt.db.unit_of_work() as uow:
            assert uow.session.scalar(select(func.count()).select_from(Lease)) == 1

        # Work for the leader, then kill it without a chance to clean up.
        request_id = _request(j, 3)
        wait_until(lambda: _state(j, request_id) != "approved", 60, leader.tail)
        leader.kill()
        killed_at = time.monotonic()
        new_pid = wait_until(
            lambda: (pid := _leader_pid(j)) is not None and pid != leader.pid and pid,
            LEASE_SECONDS * 10,
            lambda: "no takeover\n" + standby.tail(),
            step=0.1,
        )
        takeover = time.monotonic() - killed_at
        assert new_pid == standby.pid
        print(f"takeover after SIGKILL: {takeover:.1f} s (lease {LEASE_SECONDS} s)")
        assert "is the leader" in standby.tail()
        # The new leader finishes the dead leader's request: exactly three servers.
        wait_until(lambda: _state(j, request_id) not in {"approved", "provisioning"}, 90, standby.tail)
        assert _state(j, request_id) == "active"
        with j.rt.db.unit_of_work() as uow:
            request = uow.session.get(ServiceRequest, request_id)
            assert request is not None
            keys = {s.idempotency_key for s in request.servers}
            cloud = request.cloud
            project_id = next(link.project_id for link in request.department.cloud_links if link.cloud_id == cloud.id)
        provider = j.rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
        servers = [s for s in provider.list_servers(project_id, limit=100).servers if s.name.startswith("lead")]
        assert sorted(s.metadata[IDEMPOTENCY_METADATA_KEY] for s in servers) == sorted(keys)
    finally:
        for proc in procs:
            proc.stop()


def test_every_periodic_job_is_safe_to_run_twice_at_once(journey: Journey) -> None:
    """A leader that lost its lease may still be finishing a job the new leader starts."""
    j = journey
    request_id = _request(j, 2)
    jobs = periodic_jobs()
    for job in jobs:
        with ThreadPoolExecutor(2) as pool:
            for future in [pool.submit(job.func), pool.submit(job.func)]:
                future.result()
    j.drain()
    assert _state(j, request_id) == "active"
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None and len({s.server_id for s in request.servers}) == 2


def test_a_leader_whose_lease_is_taken_stops_its_jobs_and_stands_by(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """Another holder (the leader was paused past its lease, the database said so): no two
    leaders run jobs for longer than one renewal; once the lease is free again it leads."""
    caplog.set_level(logging.INFO, logger="cloudmgr.scheduler.service")
    stop = threading.Event()
    thread = threading.Thread(
        target=run_blocking, args=(runtime.db,), kwargs={"lease_seconds": 1, "stop": stop}, daemon=True
    )
    thread.start()
    try:
        holder = wait_until(lambda: (h := lease_holder(runtime.db, LEADER_LEASE)) and h[1] and h[0], 30, "no leader")
        with runtime.db.unit_of_work() as uow:
            uow.session.execute(
                update(Lease).values(holder="elsewhere:1:1", expires_at=utcnow() + timedelta(seconds=60))
            )
        wait_until(lambda: "leader lease lost" in caplog.text, 30, caplog.text)
        assert thread.is_alive()  # standing by, not gone
        with runtime.db.unit_of_work() as uow:
            uow.session.execute(update(Lease).values(expires_at=utcnow()))
        wait_until(lambda: (h := lease_holder(runtime.db, LEADER_LEASE)) and h[0] == holder and h[1], 30, caplog.text)
        assert caplog.text.count("is the leader") == 2
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
