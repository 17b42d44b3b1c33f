"""nova-api of the lab stopped for OUTAGE seconds (a minute, then the time nova-api takes to
start again) while a provisioning request starts: every attempt during the outage ends in
a retry with the reason recorded; after the recovery the request ends active with exactly
its servers, nothing lost or doubled, the ledger equal to Nova.

Other tests share the lab: nova-api is restarted in a ``finally`` and the lab is checked
healthy before the test ends; the lab's lock is held during the outage so that a
concurrent up.sh waits instead of restarting everything.  The work queue's backoff after
the recovery is skipped (due items are made due now, like an operator's "retry now"):
the backoff itself is proved in test_cloud_faults.py.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from cloudmgr.db import utcnow
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.workqueue.models import WorkItem
from cloudmgr.workqueue.services import Worker
from tests.journey_fixtures import LabJourney, build_lab_journey, clean_lab_department
from tests.production.checks import account, approve_fully, lab_form
from tests.production.labservice import lab_lock, lab_vars, nova_api_answers, start_nova_api, stop_nova_api
from tests.production.processes import REPO

pytestmark = [pytest.mark.lab, pytest.mark.postgres, pytest.mark.slow]

OUTAGE = 60.0  # the issue: "nova-api stopped for a minute"


def _item(j: LabJourney, request_id: int) -> WorkItem:
    with j.rt.db.unit_of_work() as uow:
        item = uow.session.scalar(select(WorkItem).where(WorkItem.key == f"provision:{request_id}"))
        assert item is not None
        uow.session.expunge(item)
        return item


def test_a_request_started_while_nova_api_is_down_ends_active_after_recovery(
    pg_lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path
) -> None:
    j = build_lab_journey(pg_lab_runtime, tmp_path, lab_clouds_yaml, instances=2)
    v = lab_vars()
    worker = Worker(j.rt.db, work_handlers())
    errors: list[str] = []
    try:
        with lab_lock(v):
            try:
                stop_nova_api(v)
                assert not nova_api_answers(1)
                down_at = time.monotonic()
                with j.rt.db.unit_of_work() as uow:
                    form = lab_form(j, 2, "outage")
                    request_id = requests_service.create_request(
                        uow.session, j.staff, form, submit=True, settings=j.rt.settings
                    ).id
                approve_fully(j, request_id)
                while time.monotonic() - down_at < OUTAGE:
                    worker.drain(max_items=5)
                    item = _item(j, request_id)
                    if item.last_error and item.last_error not in errors:
                        errors.append(item.last_error)
                    time.sleep(0.5)
                item = _item(j, request_id)
                assert item.state == "queued" and item.attempts >= 1, (item.state, item.last_error)
                assert errors and all("unreachable" in e for e in errors), errors
                with j.rt.db.unit_of_work() as uow:
                    request = uow.session.get(ServiceRequest, request_id)
                    assert request is not None and request.state == "provisioning"
                    # Nothing booted: each server is still to boot, or was asked of the cloud
                    # (BUILDING with no cloud id: the next run looks it up by its key first).
                    assert {(s.state, s.server_id) for s in request.servers} <= {("pending", None), ("building", None)}
            finally:
                restart = start_nova_api(v)
        print(
            f"\nnova-api down {OUTAGE:.0f} s + {restart:.0f} s to start again; attempts during the outage: "
            f"{item.attempts}; recorded reason: {errors[0][:160]}"
        )
        # Skip what is left of the backoff (an operator's "retry now"); then finish.
        with j.rt.db.unit_of_work() as uow:
            uow.session.execute(update(WorkItem).where(WorkItem.state == "queued").values(run_after=utcnow()))
        deadline = time.monotonic() + 180
        while True:
            worker.drain(max_items=20)
            with j.rt.db.unit_of_work() as uow:
                request = uow.session.get(ServiceRequest, request_id)
                assert request is not None
                state, reason = request.state, request.state_reason
            if state not in {"approved", "provisioning"}:
                break
            assert time.monotonic() < deadline, f"still {state} after the recovery: {_item(j, request_id).last_error}"
            time.sleep(1)
        assert state == "active", reason
        result = account(j)
        assert result.nova_servers == 2 and result.ok, result
    finally:
        if not nova_api_answers():
            start_nova_api(v)
        status = subprocess.run(
            ["bash", str(REPO / "vagrant" / "lab" / "status.sh")],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        clean_lab_department(j)
        assert status.returncode == 0, f"the lab is not healthy after the outage:\n{status.stdout[-3000:]}"
