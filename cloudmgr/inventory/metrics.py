"""Legacy-system metrics read from the database at scrape time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from cloudmgr.inventory.models import LegacySystem
from cloudmgr.metrics import REGISTRY

log = logging.getLogger(__name__)


class LegacySystemCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        from cloudmgr.runtime import get_runtime

        systems = GaugeMetricFamily(
            "cloudmgr_legacy_systems",
            "Legacy systems of the inventory by programme state and classification",
            labels=["state", "classification"],
        )
        try:
            with get_runtime().db.unit_of_work() as uow:
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


def register() -> None:
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)
