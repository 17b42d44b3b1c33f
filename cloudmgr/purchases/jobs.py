"""Purchase work that reads the clouds: run by the scheduler's workers, never inside a request.

A submission computes its findings at once from the database (capacity from the latest
snapshot) and queues ``purchase.findings``: the worker reads the department's clouds' live
capacity from Placement with no transaction open, then locks the purchase briefly and computes
the findings again with it.  A purchase decided, withdrawn or resubmitted meanwhile is left as
it is (the resubmission queued its own item).
"""

from __future__ import annotations

from sqlalchemy import select

from cloudmgr.db import Database
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.purchases.models import PENDING_STATES, PurchaseRequest
from cloudmgr.purchases.offers import CapacityReader
from cloudmgr.purchases.services import FindingContext, compute_findings, context_for
from cloudmgr.runtime import get_runtime
from cloudmgr.workqueue.services import ClaimedItem

FINDINGS_KIND = "purchase.findings"


def _still_waiting(purchase: PurchaseRequest | None, submission: int) -> bool:
    return purchase is not None and purchase.state in PENDING_STATES and purchase.submissions == submission


def handle_purchase_findings(db: Database, item: ClaimedItem) -> None:
    purchase_id, submission = int(item.payload["purchase_id"]), int(item.payload["submission"])
    runtime = get_runtime()
    with db.unit_of_work() as uow:
        purchase = uow.session.get(PurchaseRequest, purchase_id)
        if not _still_waiting(purchase, submission):
            return
        assert purchase is not None
        clouds = [
            (cloud.key, cloud.os_cloud, cloud.region)
            for cloud in uow.session.scalars(
                select(Cloud)
                .join(DepartmentCloud, DepartmentCloud.cloud_id == Cloud.id)
                .where(DepartmentCloud.department_id == purchase.department_id, Cloud.enabled.is_(True))
            )
        ]
    capacity = CapacityReader()
    capacity.read_live(runtime.providers, clouds)  # the cloud calls: no transaction open
    context = FindingContext(definitions=context_for(runtime.settings).definitions, capacity=capacity)
    with db.unit_of_work() as uow:
        purchase = uow.session.get(PurchaseRequest, purchase_id, with_for_update=True)
        if _still_waiting(purchase, submission):
            assert purchase is not None
            compute_findings(uow.session, purchase, context)
