"""Legacy-system metrics read from the database at scrape time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from cloudmgr.db import Database
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.metrics import REGISTRY

log = logging.getLogger(__name__)


class LegacySystemCollector(Collector):
    # The database whoever renders /metrics passes to register() (cloudmgr.metrics_exposition): the
    # collector is registered once on the process-wide registry, the database is the renderer's.
    db: Database | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        systems = GaugeMetricFamily(
            "cloudmgr_legacy_systems",
            "Legacy systems of the inventory by programme state and classification",
            labels=["state", "classification"],
        )
        try:
            if self.db is None:  # not registered by cloudmgr.metrics_exposition yet
                raise RuntimeError("no database to read")
            with self.db.unit_of_work() as uow:
                for state, classification, count in uow.session.execute(
                    select(LegacySystem.state, LegacySystem.classification, func.count()).group_by(
                        LegacySystem.state, LegacySystem.classification
                    )
                ):
                    systems.add_metric([state, classification], count)
        except Exception:
            log.exception("legacy system metrics unavailable")
        yield systems


_collector = LegacySystemCollector()


def register(db: Database) -> None:
    _collector.db = db
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)
