"""Twenty concurrent approvals for a quota that fits five: exactly five go through.

Their reservations lapsed while they waited (a stale request must not block the quota),
so each final approval takes the quota again: atomically, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from cloudmgr.organisation.models import Cloud
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.jobs import ReconcileReport, release_lapsed_reservations
from cloudmgr.servicerequests.models import ServiceRequest
from tests.journey_fixtures import Journey


def prepare_twenty_waiting_requests(j: Journey, *, fits: int) -> list[int]:
    """Twenty one-VM requests approved by the head, waiting for the operator, holding no quota,
    on a quota that fits ``fits`` of them."""
    ids = []
    forms = [j.form(1, prefix=f"race{i}") for i in range(20)]
    with j.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == "education"))
        assert cloud_id is not None and j.staff.department_id is not None
        rows = ledger.ensure_rows(uow.session, j.staff.department_id, cloud_id)
        rows[Resource.INSTANCES].limit = 20
        rows[Resource.CORES].limit = 100
        rows[Resource.RAM_MB].limit = 100 * 1024
        # Each waiting request holds its firewall group (members-only by default) until provisioned.
        rows[Resource.SECURITY_GROUPS].limit = 20
        rows[Resource.SECURITY_GROUP_RULES].limit = 20 * 4
    for form in forms:
        with j.rt.db.unit_of_work() as uow:
            request = requests_service.create_request(uow.session, j.staff, form, submit=True, settings=j.rt.settings)
            ids.append(request.id)
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, j.head, request.id)
    report = ReconcileReport()
    release_lapsed_reservations(j.rt.db, 0, report)
    assert report.lapsed_reservations == 20
    with j.rt.db.unit_of_work() as uow:
        rows = ledger.ensure_rows(uow.session, j.staff.department_id, cloud_id)
        rows[Resource.INSTANCES].limit = fits
    return ids


def approve_concurrently(j: Journey, ids: list[int]) -> list[bool]:
    barrier = threading.Barrier(len(ids))

    def approve(request_id: int) -> bool:
        barrier.wait()
        try:
            with j.rt.db.unit_of_work() as uow:
                requests_service.approve_request(uow.session, j.operator, request_id)
            return True
        except QuotaExceeded:
            return False

    with ThreadPoolExecutor(len(ids)) as pool:
        return list(pool.map(approve, ids))


def test_twenty_parallel_approvals_for_five(journey: Journey) -> None:
    ids = prepare_twenty_waiting_requests(journey, fits=5)
    results = approve_concurrently(journey, ids)
    assert results.count(True) == 5
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        states = [r.state for r in uow.session.scalars(select(ServiceRequest))]
    assert states.count("active") == 5 and states.count("submitted") == 15
