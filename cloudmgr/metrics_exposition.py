"""What ``/metrics`` answers: the shared registry (``cloudmgr.metrics``) with the domain packages'
collectors, which read the database at scrape time, registered on it.

The domain ``*.metrics`` modules import ``cloudmgr.metrics`` for the registry; this module imports
them, so the registry never imports a domain package back.
"""

from __future__ import annotations

from prometheus_client import generate_latest

from cloudmgr.capacity.metrics import register as register_capacity_metrics
from cloudmgr.db import Database
from cloudmgr.inventory.metrics import register as register_inventory_metrics
from cloudmgr.metrics import REGISTRY
from cloudmgr.programme.metrics import register as register_programme_metrics
from cloudmgr.purchases.metrics import register as register_purchase_metrics
from cloudmgr.quotas.metrics import register as register_quota_metrics
from cloudmgr.runtime import get_runtime
from cloudmgr.servicerequests.metrics import register as register_request_metrics


def register_domain_collectors(db: Database) -> None:
    """Collectors that read the database at scrape time (``db``: the one they read)."""
    register_capacity_metrics(db, get_runtime().settings.capacity_file)
    register_inventory_metrics(db)
    register_programme_metrics(db, get_runtime().settings.programme_file)
    register_purchase_metrics(db)
    register_quota_metrics(db)
    register_request_metrics(db)


def render(db: Database | None = None) -> bytes:
    """The exposition text; the collectors read ``db``, by default the process's (an entry point: /metrics)."""
    register_domain_collectors(db if db is not None else get_runtime().db)
    return generate_latest(REGISTRY)
