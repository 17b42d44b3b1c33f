"""Fifty concurrent approvals through the API of TWO gunicorn processes on PostgreSQL,
against a quota that fits ten: exactly ten are approved and ten servers boot on the lab's
Nova (m1.tiny); the forty others are refused with `quota_exceeded` and keep waiting."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from cloudmgr.organisation.models import Cloud
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.jobs import ReconcileReport, release_lapsed_reservations
from cloudmgr.workqueue.services import Worker
from tests.journey_fixtures import LabJourney, build_lab_journey, clean_lab_department
from tests.production.checks import account, api_token, lab_form, request_states
from tests.production.processes import Api, Proc, process_env, web_proc

pytestmark = [pytest.mark.lab, pytest.mark.postgres, pytest.mark.slow]

REQUESTS = 50
FITS = 10


def _fifty_waiting_for_the_operator(j: LabJourney) -> list[int]:
    """One-VM m1.tiny requests approved by the head, waiting for the operator and holding
    no quota (their reservations lapsed), on a quota that then fits ``FITS``."""
    with j.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == "education"))
        assert cloud_id is not None and j.staff.department_id is not None
        rows = ledger.ensure_rows(uow.session, j.staff.department_id, cloud_id)
        rows[Resource.INSTANCES].limit = REQUESTS
        rows[Resource.CORES].limit = REQUESTS
        rows[Resource.RAM_MB].limit = REQUESTS * 512
    ids = []
    for i in range(REQUESTS):
        with j.rt.db.unit_of_work() as uow:
            form = lab_form(j, 1, f"race{i}")
            request = requests_service.create_request(uow.session, j.staff, form, submit=True, settings=j.rt.settings)
            ids.append(request.id)
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, j.head, request.id)
    report = ReconcileReport()
    release_lapsed_reservations(j.rt.db, 0, report)
    assert report.lapsed_reservations == REQUESTS
    with j.rt.db.unit_of_work() as uow:
        ledger.ensure_rows(uow.session, j.staff.department_id, cloud_id)[Resource.INSTANCES].limit = FITS
    return ids


def test_fifty_approvals_on_two_web_processes_boot_exactly_ten(
    pg_lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path
) -> None:
    j = build_lab_journey(pg_lab_runtime, tmp_path, lab_clouds_yaml, instances=REQUESTS)
    webs: list[Proc] = []
    try:
        ids = _fifty_waiting_for_the_operator(j)
        token = api_token(j, f"{j.department_key}-ops")
        env = process_env(j.rt.settings)
        webs = [web_proc(env, tmp_path / f"web-{n}.log", name=f"web-{n}", workers=2, threads=4) for n in (1, 2)]
        for web in webs:
            web.start()
        for web in webs:
            web.wait_http()
        apis = [Api(web.port or 0, token) for web in webs]
        barrier = threading.Barrier(REQUESTS)

        def approve(index: int) -> tuple[int, object]:
            barrier.wait()
            return apis[index % 2].call("POST", f"/requests/{ids[index]}/approve", {"reason": "race"}, timeout=60)

        with ThreadPoolExecutor(REQUESTS) as pool:
            answers = list(pool.map(approve, range(REQUESTS)))
        statuses = sorted(status for status, _ in answers)
        assert statuses.count(200) == FITS, answers
        refused = [body for status, body in answers if status == 409]
        assert len(refused) == REQUESTS - FITS, answers
        assert all(isinstance(b, dict) and b["error"] == "quota_exceeded" for b in refused), refused[:3]
        # Both processes served approvals that won.
        winners = {index % 2 for index, (status, _) in enumerate(answers) if status == 200}
        print(f"approvals won through web process(es) {sorted(w + 1 for w in winners)}")

        # Provision what was approved (four workers at once, as a busy scheduler would).
        def drain() -> int:
            return Worker(j.rt.db, work_handlers()).drain(max_items=100)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: drain(), range(4)))
        j.drain()
        states = [state for state, _ in request_states(j).values()]
        assert states.count("active") == FITS, request_states(j)
        assert states.count("submitted") == REQUESTS - FITS
        result = account(j)
        assert result.nova_servers == FITS
        assert result.ok, result
    finally:
        for web in webs:
            web.stop()
        clean_lab_department(j)
