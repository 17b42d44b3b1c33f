"""The finance overview counts everything waiting for finance (issue 18): the service requests
awaiting finance review and, beside them, the purchases in the review queue (its count ignored
them)."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from cloudmgr.runtime import Runtime
from tests.web.helpers import Journey, logged_in
from tests.web.test_purchases import _new
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _count(html: str, testid: str) -> int:
    found = re.search(rf'data-testid="{testid}"><span class="stat-value">(\d+)<', html)
    assert found, testid
    return int(found.group(1))


def test_the_overview_counts_waiting_purchases_beside_requests(app: Flask, journey: Journey) -> None:
    finance = logged_in(app, "finance")
    before = finance.get("/finance/").get_data(as_text=True)
    staff = logged_in(app, "zhangwei")
    _new(staff)  # submitted: waits for finance
    _new(staff, submit=False)  # a draft waits for nobody
    html = finance.get("/finance/").get_data(as_text=True)
    assert _count(html, "purchases-waiting") == _count(before, "purchases-waiting") + 1
    assert _count(html, "requests-waiting") == _count(before, "requests-waiting")
    assert 'href="/finance/purchases"' in html.split('data-testid="purchases-waiting"')[0].rsplit("<a", 1)[1]
    queue = finance.get("/finance/purchases").get_data(as_text=True)
    assert "不动产登记系统扩容" in queue
