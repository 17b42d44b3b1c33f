"""What ``/metrics`` answers: the shared registry (``cloudmgr.metrics``) with the domain packages'
collectors, which read the database at scrape time, registered on it.

The domain ``*.metrics`` modules import ``cloudmgr.metrics`` for the registry; this module imports
them, so the registry never imports a domain package back.  Whoever renders (the /metrics view, a
test) passes the database and the settings in: this module does not read the process-global runtime.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest

from cloudmgr.capacity.metrics import register as register_capacity_metrics

# The cloudservers, moves and runbooks metrics are imported for their metrics (module-level counters
# and histograms on the registry): /metrics names them, with no samples yet, even in a process that
# has not synced, moved a server or run a runbook.
from cloudmgr.cloudservers import metrics as _server_sync_metrics  # noqa: F401
from cloudmgr.config import Settings
from cloudmgr.db import Database
from cloudmgr.inventory.metrics import register as register_inventory_metrics
from cloudmgr.lines.metrics import register as register_line_metrics
from cloudmgr.lines.programme_metrics import register as register_line_programme_metrics
from cloudmgr.metrics import REGISTRY
from cloudmgr.moves import metrics as _move_metrics  # noqa: F401
from cloudmgr.programme.metrics import register as register_programme_metrics
from cloudmgr.purchases.metrics import register as register_purchase_metrics
from cloudmgr.quotas.metrics import register as register_quota_metrics
from cloudmgr.runbooks import metrics as _runbook_metrics  # noqa: F401
from cloudmgr.scheduler.metrics import register as register_health_metrics
from cloudmgr.servicerequests.metrics import register as register_request_metrics


def register_domain_collectors(db: Database, *, capacity_file: Path, programme_file: Path) -> None:
    """Collectors that read the database at scrape time (``db``: the one they read; the capacity and
    programme collectors also read their configuration files)."""
    register_capacity_metrics(db, capacity_file)
    register_inventory_metrics(db)
    register_line_metrics(db)
    register_line_programme_metrics(db, programme_file)
    register_programme_metrics(db, programme_file)
    register_purchase_metrics(db)
    register_quota_metrics(db)
    register_request_metrics(db)
    register_health_metrics(db)


def render(db: Database, settings: Settings) -> bytes:
    """The exposition text; the collectors read ``db`` and the configuration files ``settings`` names."""
    register_domain_collectors(db, capacity_file=settings.capacity_file, programme_file=settings.programme_file)
    return generate_latest(REGISTRY)
