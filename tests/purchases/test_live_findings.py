"""A submission never calls a cloud while it holds the purchase (issue 15): its findings come from
the database at once, and again from the clouds' live capacity through a work item."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from cloudmgr.cloud.simulated import SimulatedProvider
from cloudmgr.purchases import services
from cloudmgr.purchases.models import FindingKind, PurchaseRequest
from cloudmgr.workqueue.models import WorkItem, WorkState
from tests.journey_fixtures import Journey
from tests.purchases.helpers import server_form


def _kinds(pj: Journey, purchase_id: int) -> dict[str, dict[str, Any]]:
    with pj.rt.db.unit_of_work() as uow:
        purchase = uow.session.get(PurchaseRequest, purchase_id)
        assert purchase is not None
        return {f.kind: dict(f.evidence or {}) for f in purchase.findings}


def _items(pj: Journey) -> list[tuple[str, str]]:
    with pj.rt.db.unit_of_work() as uow:
        return [
            (i.key, i.state) for i in uow.session.scalars(select(WorkItem).where(WorkItem.kind == "purchase.findings"))
        ]


def test_submission_reads_no_cloud_and_the_worker_adds_the_live_offer(
    pj: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud_calls: list[str] = []
    real = SimulatedProvider.list_resource_providers

    def counted(self: SimulatedProvider) -> Any:
        cloud_calls.append("list_resource_providers")
        return real(self)

    monkeypatch.setattr(SimulatedProvider, "list_resource_providers", counted)
    with pj.rt.db.unit_of_work() as uow:
        purchase_id = services.create_purchase(
            uow.session, pj.staff, server_form(), submit=True, context=services.context_for(pj.rt.settings)
        ).id
        assert cloud_calls == []  # inside the submission's transaction: the database only
    # No capacity snapshot yet: the finding says so rather than inventing an offer.
    assert FindingKind.CLOUD_PROVIDES not in _kinds(pj, purchase_id)
    assert _items(pj) == [(f"purchase-findings:{purchase_id}:1", WorkState.QUEUED.value)]

    assert pj.drain() == 1
    assert cloud_calls  # the worker read Placement, outside any transaction of the purchase
    offer = _kinds(pj, purchase_id)[FindingKind.CLOUD_PROVIDES]
    assert offer["count"] >= 1
    assert _items(pj) == [(f"purchase-findings:{purchase_id}:1", WorkState.DONE.value)]


def test_a_purchase_decided_before_the_live_read_is_left_as_decided(pj: Journey) -> None:
    with pj.rt.db.unit_of_work() as uow:
        purchase_id = services.create_purchase(
            uow.session, pj.staff, server_form(), submit=True, context=services.context_for(pj.rt.settings)
        ).id
    before = _kinds(pj, purchase_id)
    with pj.rt.db.unit_of_work() as uow:
        services.decide_purchase(uow.session, pj.finance, purchase_id, decision="return", reason="请补充说明")
    assert pj.drain() == 1
    assert _kinds(pj, purchase_id).keys() == before.keys()  # the returned purchase's findings are untouched
