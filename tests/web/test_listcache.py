"""Request lists reused while nothing on them changed (web/selfservice/listcache.py): a change of
any row, a new request or another department's view never gets a stale page."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from cloudmgr.runtime import Runtime
from tests.web.helpers import Journey, logged_in
from tests.web.test_api_selfservice import Api
from web import create_app
from web.selfservice.listcache import VersionedCache


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def test_the_cache_reuses_evicts_the_least_recent_and_expires() -> None:
    cache: VersionedCache[str] = VersionedCache(max_entries=2)
    built: list[str] = []

    def build(value: str) -> Any:
        return lambda: built.append(value) or value

    assert cache.get_or_build("a", build("a")) == "a"
    assert cache.get_or_build("a", build("a2")) == "a"  # reused
    cache.get_or_build("b", build("b"))
    cache.get_or_build("a", build("a3"))  # a is now the most recent
    cache.get_or_build("c", build("c"))  # evicts b
    assert cache.get_or_build("b", build("b2")) == "b2"
    assert built == ["a", "b", "c", "b2"] and (cache.hits, cache.misses) == (2, 4)
    expiring: VersionedCache[str] = VersionedCache(ttl_seconds=0)
    expiring.get_or_build("k", build("x"))
    assert expiring.get_or_build("k", build("y")) == "y"


def test_the_operators_list_shows_each_change_at_once(app: Flask, journey: Journey) -> None:
    request_id = journey.submit(count=1, prefix="first")
    operator = logged_in(app, "operator")
    assert "下一步：部门负责人" in operator.get("/ops/requests").get_data(as_text=True)
    assert "下一步：部门负责人" in operator.get("/ops/requests").get_data(as_text=True)  # served again
    journey.approve(request_id, "lina")  # the head approves: the next step is the operator's
    html = operator.get("/ops/requests").get_data(as_text=True)
    assert "下一步：云平台运维人员" in html and "下一步：部门负责人" not in html
    second = journey.submit(count=1, prefix="second")
    html = operator.get("/ops/requests").get_data(as_text=True)
    assert f"#{second}" in html and f"#{request_id}" in html
    # The same page in English is its own entry.
    assert "Next: Cloud operator" in operator.get("/ops/requests?lang=en").get_data(as_text=True)


def test_the_api_list_follows_changes_and_keeps_departments_apart(app: Flask, journey: Journey) -> None:
    client = app.test_client()
    staff = Api(client, journey.rt, "zhangwei")
    other = Api(client, journey.rt, "wangfang")
    operator = Api(client, journey.rt, "operator")
    request_id = journey.submit(count=1, prefix="api")
    status, body = staff.get("/requests")
    assert status == 200 and [r["id"] for r in body["items"]] == [request_id]
    assert body["items"][0]["state"] == "submitted"
    assert other.get("/requests")[1] == {"items": [], "total": 0, "page": 1, "per_page": 25}
    status, _ = staff.post(f"/requests/{request_id}/cancel", {"reason": "no longer needed"})
    assert status == 200
    assert staff.get("/requests")[1]["items"][0]["state"] == "cancelled"
    assert operator.get("/requests")[1]["items"][0]["state"] == "cancelled"
    assert other.get("/requests")[1]["total"] == 0
