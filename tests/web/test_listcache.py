"""Request lists reused while nothing on them changed (web/common/listcache.py): a change of
any row, a new request or another department's view never gets a stale page."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from cloudmgr.runtime import Runtime
from tests.web.helpers import Journey, csrf_token, logged_in
from tests.web.test_api_selfservice import Api
from web import create_app
from web.common.listcache import VersionedCache


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


def _page_cache(app: Flask) -> VersionedCache[Any]:
    cache: VersionedCache[Any] = app.extensions["cloudmgr_list_caches"]["pages"]
    return cache


def test_a_whole_page_is_reused_only_for_its_own_session_and_never_with_a_message(app: Flask, journey: Journey) -> None:
    journey.submit(count=1, prefix="paged")
    operator = logged_in(app, "operator")
    operator.get("/ops/requests")  # the session's CSRF secret is made while rendering this one
    first = operator.get("/ops/requests").get_data(as_text=True)
    again = operator.get("/ops/requests")
    assert again.get_data(as_text=True) == first and _page_cache(app).hits == 1
    # The session cookie is not sent again with every answer (an absolute session lifetime).
    assert "Set-Cookie" not in again.headers
    # The logout form of the reused page carries a token that still works.
    assert operator.post("/logout", data={"csrf_token": csrf_token(first)}).status_code == 302
    # Another session of the same user gets its own page (its own CSRF token), not the first one.
    second_session = logged_in(app, "operator")
    second_session.get("/ops/requests")
    page = second_session.get("/ops/requests").get_data(as_text=True)
    assert csrf_token(page) != csrf_token(first) and _page_cache(app).hits == 1
    # Another filter or language is another page.
    assert "Next: Department head" in second_session.get("/ops/requests?lang=en").get_data(as_text=True)


def test_a_page_with_a_message_to_show_once_is_never_kept(app: Flask, journey: Journey) -> None:
    request_id = journey.submit(count=1, prefix="flash")
    staff = logged_in(app, "zhangwei")
    staff.get("/portal/requests")
    with staff.session_transaction() as web_session:
        web_session["_flashes"] = [("success", "shown once")]
    assert "shown once" in staff.get("/portal/requests").get_data(as_text=True)
    html = staff.get("/portal/requests").get_data(as_text=True)
    assert "shown once" not in html and f"#{request_id}" in html


def test_a_page_past_the_last_still_counts_every_request(app: Flask, journey: Journey) -> None:
    for n in range(3):
        journey.submit(count=1, prefix=f"count{n}")
    client = app.test_client()
    status, body = Api(client, journey.rt, "zhangwei").get("/requests?per_page=2&page=5")
    assert status == 200 and body["items"] == [] and body["total"] == 3
    status, body = Api(client, journey.rt, "zhangwei").get("/requests?per_page=2&page=2")
    assert len(body["items"]) == 1 and body["total"] == 3
