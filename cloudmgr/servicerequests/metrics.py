"""Request metrics read from the database at scrape time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from cloudmgr.db import Database, utcnow
from cloudmgr.metrics import REGISTRY
from cloudmgr.organisation.models import Cloud
from cloudmgr.servicerequests.models import ManagedServer, OrphanServer, ServiceRequest
from cloudmgr.servicerequests.states import RequestState

log = logging.getLogger(__name__)


class RequestCollector(Collector):
    # The database whoever renders /metrics passes to register() (cloudmgr.metrics_exposition): the
    # collector is registered once on the process-wide registry, the database is the renderer's.
    db: Database | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        requests = GaugeMetricFamily("cloudmgr_requests", "VM requests by state and cloud", labels=["state", "cloud"])
        servers = GaugeMetricFamily("cloudmgr_servers", "Managed servers by state and cloud", labels=["state", "cloud"])
        orphans = GaugeMetricFamily("cloudmgr_orphan_servers", "Servers with cloudmgr metadata no request owns")
        oldest = GaugeMetricFamily(
            "cloudmgr_request_oldest_provisioning_seconds",
            "Age of the oldest request still provisioning, by cloud (no sample: none is)",
            labels=["cloud"],
        )
        try:
            if self.db is None:  # not registered by cloudmgr.metrics_exposition yet
                raise RuntimeError("no database to read")
            with self.db.unit_of_work() as uow:
                session = uow.session
                for state, cloud, count in session.execute(
                    select(ServiceRequest.state, Cloud.key, func.count())
                    .join(Cloud, Cloud.id == ServiceRequest.cloud_id)
                    .group_by(ServiceRequest.state, Cloud.key)
                ):
                    requests.add_metric([state, cloud], count)
                for state, cloud, count in session.execute(
                    select(ManagedServer.state, Cloud.key, func.count())
                    .join(Cloud, Cloud.id == ManagedServer.cloud_id)
                    .group_by(ManagedServer.state, Cloud.key)
                ):
                    servers.add_metric([state, cloud], count)
                orphans.add_metric(
                    [], session.scalar(select(func.count()).where(OrphanServer.resolved_at.is_(None))) or 0
                )
                now = utcnow()
                for cloud, started in session.execute(
                    select(Cloud.key, func.min(ServiceRequest.provisioning_started_at))
                    .join(Cloud, Cloud.id == ServiceRequest.cloud_id)
                    .where(ServiceRequest.state == RequestState.PROVISIONING)
                    .group_by(Cloud.key)
                ):
                    oldest.add_metric([cloud], max(0.0, (now - started).total_seconds()) if started else 0.0)
        except Exception:
            log.exception("request metrics unavailable")
        yield from (requests, servers, orphans, oldest)


_collector = RequestCollector()


def register(db: Database) -> None:
    _collector.db = db
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)
