"""Quotas as code, the package's public face: what the web, the CLI and the jobs call.

The work lives in cohesive modules: :mod:`cloudmgr.quotas.plans` (check, plan, apply, export
the files), :mod:`cloudmgr.quotas.cloudsync` (push limits to a cloud, reconcile usage and
drift: job-shaped, never inside a caller's transaction) and :mod:`cloudmgr.quotas.changes`
(quota-change requests, session-only).  Balances come from the ledger.
"""

from __future__ import annotations

from cloudmgr.quotas.changes import AUTO_APPROVAL_WINDOW as AUTO_APPROVAL_WINDOW
from cloudmgr.quotas.changes import change_requests as change_requests
from cloudmgr.quotas.changes import decide_change as decide_change
from cloudmgr.quotas.changes import get_change as get_change
from cloudmgr.quotas.changes import may_decide_change as may_decide_change
from cloudmgr.quotas.changes import may_request_change as may_request_change
from cloudmgr.quotas.changes import queue_cloud_push as queue_cloud_push
from cloudmgr.quotas.changes import request_change as request_change
from cloudmgr.quotas.cloudsync import ReconcileResult as ReconcileResult
from cloudmgr.quotas.cloudsync import open_drifts as open_drifts
from cloudmgr.quotas.cloudsync import push_limits_to_cloud as push_limits_to_cloud
from cloudmgr.quotas.cloudsync import recent_drifts as recent_drifts
from cloudmgr.quotas.cloudsync import reconcile as reconcile
from cloudmgr.quotas.files import QuotaDefinitions as QuotaDefinitions  # re-exported: the web reads them here
from cloudmgr.quotas.files import read_quota_files as read_quota_files
from cloudmgr.quotas.ledger import Balance as Balance  # re-exported: the web reads balances here
from cloudmgr.quotas.ledger import all_balances as all_balances
from cloudmgr.quotas.ledger import balance as balance
from cloudmgr.quotas.plans import APPLY_WORK as APPLY_WORK
from cloudmgr.quotas.plans import ApplyQueued as ApplyQueued
from cloudmgr.quotas.plans import ApplyResult as ApplyResult
from cloudmgr.quotas.plans import PlanLine as PlanLine
from cloudmgr.quotas.plans import apply as apply
from cloudmgr.quotas.plans import check as check
from cloudmgr.quotas.plans import export as export
from cloudmgr.quotas.plans import load_and_check as load_and_check
from cloudmgr.quotas.plans import plan as plan
from cloudmgr.quotas.plans import queue_apply as queue_apply
from cloudmgr.quotas.plans import read_clouds as read_clouds
from cloudmgr.quotas.resources import RESOURCES as RESOURCES  # re-exported: the pages list the resources in lock order
from cloudmgr.quotas.resources import Limits as Limits
