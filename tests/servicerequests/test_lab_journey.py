"""The self-service journey against the lab OpenStack (real Nova, Neutron, Glance, Keystone)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from cloudmgr.cloud.types import IDEMPOTENCY_METADATA_KEY
from cloudmgr.inventory.classification import CLASSIFICATION_METADATA_KEY, LEGACY_SYSTEM_METADATA_KEY
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.services import reconcile
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ServiceRequest
from tests.conftest import ONE_DATABASE, PRODUCTION_DATABASE
from tests.journey_fixtures import LabJourney, build_lab_journey, clean_lab_department
from tests.servicerequests.classified_helpers import import_system
from tests.servicerequests.test_concurrency import approve_concurrently, prepare_twenty_waiting_requests

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]


def _submit_and_approve(j: LabJourney, count: int = 3, prefix: str = "lic", legacy_system_id: int | None = None) -> int:
    form = replace(j.form(count, prefix=prefix), legacy_system_id=legacy_system_id)
    with j.rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(uow.session, j.staff, form, submit=True, settings=j.rt.settings).id
    for actor in (j.head, j.operator):
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actor, request_id)
    return request_id


@ONE_DATABASE
def test_three_vms_on_real_nova_and_the_ledger_matches(lab_journey: LabJourney) -> None:
    j = lab_journey
    # The servers replace a legacy system: Nova stores its hostname and classification (issue 14).
    hostname = f"{j.department_key}-legacy-01"
    system_id = import_system(j.rt, hostname, classified=False, dept=j.department_key)
    request_id = _submit_and_approve(j, legacy_system_id=system_id)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None and request.state == "active", request and request.state_reason
        keys = {s.idempotency_key for s in request.servers}
    servers = j.nova_servers()
    assert len(servers) == 3
    assert all(s.status == "ACTIVE" for s in servers)
    assert {s.metadata[IDEMPOTENCY_METADATA_KEY] for s in servers} == keys
    assert {s.project_id for s in servers} == {j.project_id}
    assert {(s.metadata[LEGACY_SYSTEM_METADATA_KEY], s.metadata[CLASSIFICATION_METADATA_KEY]) for s in servers} == {
        (hostname, "non_classified")
    }

    # The ledger's usage equals Nova's usage for the project, after the reconcile job too.
    reconcile(j.rt.db, j.rt.providers)
    from cloudmgr.quotas.resources import Resource
    from tests.conftest import lab_connection

    usage = lab_connection(Path(j.clouds_yaml)).compute.get_quota_set(j.project_id, usage=True).usage
    with j.rt.db.unit_of_work() as uow:
        from cloudmgr.quotas import ledger

        bal = ledger.all_balances(uow.session)[0]
    assert bal.resources[Resource.INSTANCES].used == usage["instances"] == 3
    assert bal.resources[Resource.CORES].used == usage["cores"]
    assert bal.resources[Resource.RAM_MB].used == usage["ram"]

    # A fourth server does not fit the quota of three: refused with resource, limit and free amount.
    with pytest.raises(QuotaExceeded, match="instances limit 3, 0 free, 1 requested"), j.rt.db.unit_of_work() as uow:
        requests_service.create_request(
            uow.session, j.staff, j.form(1, prefix="four"), submit=True, settings=j.rt.settings
        )


def _scheduler(j: LabJourney, log: Path) -> subprocess.Popen[bytes]:
    settings = j.rt.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDMGR_")}
    env.update(
        CLOUDMGR_ENV="test",
        CLOUDMGR_INSTANCE_PATH=str(settings.instance_path),
        CLOUDMGR_DATABASE_URL=settings.database_url,
        CLOUDMGR_SECRET_KEY=settings.secret_key,
        CLOUDMGR_CLOUD_PROVIDER="openstack",
        CLOUDMGR_OS_CLIENT_CONFIG_FILE=settings.os_client_config_file,
        CLOUDMGR_MAX_CONCURRENT_BOOTS="1",  # one at a time: the kill lands between two servers
        CLOUDMGR_WORK_LEASE_SECONDS="5",
        CLOUDMGR_WORK_POLL_SECONDS="0.5",
        CLOUDMGR_SCHEDULER_LEASE_SECONDS="6",
    )
    # The child gets its own copy of the descriptor, so ours is closed as soon as it has started.
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "cloudmgr.cli", "scheduler", "run"], cwd=REPO, env=env, stdout=handle, stderr=handle
        )


@ONE_DATABASE
def test_provisioning_killed_after_the_first_server_finishes_with_exactly_three(
    lab_journey: LabJourney, tmp_path: Path
) -> None:
    j = lab_journey
    request_id = _submit_and_approve(j)
    log = tmp_path / "scheduler.log"
    scheduler = _scheduler(j, log)
    try:
        deadline = time.monotonic() + 180
        while not j.nova_servers():
            assert scheduler.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no server was created\n" + log.read_text()
            time.sleep(0.2)
        os.kill(scheduler.pid, signal.SIGKILL)  # dead mid-request: one server exists, two to go
        scheduler.wait(10)
        assert 1 <= len(j.nova_servers()) < 3
        scheduler = _scheduler(j, log)  # the restart
        deadline = time.monotonic() + 240
        while True:
            with j.rt.db.unit_of_work() as uow:
                state = uow.session.scalar(select(ServiceRequest.state).where(ServiceRequest.id == request_id))
            if state not in {"approved", "provisioning"}:
                break
            assert scheduler.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the restarted scheduler did not finish\n" + log.read_text()
            time.sleep(0.5)
    finally:
        scheduler.send_signal(signal.SIGTERM)
        try:
            scheduler.wait(30)
        except subprocess.TimeoutExpired:
            scheduler.kill()
    assert state == "active", log.read_text()[-4000:]
    servers = j.nova_servers()
    assert len(servers) == 3, [s.name for s in servers]
    assert len({s.metadata[IDEMPOTENCY_METADATA_KEY] for s in servers}) == 3


@PRODUCTION_DATABASE
def test_twenty_parallel_approvals_provision_exactly_five(
    lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path
) -> None:
    j = build_lab_journey(lab_runtime, tmp_path, lab_clouds_yaml, instances=20)
    try:
        ids = prepare_twenty_waiting_requests(j, fits=5)
        assert approve_concurrently(j, ids).count(True) == 5
        j.drain()
        with j.rt.db.unit_of_work() as uow:
            states = [r.state for r in uow.session.scalars(select(ServiceRequest))]
        assert states.count("active") == 5
        assert len(j.nova_servers()) == 5
    finally:
        clean_lab_department(j)
