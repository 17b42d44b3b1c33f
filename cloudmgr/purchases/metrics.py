"""Purchase metrics read from the database at scrape time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from cloudmgr.metrics import REGISTRY
from cloudmgr.purchases.models import PurchaseEvent, PurchaseRequest, PurchaseState

log = logging.getLogger(__name__)
DECISIONS = {"approve": "approved", "block": "blocked", "return": "returned"}


class PurchaseCollector(Collector):
    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        from cloudmgr.runtime import get_runtime

        decisions = CounterMetricFamily(
            "cloudmgr_purchases", "Finance decisions on purchase requests", labels=["decision"]
        )
        blocked = GaugeMetricFamily(
            "cloudmgr_purchases_blocked_yuan", "Amount of the purchase requests finance blocked, in yuan"
        )
        pending = GaugeMetricFamily("cloudmgr_purchases_pending", "Purchase requests waiting for finance")
        try:
            with get_runtime().db.unit_of_work() as uow:
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


def register() -> None:
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)
