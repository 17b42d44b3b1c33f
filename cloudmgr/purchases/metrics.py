"""Purchase metrics read from the database at scrape time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from cloudmgr.db import Database
from cloudmgr.metrics import REGISTRY
from cloudmgr.purchases.models import PurchaseEvent, PurchaseRequest, PurchaseState

log = logging.getLogger(__name__)
DECISIONS = {"approve": "approved", "block": "blocked", "return": "returned"}


class PurchaseCollector(Collector):
    # The database whoever renders /metrics passes to register() (cloudmgr.metrics_exposition): the
    # collector is registered once on the process-wide registry, the database is the renderer's.
    db: Database | None = None

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        decisions = CounterMetricFamily(
            "cloudmgr_purchases", "Finance decisions on purchase requests", labels=["decision"]
        )
        blocked = GaugeMetricFamily(
            "cloudmgr_purchases_blocked_yuan", "Amount of the purchase requests finance blocked, in yuan"
        )
        pending = GaugeMetricFamily("cloudmgr_purchases_pending", "Purchase requests waiting for finance")
        try:
            if self.db is None:  # not registered by cloudmgr.metrics_exposition yet
                raise RuntimeError("no database to read")
            with self.db.unit_of_work() as uow:
                session = uow.session
                counts: dict[str, int] = {
                    action: int(n)
                    for action, n in session.execute(
                        select(PurchaseEvent.action, func.count())
                        .where(PurchaseEvent.action.in_(DECISIONS))
                        .group_by(PurchaseEvent.action)
                    ).all()
                }
                for action, label in DECISIONS.items():
                    decisions.add_metric([label], counts.get(action, 0))
                amount = session.scalar(
                    select(func.sum(PurchaseRequest.amount_yuan)).where(PurchaseRequest.state == PurchaseState.BLOCKED)
                )
                blocked.add_metric([], float(amount or 0))
                pending.add_metric(
                    [],
                    session.scalar(
                        select(func.count()).where(
                            PurchaseRequest.state.in_([PurchaseState.SUBMITTED, PurchaseState.RESUBMITTED])
                        )
                    )
                    or 0,
                )
        except Exception:
            log.exception("purchase metrics unavailable")
        yield from (decisions, blocked, pending)


_collector = PurchaseCollector()


def register(db: Database) -> None:
    _collector.db = db
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)
