"""The network programme's metrics, read at scrape time (``cloudmgr_network_*`` beside
:mod:`cloudmgr.lines.metrics`): remaining lines and rent by department and status (the at-risk rule of
:mod:`cloudmgr.lines.tracking`), the rent retired, contracts ending by what to do, and the rental
requests waiting for finance."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from cloudmgr.db import Database, utcnow
from cloudmgr.lines import tracking
from cloudmgr.lines.finance_models import LineRentalRequest, RentalState
from cloudmgr.metrics import REGISTRY

log = logging.getLogger(__name__)
STATUSES = ("on_track", "at_risk", "overdue", "done")


class NetworkProgrammeCollector(Collector):
    db: Database | None = None
    programme_file: Path | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        remaining = GaugeMetricFamily(
            "cloudmgr_network_programme_remaining_lines",
            "Dedicated lines still rented (not cut over or retired) by department, with the department's "
            "programme status (on_track, at_risk, overdue, done)",
            labels=["department", "status"],
        )
        rent = GaugeMetricFamily(
            "cloudmgr_network_programme_remaining_rent_yuan",
            "Monthly rent of the lines still rented, yuan, by department",
            labels=["department"],
        )
        departments = GaugeMetricFamily(
            "cloudmgr_network_programme_departments",
            "Departments with dedicated lines by programme status",
            labels=["status"],
        )
        retired = GaugeMetricFamily(
            "cloudmgr_network_retired_rent_yuan", "Monthly rent no longer paid: lines cut over or retired, yuan"
        )
        ending = GaugeMetricFamily(
            "cloudmgr_network_contracts_ending",
            "Line contracts ending within 90 days (or ended, the line still rented) by what should happen",
            labels=["action"],
        )
        waiting = GaugeMetricFamily(
            "cloudmgr_network_rentals_waiting", "Line rental and renewal requests waiting for finance"
        )
        oldest = GaugeMetricFamily(
            "cloudmgr_network_rental_oldest_waiting_seconds",
            "How long the oldest line rental or renewal request has waited for finance (0: none waits)",
        )
        try:
            if self.db is None or self.programme_file is None:
                raise RuntimeError("no database or programme file to read")
            config = tracking.read_lines_config(self.programme_file)
            with self.db.unit_of_work() as uow:
                s = uow.session
                when = tracking.today()
                figures = tracking.compute(s, config, when)
                ends = tracking.contracts_ending(s, when, days=config.ending_days)
                saved = tracking.savings(s).monthly_rent
                count, first = s.execute(
                    select(func.count(), func.min(LineRentalRequest.submitted_at)).where(
                        LineRentalRequest.state == RentalState.SUBMITTED
                    )
                ).one()
            statuses = Counter(r.status for r in figures.departments)
            for row in figures.departments:
                remaining.add_metric([row.key, row.status], row.remaining)
                rent.add_metric([row.key], float(row.rent_remaining))
            for status in STATUSES:
                departments.add_metric([status], statuses.get(status, 0))
            retired.add_metric([], float(saved))
            actions = Counter(r.action for r in ends)
            for action in tracking.ACTIONS:
                ending.add_metric([action], actions.get(action, 0))
            waiting.add_metric([], int(count or 0))
            oldest.add_metric([], (utcnow() - first).total_seconds() if first is not None else 0)
        except Exception:
            log.exception("network programme metrics unavailable")
        yield from (remaining, rent, departments, retired, ending, waiting, oldest)


_collector = NetworkProgrammeCollector()


def register(db: Database, programme_file: Path) -> None:
    _collector.db, _collector.programme_file = db, programme_file
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)
