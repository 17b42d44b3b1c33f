"""Scheduler and cloud health read from the database at scrape time: whether a scheduler holds the
leader lease (no leader: nothing provisions, syncs or reconciles), when each cloud last answered
a sync (a cloud that stops answering stops being synced), and since when each cloud cannot be
reached at all (cloudmgr.organisation.reachability: whatever called it)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select

from cloudmgr.db import Database
from cloudmgr.metrics import REGISTRY

log = logging.getLogger(__name__)


class HealthCollector(Collector):
    # The database whoever renders /metrics passes to register() (cloudmgr.metrics_exposition).
    db: Database | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from cloudmgr.organisation.models import Cloud
        from cloudmgr.organisation.reachability import cloud_statuses
        from cloudmgr.scheduler.service import LEADER_LEASE
        from cloudmgr.workqueue.services import lease_holder

        leader = GaugeMetricFamily(
            "cloudmgr_scheduler_leader", "1 while a scheduler holds an unexpired leader lease, else 0"
        )
        synced = GaugeMetricFamily(
            "cloudmgr_cloud_last_sync_timestamp_seconds",
            "When each enabled cloud last answered a sync (Unix time; 0: never)",
            labels=["cloud"],
        )
        unreachable = GaugeMetricFamily(
            "cloudmgr_cloud_unreachable_since_timestamp_seconds",
            "Since when each enabled cloud cannot be reached, as cloudmgr's calls to it last found (Unix time; "
            "0: it answers, or was never called)",
            labels=["cloud"],
        )
        try:
            if self.db is None:  # not registered by cloudmgr.metrics_exposition yet
                raise RuntimeError("no database to read")
            held = lease_holder(self.db, LEADER_LEASE)
            leader.add_metric([], 1 if held is not None and held[1] else 0)
            with self.db.unit_of_work() as uow:
                for key, at in uow.session.execute(
                    select(Cloud.key, Cloud.synced_at).where(Cloud.enabled.is_(True)).order_by(Cloud.key)
                ):
                    synced.add_metric([key], at.timestamp() if at is not None else 0)
                for status in cloud_statuses(uow.session):
                    since = status.unreachable_since
                    unreachable.add_metric([status.cloud_key], since.timestamp() if since is not None else 0)
        except Exception:
            log.exception("scheduler and cloud health metrics unavailable")
        yield leader
        yield synced
        yield unreachable


_collector = HealthCollector()


def register(db: Database) -> None:
    _collector.db = db
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)
