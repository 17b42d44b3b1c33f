"""Capacity metrics from the newest snapshots, read at scrape time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cloudmgr.db import Database
from cloudmgr.metrics import REGISTRY

log = logging.getLogger(__name__)


class CapacityCollector(Collector):
    # The database and the capacity file whoever renders /metrics passes to register()
    # (cloudmgr.metrics_exposition): the collector is registered once on the process-wide
    # registry, what it reads is the renderer's.
    db: Database | None = None
    capacity_file: Path | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from cloudmgr.capacity.config import read_capacity_file
        from cloudmgr.capacity.services import latest_snapshots, server_trend

        families = {
            name: GaugeMetricFamily(f"cloudmgr_capacity_{name}", text, labels=["base", "endpoint", "source"])
            for name, text in (
                ("physical_servers", "Physical servers (compute hosts)"),
                ("vcpus_total", "vCPUs schedulable (with allocation ratios)"),
                ("vcpus_used", "vCPUs allocated"),
                ("ram_mb_total", "RAM schedulable, MB"),
                ("ram_mb_used", "RAM allocated, MB"),
                ("disk_gb_total", "Disk schedulable, GB"),
                ("disk_gb_used", "Disk allocated, GB"),
            )
        }
        target = GaugeMetricFamily("cloudmgr_capacity_target_servers", "Target server count by date", labels=["date"])
        total = GaugeMetricFamily("cloudmgr_capacity_servers_total", "Physical servers across all bases")
        try:
            if self.db is None or self.capacity_file is None:  # not registered by cloudmgr.metrics_exposition yet
                raise RuntimeError("no database to read")
            with self.db.unit_of_work() as uow:
                for snapshot in latest_snapshots(uow.session):
                    labels = [snapshot.base, snapshot.endpoint, snapshot.source]
                    for name, family in families.items():
                        family.add_metric(labels, getattr(snapshot, name))
                trend = server_trend(uow.session)
            total.add_metric([], trend[-1][1] if trend else 0)
            for t in read_capacity_file(self.capacity_file).targets:
                target.add_metric([t.date.isoformat()], t.servers)
        except Exception:
            log.exception("capacity metrics unavailable")
        yield from families.values()
        yield total
        yield target


_collector = CapacityCollector()


def register(db: Database, capacity_file: Path) -> None:
    _collector.db, _collector.capacity_file = db, capacity_file
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)
