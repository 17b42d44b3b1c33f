"""Cloud faults between cloudmgr and the lab's Nova, injected by a proxy of our own
(tests/production/faultproxy.py) that clouds.yaml points the compute endpoint at.

1. Transient 5xx and timeouts, some after Nova acted (the answer lost): the provider retries
   with growing waits (counted and timed at the proxy), the request ends active with exactly
   its servers, none booted twice.
2. Nova refusing every boot (503): each work attempt retries in the provider, then the work
   queue retries with exponential backoff; after its last attempt the request ends failed,
   each server with the reason.  Nothing is lost and the quota is released.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, update

from cloudmgr.config import Settings
from cloudmgr.db import utcnow
from cloudmgr.runtime import Runtime, set_runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.workqueue.models import WorkItem
from cloudmgr.workqueue.services import Worker, backoff
from tests.conftest import migrate_test_database
from tests.journey_fixtures import LabJourney, build_lab_journey, clean_lab_department
from tests.production.checks import account, approve_fully, lab_form
from tests.production.faultproxy import FaultProxy, Rule, fault_proxy

pytestmark = [pytest.mark.lab, pytest.mark.postgres, pytest.mark.slow]

NOVA = "http://127.0.0.1:8774"


@dataclass
class Proxied:
    j: LabJourney
    proxy: FaultProxy


def proxied_clouds_yaml(lab_clouds_yaml: Path, proxy_url: str, target: Path) -> Path:
    config = yaml.safe_load(lab_clouds_yaml.read_text(encoding="utf-8"))
    for cloud in config["clouds"].values():
        cloud["compute_endpoint_override"] = f"{proxy_url}/v2.1"
    target.write_text(yaml.safe_dump(config), encoding="utf-8")
    return target


@pytest.fixture
def proxied(pg_lab_settings: Settings, tmp_path: Path, lab_clouds_yaml: Path) -> Iterator[Proxied]:
    with fault_proxy(NOVA, delay=2.0) as proxy:
        clouds_yaml = proxied_clouds_yaml(lab_clouds_yaml, proxy.url, tmp_path / "clouds-proxied.yaml")
        settings = pg_lab_settings.with_overrides(os_client_config_file=str(clouds_yaml))
        migrate_test_database(settings.database_url)
        rt = Runtime.from_settings(settings)
        set_runtime(rt)
        # the journey's own checks (nova_servers, clean-up) go straight to the lab
        j = build_lab_journey(rt, tmp_path, lab_clouds_yaml, instances=4)
        try:
            yield Proxied(j, proxy)
        finally:
            clean_lab_department(j)
            set_runtime(None)
            rt.db.dispose()


def _request(j: LabJourney, count: int, prefix: str) -> int:
    with j.rt.db.unit_of_work() as uow:
        form = lab_form(j, count, prefix)
        request_id = requests_service.create_request(uow.session, j.staff, form, submit=True, settings=j.rt.settings).id
    approve_fully(j, request_id)
    return request_id


def _request_row(j: LabJourney, request_id: int) -> tuple[str, str | None, list[tuple[str, str | None]]]:
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None
        return request.state, request.state_reason, [(s.state, s.fault) for s in request.servers]


def test_transient_5xx_and_timeouts_are_retried_with_backoff_and_boot_nothing_twice(proxied: Proxied) -> None:
    j, proxy = proxied.j, proxied.proxy
    # Reads of the servers (the lookup by idempotency key after a lost boot, the boot window's
    # polls) are listings of /servers/detail: a gateway timeout, a 502, then a connection dropped
    # after 2 s without an answer, each followed by a read that passes (the provider's four tries
    # of a boot may spend two on a lost POST and a refused one).
    reads = proxy.add(Rule("GET", r"/servers/detail", ["504-delay", "pass", "502", "pass", "drop-after"]))
    # boot 1: Nova boots it but the answer is lost (500); boot 2: turned away (503)
    boots = proxy.add(Rule("POST", r"/servers$", ["500-after", "503"]))
    request_id = _request(j, 2, "flt")
    Worker(j.rt.db, work_handlers()).drain(max_items=20)

    state, reason, servers = _request_row(j, request_id)
    assert state == "active", (reason, servers)
    assert not (boots.actions or reads.actions), "every injected fault was met"
    # Three POSTs for two servers: the retry after the lost answer found the server by its key.
    assert proxy.count("POST", r"/servers$") == 3
    result = account(j)
    assert result.nova_servers == 2 and result.ok, result
    # The retries waited (RetryPolicy: 0.5 s, then x2, jitter at most -25 %).
    gaps = []
    for fault in [s for s in proxy.seen if s.action != "pass"]:
        after = [s.at for s in proxy.seen if s.at > fault.at]
        gaps.append(round(min(after) - fault.at, 2))
    print(f"\nproxy: {len(proxy.seen)} requests, faults {[s.action for s in proxy.seen if s.action != 'pass']}")
    print(f"wait before the next request after each fault (s): {gaps}")
    assert all(gap >= 0.375 for gap in gaps), gaps


def test_a_cloud_refusing_every_boot_ends_failed_with_the_reason_after_backoff(proxied: Proxied) -> None:
    j, proxy = proxied.j, proxied.proxy
    proxy.add(Rule("POST", r"/servers$", then="503"))
    request_id = _request(j, 1, "down")
    worker = Worker(j.rt.db, work_handlers())
    delays = []
    for _attempt in range(20):
        worker.drain(max_items=20)
        with j.rt.db.unit_of_work() as uow:
            item = uow.session.scalar(select(WorkItem).where(WorkItem.key == f"provision:{request_id}"))
            assert item is not None
            if item.state != "queued":
                break
            assert "unreachable" in (item.last_error or "") and "busy or unavailable" in (item.last_error or "")
            wait = (item.run_after - utcnow()).total_seconds()
            delays.append(round(wait, 1))
            # the backoff of the work queue: 5 s, 10 s, 20 s ... (less the time since the failure)
            assert wait >= backoff(item.attempts) - 30, (item.attempts, wait)
            assert wait <= backoff(item.attempts)
            # fast-forward the clock of the queue instead of waiting
            uow.session.execute(update(WorkItem).where(WorkItem.id == item.id).values(run_after=utcnow()))
    print(f"\nwork-queue retries waited (s): {delays}; boots tried at the proxy: {proxy.count('POST', '/servers$')}")
    assert len(delays) == 7  # eight attempts in all (max_attempts)
    assert all(b > a for a, b in pairwise(delays))
    # Each work attempt tried the boot four times (the provider's own retries).
    assert proxy.count("POST", r"/servers$") == 8 * 4
    state, reason, servers = _request_row(j, request_id)
    assert state == "failed" and reason == "0 active, 1 failed"
    ((server_state, fault),) = servers
    assert server_state == "error" and fault is not None
    assert "cloud unreachable" in fault and "busy or unavailable" in fault
    with j.rt.db.unit_of_work() as uow:
        item = uow.session.scalar(select(WorkItem).where(WorkItem.key == f"provision:{request_id}"))
        assert item is not None and item.state == "failed"
        assert "gave up after 8 attempts" in (item.last_error or "")
    result = account(j)
    assert result.nova_servers == 0 and result.ok, result
    with j.rt.db.unit_of_work() as uow:
        assert uow.session.get(ServiceRequest, request_id) is not None  # kept, with its history
