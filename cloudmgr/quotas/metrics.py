"""Quota metrics, read from the ledger at scrape time so they are never stale."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from cloudmgr.db import Database
from cloudmgr.metrics import REGISTRY
from cloudmgr.quotas.models import QuotaDrift, QuotaLedgerRow

log = logging.getLogger(__name__)


class QuotaCollector(Collector):
    # The database whoever renders /metrics passes to register() (cloudmgr.metrics_exposition): the
    # collector is registered once on the process-wide registry, the database is the renderer's.
    db: Database | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["department", "cloud", "resource"]
        limit = GaugeMetricFamily(
            "cloudmgr_quota_limit", "Ledger limit per department, cloud and resource", labels=labels
        )
        used = GaugeMetricFamily(
            "cloudmgr_quota_used", "Ledger usage per department, cloud and resource", labels=labels
        )
        reserved = GaugeMetricFamily(
            "cloudmgr_quota_reserved", "Resources held by reservations in flight", labels=labels
        )
        drift = GaugeMetricFamily(
            "cloudmgr_quota_drift", "1 while the cloud's limit differs from the ledger's (open drift)", labels=labels
        )
        try:
            if self.db is None:  # not registered by cloudmgr.metrics_exposition yet
                raise RuntimeError("no database to read")
            with self.db.unit_of_work() as uow:
                rows = uow.session.scalars(
                    select(QuotaLedgerRow).options(
                        selectinload(QuotaLedgerRow.department), selectinload(QuotaLedgerRow.cloud)
                    )
                ).all()
                open_drifts = {
                    (d.department_id, d.cloud_id, d.resource)
                    for d in uow.session.scalars(select(QuotaDrift).where(QuotaDrift.resolved_at.is_(None)))
                }
                for row in rows:
                    values = [row.department.key, row.cloud.key, row.resource]
                    limit.add_metric(values, row.limit)
                    used.add_metric(values, row.used)
                    reserved.add_metric(values, row.reserved)
                    drift.add_metric(values, 1 if (row.department_id, row.cloud_id, row.resource) in open_drifts else 0)
        except Exception:  # a scrape must never fail because the database is busy
            log.exception("quota metrics unavailable")
        yield from (limit, used, reserved, drift)


_collector = QuotaCollector()


def register(db: Database) -> None:
    _collector.db = db
    with contextlib.suppress(ValueError):  # already registered
        REGISTRY.register(_collector)
