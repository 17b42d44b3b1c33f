"""Quota work that reaches a cloud: run by the scheduler's workers, never inside a request.

An approved quota change writes a ``quota.push`` work item in the same transaction as the
approval (:func:`cloudmgr.quotas.services.queue_cloud_push`); the worker sets the project's
quota on the cloud afterwards, retrying with backoff while the cloud does not answer.
"""

from __future__ import annotations

from sqlalchemy import select

from cloudmgr.db import Database
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.quotas.cloudsync import push_limits_to_cloud
from cloudmgr.quotas.models import QuotaChangeRequest, QuotaLedgerRow
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import get_runtime
from cloudmgr.workqueue.services import ClaimedItem, GiveUp, RetryLater

PUSH_KIND = "quota.push"


def handle_quota_push(db: Database, item: ClaimedItem) -> None:
    """Set the cloud's quota to the ledger's limits for the resources the change named.

    The ledger's limits as they are now, not the change's: when two changes are approved
    one after the other, a retried push of the first never overwrites the second."""
    with db.unit_of_work() as uow:
        change = uow.session.get(QuotaChangeRequest, int(item.payload["change_id"]))
        if change is None:
            raise GiveUp(f"quota change {item.payload['change_id']} no longer exists")
        named = {Resource(k) for k in change.requested_limits}
        department_id, cloud_id = change.department_id, change.cloud_id
        limits = {
            Resource(row.resource): row.limit
            for row in uow.session.scalars(
                select(QuotaLedgerRow).where(
                    QuotaLedgerRow.department_id == department_id, QuotaLedgerRow.cloud_id == cloud_id
                )
            )
            if Resource(row.resource) in named
        }
    # The push carries out the decision of whoever approved it (an operator, or the
    # one-size-up rule): it is audited under their name.
    approver = Actor(username=str(item.payload.get("actor", "system")), role=Role.OPERATOR)
    error = push_limits_to_cloud(db, get_runtime().providers, department_id, cloud_id, limits, actor=approver)
    if error:
        raise RetryLater(f"quota change {item.payload['change_id']} not yet on the cloud: {error}")


def handle_quota_apply(db: Database, item: ClaimedItem) -> None:
    """``cloudmgr quotas apply`` an administrator asked for on the admin pages: the ledger, then
    the clouds.  What it did is recorded in the audit log under the work item (the page shows it)."""
    from cloudmgr.audit import services as audit
    from cloudmgr.quotas.errors import QuotaFilesInvalid
    from cloudmgr.quotas.plans import APPLY_WORK, apply

    runtime = get_runtime()
    actor = Actor(username=str(item.payload.get("actor", "system")), role=Role.ADMIN)
    detail: dict[str, object]
    try:
        result = apply(db, runtime.providers, runtime.settings.quotas_dir, actor=actor)
    except QuotaFilesInvalid as exc:  # the files changed since they were checked
        problems = list(exc.problems)
        detail = {"ledger_changed": 0, "cloud_changed": 0, "not_on_cloud": [], "problems": problems}
    else:
        problems = list(result.problems)
        detail = {
            "ledger_changed": len(result.ledger_changed),
            "cloud_changed": len(result.cloud_changed),
            "not_on_cloud": list(result.not_on_cloud),
            "problems": problems,
        }
    with db.unit_of_work() as uow:
        audit.record(
            uow.session, actor=actor.username, action=APPLY_WORK, target_type="work", target_id=item.id, detail=detail
        )
    if problems:
        raise GiveUp("; ".join(problems))
