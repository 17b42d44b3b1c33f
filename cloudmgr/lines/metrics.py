"""Dedicated-line metrics read from the database at scrape time (``cloudmgr_network_*``)."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from cloudmgr.db import Database
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.lines.models import NetworkLine
from cloudmgr.lines.rules import breaks_classified_rule, effective_target
from cloudmgr.metrics import REGISTRY

log = logging.getLogger(__name__)


class NetworkLineCollector(Collector):
    # The database whoever renders /metrics passes to register() (cloudmgr.metrics_exposition).
    db: Database | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lines = GaugeMetricFamily(
            "cloudmgr_network_lines",
            "Departments' dedicated lines by department, state and target (planned, else by rule)",
            labels=["department", "state", "target"],
        )
        rent = GaugeMetricFamily(
            "cloudmgr_network_monthly_rent_yuan",
            "Monthly rent of the departments' dedicated lines, yuan, by department and state",
            labels=["department", "state"],
        )
        conflicts = GaugeMetricFamily(
            "cloudmgr_network_classified_conflicts",
            "Lines on or planned onto the extranet or the internet that carry classified business",
        )
        try:
            if self.db is None:  # not registered by cloudmgr.metrics_exposition yet
                raise RuntimeError("no database to read")
            counts: Counter[tuple[str, str, str]] = Counter()
            rents: dict[tuple[str, str], Decimal] = {}
            broken = 0
            with self.db.unit_of_work() as uow:
                query = select(NetworkLine).options(
                    selectinload(NetworkLine.department),
                    selectinload(NetworkLine.systems).selectinload(LegacySystem.server_room),
                    selectinload(NetworkLine.rooms),
                )
                for line in uow.session.scalars(query):
                    key = line.department.key
                    counts[(key, line.state.value, effective_target(line).value)] += 1
                    rents[(key, line.state.value)] = rents.get((key, line.state.value), Decimal(0)) + line.monthly_rent
                    broken += int(breaks_classified_rule(line))
            for labels, count in sorted(counts.items()):
                lines.add_metric(list(labels), count)
            for (dept, state), total in sorted(rents.items()):
                rent.add_metric([dept, state], float(total))
            conflicts.add_metric([], broken)
        except Exception:
            log.exception("network line metrics unavailable")
        yield lines
        yield rent
        yield conflicts


_collector = NetworkLineCollector()


def register(db: Database) -> None:
    _collector.db = db
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)
