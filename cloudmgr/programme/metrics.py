"""Programme metrics, computed from the inventory at scrape time (systems by state are the
inventory's own metric): overdue and at-risk systems, server rooms closed, waves by state."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from cloudmgr.db import Database
from cloudmgr.metrics import REGISTRY

log = logging.getLogger(__name__)


class ProgrammeCollector(Collector):
    # The database and the programme file whoever renders /metrics passes to register()
    # (cloudmgr.metrics_exposition): the collector is registered once on the process-wide
    # registry, what it reads is the renderer's.
    db: Database | None = None
    programme_file: Path | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from cloudmgr.programme import tracking
        from cloudmgr.programme.config import read_programme_file
        from cloudmgr.programme.models import OPEN_STATES, MigrationWave, WaveState

        overdue = GaugeMetricFamily(
            "cloudmgr_overdue_systems", "In-scope legacy systems past their deadline and not on the cloud"
        )
        at_risk = GaugeMetricFamily(
            "cloudmgr_at_risk_systems", "In-scope legacy systems at risk of missing their deadline"
        )
        rooms = GaugeMetricFamily("cloudmgr_server_rooms", "Server rooms, open or closed", labels=["state"])
        waves = GaugeMetricFamily("cloudmgr_migration_waves", "Migration waves by state", labels=["state"])
        late_waves = GaugeMetricFamily(
            "cloudmgr_migration_waves_past_window", "Open migration waves whose window has ended"
        )
        try:
            if self.db is None or self.programme_file is None:  # not registered by cloudmgr.metrics_exposition yet
                raise RuntimeError("no database to read")
            config = read_programme_file(self.programme_file)
            with self.db.unit_of_work() as uow:
                figures = tracking.compute(uow.session, config, tracking.today())
                late = uow.session.scalar(
                    select(func.count(MigrationWave.id)).where(
                        MigrationWave.state.in_([state.value for state in OPEN_STATES]),
                        MigrationWave.window_end < tracking.today(),
                    )
                )
                counts: dict[str, int] = {
                    state: n
                    for state, n in uow.session.execute(
                        select(MigrationWave.state, func.count(MigrationWave.id)).group_by(MigrationWave.state)
                    )
                }
            overdue.add_metric([], len(figures.overdue))
            at_risk.add_metric([], len(figures.at_risk))
            rooms.add_metric(["closed"], figures.rooms_closed)
            rooms.add_metric(["open"], len(figures.rooms) - figures.rooms_closed)
            for state in WaveState:
                waves.add_metric([state.value], counts.get(state.value, 0))
            late_waves.add_metric([], late or 0)
        except Exception:
            log.exception("programme metrics unavailable")
        yield overdue
        yield at_risk
        yield rooms
        yield waves
        yield late_waves


_collector = ProgrammeCollector()


def register(db: Database, programme_file: Path) -> None:
    _collector.db, _collector.programme_file = db, programme_file
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)
