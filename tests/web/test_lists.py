"""Lists search, filter and page in SQL (web.common.listing, cloudmgr.paging); bad paging is clamped,
an unknown filter value is a 400 in the page's language, a search never crosses a department's wall,
and the approval queues decide several requests at once, each checked as if decided alone."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests import services as sr
from tests.web.helpers import HEALTH_HEAD, HEALTH_STAFF, Journey, csrf_token, logged_in, post_form
from web import create_app

ROWS = re.compile(r'data-request="(\d+)"')
FLASH = re.compile(r'<div class="flash flash-(\w+)"[^>]*>(.*?)</div>', re.S)


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _queue(html: str) -> list[int]:
    return [int(found) for found in ROWS.findall(html)]


def _health_request(journey: Journey, prefix: str = "his") -> int:
    form = journey.form(1, cloud="health", prefix=prefix)
    with journey.rt.db.unit_of_work() as uow:
        return sr.create_request(
            uow.session, journey.actor(HEALTH_STAFF), form, submit=True, settings=journey.rt.settings
        ).id


def test_approval_queue_pages_within_bounds(app: Flask, journey: Journey) -> None:
    ids = [journey.submit(count=1, prefix=f"pg{n}") for n in range(3)]
    for request_id in ids:
        journey.approve(request_id, "lina")
    ops = logged_in(app, "operator")
    first = ops.get("/ops/approvals?per_page=2")
    assert first.status_code == 200
    assert _queue(first.get_data(as_text=True)) == ids[:2]
    second = ops.get("/ops/approvals?per_page=2&page=2").get_data(as_text=True)
    assert _queue(second) == ids[2:]
    assert 'rel="prev"' in second
    # Nonsense is clamped, never a 500: below 1 is the first page, past the end the last one, a page
    # size of a billion the largest there is, words the default.
    for query, expected in (
        ("page=-1&per_page=2", ids[:2]),
        ("page=999999999999&per_page=2", ids[2:]),
        ("per_page=1000000000", ids),
        ("page=abc&per_page=xyz", ids),
        ("per_page=0", ids[:1]),
    ):
        response = ops.get(f"/ops/approvals?{query}")
        assert response.status_code == 200, query
        assert _queue(response.get_data(as_text=True)) == expected, query


def test_approval_queue_search_and_department_filter(app: Flask, journey: Journey) -> None:
    education = journey.submit(count=1, prefix="lic")
    journey.approve(education, "lina")
    health = _health_request(journey, prefix="his")
    journey.approve(health, HEALTH_HEAD)
    ops = logged_in(app, "operator")
    assert set(_queue(ops.get("/ops/approvals").get_data(as_text=True))) == {education, health}
    assert _queue(ops.get("/ops/approvals?q=his").get_data(as_text=True)) == [health]
    assert _queue(ops.get(f"/ops/approvals?q=%23{education}").get_data(as_text=True)) == [education]
    assert _queue(ops.get("/ops/approvals?q=zhangwei").get_data(as_text=True)) == [education]
    assert _queue(ops.get("/ops/approvals?q=100%25").get_data(as_text=True)) == []  # % is a character
    assert _queue(ops.get("/ops/approvals?department=prov-health").get_data(as_text=True)) == [health]
    # An unknown value is set aside and said so above the list: everything shows, never a 500.
    bad = ops.get("/ops/approvals?department=no-such-department")
    assert bad.status_code == 200
    text = bad.get_data(as_text=True)
    assert set(_queue(text)) == {education, health}
    assert re.search(r'class="flash flash-warning" role="status">[^<]*no-such-department', text)


def test_a_department_search_never_finds_another_departments_request(app: Flask, journey: Journey) -> None:
    health = _health_request(journey, prefix="his")
    education = journey.submit(count=1, prefix="eduapp")
    lina = logged_in(app, "lina")  # the education head
    assert _queue(lina.get("/portal/approvals").get_data(as_text=True)) == [education]
    for query in ("q=his", f"q={health}", "department=prov-health", "q=his&department=prov-health"):
        response = lina.get(f"/portal/approvals?{query}")
        assert response.status_code == 200, query
        assert health not in _queue(response.get_data(as_text=True)), query
    head = logged_in(app, HEALTH_HEAD)
    assert _queue(head.get("/portal/approvals?q=eduapp").get_data(as_text=True)) == []
    assert _queue(head.get("/portal/approvals?q=his").get_data(as_text=True)) == [health]


def test_bulk_approval_says_what_was_decided_and_what_was_refused(app: Flask, journey: Journey) -> None:
    ready = [journey.submit(count=1, prefix=f"bk{n}") for n in range(2)]
    for request_id in ready:
        journey.approve(request_id, "lina")
    not_yet = journey.submit(count=1, prefix="early")  # still waits for the department head
    ops = logged_in(app, "operator")
    token = csrf_token(ops.get("/ops/approvals").get_data(as_text=True))
    response = ops.post(
        "/ops/approvals/decide",
        data={"csrf_token": token, "request_id": [*ready, not_yet], "approve": "1", "reason": "ok"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert [journey.request_state(r) for r in ready] == ["approved", "approved"]
    assert journey.request_state(not_yet) == "submitted"  # refused, untouched
    flashes = FLASH.findall(response.get_data(as_text=True))
    decided = [text for kind, text in flashes if kind == "success"]
    refused = [text for kind, text in flashes if kind == "error"]
    assert len(decided) == 1 and "2" in decided[0]
    assert len(refused) == 2 and "1" in refused[0]
    assert f"#{not_yet}" in refused[1] and str(ready[0]) not in refused[1]


def test_bulk_rejection_needs_a_reason_and_a_choice(app: Flask, journey: Journey) -> None:
    request_id = journey.submit(count=1)
    journey.approve(request_id, "lina")
    ops = logged_in(app, "operator")
    response = post_form(
        ops, "/ops/approvals/decide", {"request_id": [request_id], "reject": "1"}, page="/ops/approvals"
    )
    assert response.status_code == 400
    assert journey.request_state(request_id) == "submitted"
    response = post_form(ops, "/ops/approvals/decide", {"approve": "1"}, page="/ops/approvals")
    assert response.status_code == 400
    response = post_form(
        ops,
        "/ops/approvals/decide",
        {"request_id": [request_id, "x", "-3", "99999999999"], "reject": "1", "reason": "not needed"},
        page="/ops/approvals",
    )
    assert response.status_code == 302
    assert journey.request_state(request_id) == "rejected"


def test_bulk_decision_never_reaches_another_department(app: Flask, journey: Journey) -> None:
    health = _health_request(journey)
    lina = logged_in(app, "lina")
    response = post_form(
        lina, "/portal/approvals/decide", {"request_id": [health], "approve": "1"}, page="/portal/approvals"
    )
    assert response.status_code == 302
    assert journey.request_state(health) == "submitted"


def test_admin_user_list_searches_filters_and_pages(app: Flask, journey: Journey) -> None:
    admin = logged_in(app, "admin")
    everyone = admin.get("/admin/users").get_data(as_text=True)
    assert "zhangwei" in everyone and HEALTH_STAFF in everyone
    found = admin.get("/admin/users?q=zhang").get_data(as_text=True)
    assert "zhangwei" in found and HEALTH_STAFF not in found
    heads = admin.get("/admin/users?role=dept_head").get_data(as_text=True)
    assert "lina" in heads and HEALTH_HEAD in heads and "zhangwei" not in heads
    health = admin.get("/admin/users?department=prov-health").get_data(as_text=True)
    assert HEALTH_STAFF in health and "zhangwei" not in health
    one = admin.get("/admin/users?per_page=1&page=2").get_data(as_text=True)
    assert 'rel="prev"' in one and 'rel="next"' in one
    for query in ("page=-1", "per_page=99999999999999", "role=emperor", "active=maybe", "q=%25%25"):
        assert admin.get(f"/admin/users?{query}").status_code == 200, query


def test_audit_log_searches_and_pages(app: Flask, journey: Journey) -> None:
    request_id = journey.submit(count=1)
    journey.approve(request_id, "lina")
    ops = logged_in(app, "operator")
    html = ops.get("/ops/audit?q=lina").get_data(as_text=True)
    assert "lina" in html and "request.approve" in html
    first = ops.get("/ops/audit?per_page=1").get_data(as_text=True)
    assert first.count("<time datetime=") == 1 and 'rel="next"' in first
    for query in ("page=-3", "per_page=0", "per_page=1000000000", "limit=999999", "q=" + "x" * 500):
        assert ops.get(f"/ops/audit?{query}").status_code == 200, query


PURCHASE_ROWS = re.compile(r'data-purchase="(\d+)"')


def _purchase(journey: Journey, username: str, application_system: str) -> int:
    from cloudmgr.purchases import services as purchases
    from tests.purchases.helpers import server_form

    with journey.rt.db.unit_of_work() as uow:
        form = server_form(application_system=application_system)
        return purchases.create_purchase(uow.session, journey.actor(username), form, submit=True).id


def test_purchase_list_and_review_queue_search_and_page_within_the_wall(app: Flask, journey: Journey) -> None:
    education = [_purchase(journey, "zhangwei", f"教育系统{n}") for n in range(2)]
    health = _purchase(journey, HEALTH_STAFF, "医保结算系统")
    staff = logged_in(app, "zhangwei")
    listed = set(map(int, PURCHASE_ROWS.findall(staff.get("/portal/purchases").get_data(as_text=True))))
    assert listed == set(education)
    assert PURCHASE_ROWS.findall(staff.get("/portal/purchases?q=医保").get_data(as_text=True)) == []
    assert PURCHASE_ROWS.findall(staff.get(f"/portal/purchases?q={health}").get_data(as_text=True)) == []
    found = PURCHASE_ROWS.findall(staff.get("/portal/purchases?q=教育系统1").get_data(as_text=True))
    assert found == [str(education[1])]
    assert len(PURCHASE_ROWS.findall(staff.get("/portal/purchases?per_page=1&page=2").get_data(as_text=True))) == 1
    for query in ("page=-1", "per_page=100000000000", "state=nope&category=nope", "q=%25_"):
        assert staff.get(f"/portal/purchases?{query}").status_code == 200, query
    finance = logged_in(app, "finance")
    queue = finance.get("/finance/purchases").get_data(as_text=True)
    assert set(map(int, PURCHASE_ROWS.findall(queue))) == {*education, health}
    assert PURCHASE_ROWS.findall(finance.get("/finance/purchases?q=医保").get_data(as_text=True)) == [str(health)]
    paged = finance.get("/finance/purchases?sort=amount&per_page=2&page=2").get_data(as_text=True)
    assert len(PURCHASE_ROWS.findall(paged)) == 1 and 'rel="prev"' in paged
    assert finance.get("/finance/purchases?page=-4&per_page=abc&sort=x").status_code == 200


def test_moves_list_takes_search_and_bad_paging(app: Flask, journey: Journey) -> None:
    ops = logged_in(app, "operator")
    page = ops.get("/ops/moves?q=sim-host&per_page=50").get_data(as_text=True)
    assert 'name="q" value="sim-host"' in page
    for query in ("page=-1", "per_page=99999999999", "state=nope&kind=nope", "q=" + "x" * 300):
        assert ops.get(f"/ops/moves?{query}").status_code == 200, query
    assert 'role="status"' in ops.get("/ops/moves?state=nope").get_data(as_text=True)


REQUEST_LINKS = re.compile(r"#(\d+)<")


def test_request_lists_search_within_the_wall(app: Flask, journey: Journey) -> None:
    education = journey.submit(count=1, prefix="eduweb")
    other = journey.submit(count=1, prefix="eduapp")
    health = _health_request(journey, prefix="hisweb")
    staff = logged_in(app, "zhangwei")
    assert set(map(int, REQUEST_LINKS.findall(staff.get("/portal/requests").get_data(as_text=True)))) == {
        education,
        other,
    }
    assert REQUEST_LINKS.findall(staff.get("/portal/requests?q=eduweb").get_data(as_text=True)) == [str(education)]
    for query in ("q=hisweb", f"q={health}", "q=web&cloud=health"):
        assert str(health) not in REQUEST_LINKS.findall(staff.get(f"/portal/requests?{query}").get_data(as_text=True))
    ops = logged_in(app, "operator")
    found = REQUEST_LINKS.findall(ops.get("/ops/requests?q=web").get_data(as_text=True))
    assert set(map(int, found)) == {education, health}
    assert REQUEST_LINKS.findall(ops.get("/ops/requests?q=web&department=prov-health").get_data(as_text=True)) == [
        str(health)
    ]
    for client, path in ((staff, "/portal/requests"), (ops, "/ops/requests")):
        for query in ("page=-1", "per_page=100000000000", "per_page=1&page=99", "q=%25%5C_"):
            assert client.get(f"{path}?{query}").status_code == 200, (path, query)


SERVER_ROWS = re.compile(r'href="/portal/servers/(\d+)"')


def test_server_list_searches_and_pages_within_the_wall(app: Flask, journey: Journey) -> None:
    request_id = journey.active_request(count=2, prefix="srvfind")
    servers = [server_id for server_id, _name, _state in journey.servers(request_id)]
    staff = logged_in(app, "zhangwei")
    listed = set(map(int, SERVER_ROWS.findall(staff.get("/portal/servers").get_data(as_text=True))))
    assert listed == set(servers)
    assert set(map(int, SERVER_ROWS.findall(staff.get("/portal/servers?q=srvfind").get_data(as_text=True)))) == set(
        servers
    )
    assert SERVER_ROWS.findall(staff.get("/portal/servers?q=nothing-like-it").get_data(as_text=True)) == []
    assert len(set(SERVER_ROWS.findall(staff.get("/portal/servers?per_page=1&page=2").get_data(as_text=True)))) == 1
    head = logged_in(app, HEALTH_STAFF)
    assert SERVER_ROWS.findall(head.get("/portal/servers?q=srvfind").get_data(as_text=True)) == []
    for query in ("page=-1", "per_page=99999999999", "state=nope"):
        assert staff.get(f"/portal/servers?{query}").status_code == 200, query


def _token(journey: Journey, username: str) -> dict[str, str]:
    from cloudmgr.organisation import services as org
    from cloudmgr.organisation.actor import Actor

    with journey.rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(uow.session, user, name="lists", expires_at=None, actor=Actor.system("test")).token
    return {"Authorization": f"Bearer {token}"}


def test_the_api_lists_search_like_the_pages_within_the_wall(app: Flask, journey: Journey) -> None:
    education = journey.submit(count=1, prefix="apifind")
    health = _health_request(journey, prefix="apifind")
    client = app.test_client()
    staff = _token(journey, "zhangwei")
    body = client.get("/api/v1/requests?q=apifind", headers=staff).get_json()
    assert [item["id"] for item in body["items"]] == [education] and body["total"] == 1
    operator = _token(journey, "operator")
    body = client.get("/api/v1/requests?q=apifind", headers=operator).get_json()
    assert {item["id"] for item in body["items"]} == {education, health}
    assert client.get("/api/v1/requests?q=" + "x" * 101, headers=operator).status_code == 400
    purchase = _purchase(journey, HEALTH_STAFF, "医保结算系统")
    assert client.get("/api/v1/purchases?q=医保", headers=staff).get_json()["items"] == []
    found = client.get("/api/v1/purchases?q=医保", headers=operator).get_json()["items"]
    assert [item["id"] for item in found] == [purchase]


def test_the_api_decides_several_requests_and_names_the_refused(app: Flask, journey: Journey) -> None:
    ready = journey.submit(count=1, prefix="apibulk")
    journey.approve(ready, "lina")
    early = journey.submit(count=1, prefix="apiearly")  # waits for the department head
    client = app.test_client()
    operator = _token(journey, "operator")
    answer = client.post(
        "/api/v1/approvals/decide",
        json={"request_ids": [ready, early], "decision": "approve", "reason": "ok"},
        headers=operator,
    )
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["decided"] == [ready]
    assert [(row["request_id"], row["error"]) for row in body["refused"]] == [(early, "not_your_turn")]
    assert journey.request_state(ready) == "approved" and journey.request_state(early) == "submitted"
    for bad in (
        {"request_ids": [], "decision": "approve"},
        {"request_ids": ["x"], "decision": "approve"},
        {"request_ids": [early], "decision": "maybe"},
        {"request_ids": [early], "decision": "reject"},  # no reason
        {"request_ids": list(range(1, 300)), "decision": "approve"},
    ):
        assert client.post("/api/v1/approvals/decide", json=bad, headers=operator).status_code == 400, bad
    staff = _token(journey, "zhangwei")
    assert (
        client.post(
            "/api/v1/approvals/decide", json={"request_ids": [early], "decision": "approve"}, headers=staff
        ).status_code
        == 403
    )
