"""``/api/v1``: requests, servers, the catalog and quotas; permissions and bad input of every kind."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from tests.web.helpers import HEALTH_HEAD, Journey
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


class Api:
    """A client with one user's token."""

    def __init__(self, client: FlaskClient, runtime: Runtime, username: str) -> None:
        self.client = client
        with runtime.db.unit_of_work() as uow:
            user = org.get_user_by_name(uow.session, username)
            self.token = org.issue_token(
                uow.session, user, name="test", expires_at=None, actor=Actor.system("test")
            ).token

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        data: bytes | str | None = raw
        if body is not None:
            data = json.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        response = self.client.open("/api/v1" + path, method=method, headers=headers, data=data)
        assert response.content_type.startswith("application/json"), (path, response.status_code)
        payload = response.get_json()
        if response.status_code >= 400:
            assert set(payload) == {"error", "message"}, payload
            assert isinstance(payload["message"], str) and payload["message"]
        return response.status_code, payload

    def get(self, path: str) -> tuple[int, Any]:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return self.call("POST", path, body, **kwargs)


@pytest.fixture
def api(client: FlaskClient, journey_rt: Runtime) -> Any:
    def make(username: str) -> Api:
        return Api(client, journey_rt, username)

    return make


def _body(journey: Journey, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cloud": "education",
        "zone": "extranet",
        "flavor": journey.item_id("education", "flavor", "m1.small"),
        "image": journey.item_id("education", "image", "cirros-lab"),
        "count": 3,
        "name_prefix": "lic",
        "justification": "licensing system needs servers by Friday",
        "expires_on": (date.today() + timedelta(days=180)).isoformat(),
        "application_system": "行政许可系统",
    }
    body.update(overrides)
    return body


def test_quote_create_and_read_a_request(api: Any, journey: Journey) -> None:
    staff = api("zhangwei")
    status, quote = staff.post("/requests/quote", _body(journey))
    assert status == 200
    assert quote["monthly_cost"] == "360.00" and quote["fits"] is True
    # The members-only default firewall group is the department's shared one: not reserved per request.
    assert quote["needs"] == {"cores": 3, "ram_mb": 6144, "instances": 3}
    assert quote["free"]["instances"] == 8 and quote["approval_steps"] == ["dept_head", "operator"]
    status, draft = staff.post("/requests", _body(journey))
    assert status == 201 and draft["state"] == "draft" and draft["servers"] == []
    status, created = staff.post("/requests", _body(journey, name_prefix="two", submit=True))
    assert status == 201 and created["state"] == "submitted" and created["next_role"] == "dept_head"
    assert [s["name"] for s in created["servers"]] == ["two-01", "two-02", "two-03"]
    status, body = staff.get(f"/requests/{created['id']}")
    assert status == 200
    assert body["flavor"]["name_zh"] == "小型 1核 2G" and body["monthly_cost"] == "360.00"
    assert [e["action"] for e in body["events"]] == ["create", "submit"]
    status, submitted = staff.post(f"/requests/{draft['id']}/submit")
    assert status == 200 and submitted["state"] == "submitted"


def test_list_requests_filters_and_pages(api: Any, journey: Journey) -> None:
    for n in range(5):
        journey.submit(count=1, prefix=f"d{n}", submit=False)
    submitted = journey.submit(count=1, prefix="sub")
    staff = api("zhangwei")
    status, body = staff.get("/requests?per_page=2&page=2")
    assert status == 200
    assert body["total"] == 6 and body["page"] == 2 and body["per_page"] == 2 and len(body["items"]) == 2
    status, body = staff.get("/requests?state=submitted")
    assert [r["id"] for r in body["items"]] == [submitted]
    assert staff.get("/requests?cloud=province-base")[1]["total"] == 0
    for query in ("per_page=101", "per_page=0", "page=0", "page=abc", "state=bogus", "page=" + "9" * 50):
        status, body = staff.get(f"/requests?{query}")
        assert status == 400, query
    operator = api("operator")
    assert operator.get("/requests?department=prov-education")[1]["total"] == 6
    assert operator.get("/requests?department=ts-hrss")[1]["total"] == 0
    status, body = operator.get("/requests?department=no-such")
    assert status == 404 and body["error"] == "unknown_department"
    # Another department sees none of them, whatever it asks for.
    assert api("wangfang").get("/requests?department=prov-education")[1]["total"] == 0


def test_the_approval_chain_through_the_api(api: Any, journey: Journey) -> None:
    staff, head, operator, finance = api("zhangwei"), api("lina"), api("operator"), api("finance")
    request_id = journey.submit(count=2)
    status, body = staff.post(f"/requests/{request_id}/approve")
    assert status == 403 and body["error"] == "forbidden"  # the role may not use the endpoint
    status, body = operator.post(f"/requests/{request_id}/approve")
    assert status == 403 and body["error"] == "not_your_turn"  # the head comes first
    status, body = head.post(f"/requests/{request_id}/reject", {})
    assert status == 400
    status, body = head.post(f"/requests/{request_id}/reject", {"reason": ""})
    assert status == 400 and "reason" in body["message"]
    status, body = head.post(f"/requests/{request_id}/approve", {"reason": "同意"})
    assert status == 200 and body["next_role"] == "operator"
    status, body = finance.post(f"/requests/{request_id}/approve")
    assert status == 403 and body["error"] == "not_your_turn"
    status, body = operator.post(f"/requests/{request_id}/approve")
    assert status == 200 and body["state"] == "approved"
    journey.drain()
    status, body = staff.get(f"/requests/{request_id}")
    assert body["state"] == "active"
    assert [s["state"] for s in body["servers"]] == ["active", "active"]
    assert all(s["addresses"] for s in body["servers"])
    status, body = head.post(f"/requests/{request_id}/approve")
    assert status == 409 and body["error"] == "invalid_transition"
    status, body = staff.post(f"/requests/{request_id}/cancel", {"reason": "late"})
    assert status == 409


def test_quota_exceeded_is_409_with_resource_limit_and_free(api: Any, journey: Journey) -> None:
    journey.submit(count=3, prefix="one")
    journey.submit(count=3, prefix="two")
    staff = api("zhangwei")
    status, body = staff.post("/requests", _body(journey, name_prefix="three", submit=True))
    assert status == 409
    assert body["error"] == "quota_exceeded"
    assert "instances limit 8, 2 free, 3 requested" in body["message"]
    assert staff.get("/requests")[1]["total"] == 2  # nothing half-stored
    status, quote = staff.post("/requests/quote", _body(journey, name_prefix="three"))
    assert status == 200 and quote["fits"] is False


def test_validation_errors_are_400_with_the_services_message(api: Any, journey: Journey) -> None:
    staff = api("zhangwei")
    status, body = staff.post("/requests", _body(journey, count=0))
    assert status == 400 and "count must be between 1 and 100" in body["message"]
    status, body = staff.post("/requests", _body(journey, name_prefix="Bad Prefix!", submit=True))
    assert status == 400 and body["error"] == "request_invalid" and "name prefix" in body["message"]
    status, body = staff.post("/requests", _body(journey, cloud="health"))
    assert status == 400 and "may not use cloud 'health'" in body["message"]
    status, body = staff.post("/requests", _body(journey, expires_on=date.today().isoformat()))
    assert status == 400 and "in the future" in body["message"]
    status, body = api("operator").post("/requests", _body(journey))
    assert status == 403


def test_another_department_gets_404_and_never_data(api: Any, journey: Journey) -> None:
    waiting = journey.submit(count=1, prefix="wait")
    status, body = api(HEALTH_HEAD).post(f"/requests/{waiting}/approve")  # a head, but of another department
    assert status == 404 and body["error"] == "request_not_found"
    assert journey.request_state(waiting) == "submitted"
    request_id = journey.active_request(1)
    server_id = journey.servers(request_id)[0][0]
    other = api("wangfang")
    for path in (f"/requests/{request_id}", f"/servers/{server_id}"):
        status, body = other.get(path)
        assert status == 404 and "lic" not in json.dumps(body), path
    for path, body in (
        (f"/requests/{request_id}/cancel", {}),
        (f"/servers/{server_id}/actions", {"action": "stop"}),
        (f"/servers/{server_id}/extend", {"expires_on": (date.today() + timedelta(days=400)).isoformat()}),
        (
            f"/servers/{server_id}/resize",
            {"flavor": journey.item_id("education", "flavor", "m1.medium"), "justification": "x"},
        ),
    ):
        assert other.post(path, body)[0] == 404, path
    assert other.get("/servers")[1]["items"] == []
    assert other.get("/requests")[1]["items"] == []
    status, body = other.get("/catalog?cloud=education")
    assert status == 404 and body["error"] == "unknown_cloud"
    assert {b["department"] for b in other.get("/quotas")[1]["items"]} == {"ts-hrss"}
    assert other.get("/quota-requests")[1]["items"] == []


def test_server_endpoints(api: Any, journey: Journey) -> None:
    request_id = journey.active_request(1)
    server_id, name, _ = journey.servers(request_id)[0]
    staff, operator = api("zhangwei"), api("operator")
    status, body = staff.get("/servers")
    assert status == 200 and [s["name"] for s in body["items"]] == [name]
    assert body["items"][0]["flavor"]["cloud_name"] == "m1.small" and body["items"][0]["cloud"] == "education"
    assert staff.get(f"/servers?request={request_id}&state=active")[1]["items"][0]["id"] == server_id
    assert staff.get("/servers?state=bogus")[0] == 400
    assert staff.get("/servers?limit=1000")[0] == 400
    status, body = staff.post(f"/servers/{server_id}/actions", {"action": "reboot"})
    assert status == 400 and "unknown action" in body["message"]
    status, body = staff.post(f"/servers/{server_id}/actions", {"action": "delete"})
    assert status == 400 and "to confirm" in body["message"]
    status, body = staff.post(f"/servers/{server_id}/actions", {"action": "stop"})
    assert status == 202 and body["state"] == "active"
    journey.drain()
    assert staff.get(f"/servers/{server_id}")[1]["state"] == "stopped"
    later = (date.today() + timedelta(days=400)).isoformat()
    status, body = staff.post(f"/servers/{server_id}/extend", {"expires_on": later})
    assert status == 200 and body["expires_on"] == later
    status, body = staff.post(f"/servers/{server_id}/extend", {"expires_on": "2020-02-30"})
    assert status == 400 and "YYYY-MM-DD" in body["message"]
    status, body = staff.post(
        f"/servers/{server_id}/resize",
        {"flavor": journey.item_id("education", "flavor", "m1.medium"), "justification": "more memory"},
    )
    assert status == 201 and body["kind"] == "resize" and body["state"] == "submitted"
    assert staff.post(f"/servers/{server_id}/retry")[0] == 403
    status, body = operator.post(f"/servers/{server_id}/retry")
    assert status == 409 and "only failed servers" in body["message"]
    status, body = staff.post(f"/servers/{server_id}/actions", {"action": "delete", "confirm": name})
    assert status == 202 and body["state"] == "deleting"


def test_catalog_and_quotas(api: Any, journey: Journey) -> None:
    journey.submit(count=2)
    staff, operator = api("zhangwei"), api("operator")
    status, body = staff.get("/catalog?cloud=education")
    assert status == 200
    kinds = {(i["kind"], i["cloud_name"]) for i in body["items"]}
    assert ("flavor", "m1.small") in kinds and ("image", "cirros-lab") in kinds
    small = next(i for i in body["items"] if i["cloud_name"] == "m1.small")
    assert small["monthly_price"] == "120.00" and small["name_en"] == "Small 1 vCPU 2 GB"
    assert staff.get("/catalog")[0] == 400
    assert operator.get("/catalog?cloud=health")[0] == 200
    assert operator.get("/catalog?cloud=no-such")[0] == 404
    status, body = staff.get("/quotas")
    assert status == 200 and {b["department"] for b in body["items"]} == {"prov-education"}
    education = next(b for b in body["items"] if b["cloud"] == "education")
    instances = education["resources"]["instances"]
    assert (instances["limit"], instances["reserved"], instances["used"], instances["free"]) == (8, 2, 0, 6)
    assert education["drifted"] is False and education["near_full"] is False
    assert education["resources"]["ram_mb"]["limit"] == 48 * 1024
    status, body = operator.get("/quotas")
    assert len({b["department"] for b in body["items"]}) > 10
    assert {b["cloud"] for b in operator.get("/quotas?cloud=education")[1]["items"]} == {"education"}
    assert operator.get("/quotas?department=no-such")[0] == 404


def test_quota_change_requests_and_drift(api: Any, journey: Journey) -> None:
    staff, operator = api("zhangwei"), api("operator")
    status, body = staff.post("/quota-requests", {"cloud": "education", "size": "medium", "reason": "招生季"})
    assert status == 201 and body["state"] == "approved" and body["automatic"] is True
    assert body["requested_limits"]["instances"] == 32
    status, body = staff.post("/quota-requests", {"cloud": "education", "limits": {"cores": 80}, "reason": "分析"})
    assert status == 201 and body["state"] == "pending"
    pending_id = body["id"]
    for bad in (
        {"cloud": "education", "reason": "x"},
        {"cloud": "education", "reason": "x", "size": "medium", "limits": {"cores": 1}},
        {"cloud": "education", "reason": "x", "limits": {"gpus": 1}},
        {"cloud": "education", "reason": "x", "limits": {"cores": -1}},
        {"cloud": "education", "reason": "x", "limits": {"cores": "many"}},
        {"cloud": "education", "reason": "x", "limits": {}},
        {"cloud": "education", "reason": "", "size": "large"},
        {"cloud": "health", "reason": "x", "size": "medium"},
        {"cloud": "education", "reason": "x", "size": "galactic"},
    ):
        status, answer = staff.post("/quota-requests", bad)
        assert status == 400, (bad, answer)
    assert [c["id"] for c in staff.get("/quota-requests?state=pending")[1]["items"]] == [pending_id]
    assert staff.get("/quota-requests?state=bogus")[0] == 400
    assert staff.post(f"/quota-requests/{pending_id}/decide", {"approve": True})[0] == 403
    assert operator.post("/quota-requests/424242/decide", {"approve": True})[0] == 404
    assert operator.post(f"/quota-requests/{pending_id}/decide", {"approve": False})[0] == 400  # no reason
    assert operator.post(f"/quota-requests/{pending_id}/decide", {})[0] == 400
    status, body = operator.post(f"/quota-requests/{pending_id}/decide", {"approve": True, "reason": "ok"})
    assert status == 200 and body["state"] == "approved" and body["decided_by"] == "operator"
    education = next(b for b in staff.get("/quotas")[1]["items"] if b["cloud"] == "education")
    assert education["resources"]["cores"]["cloud_limit"] != 80  # not yet: the push is a work item
    journey.drain()
    education = next(b for b in staff.get("/quotas")[1]["items"] if b["cloud"] == "education")
    assert education["resources"]["cores"]["cloud_limit"] == 80  # pushed to the cloud
    assert operator.post(f"/quota-requests/{pending_id}/decide", {"approve": True})[0] == 400  # already decided
    assert operator.get("/quota-drifts")[0] == 200
    assert operator.get("/quota-drifts?state=all")[0] == 200
    assert operator.get("/quota-drifts?state=bogus")[0] == 400
    assert staff.get("/quota-drifts")[0] == 403


HUGE = "x" * 100_000

BAD_INPUT = [
    ("POST", "/requests", None, "{not json"),
    ("POST", "/requests", None, "[1, 2, 3]"),
    ("POST", "/requests", None, '"a string"'),
    ("POST", "/requests", None, ""),
    ("POST", "/requests", None, "\xff\xfe"),
    ("POST", "/requests", None, "[" * 100_000),
    ("POST", "/requests", {"cloud": 1, "zone": [], "flavor": "1", "image": True, "count": 2.5}, None),
    ("POST", "/requests", {"cloud": HUGE, "zone": HUGE, "name_prefix": HUGE, "justification": HUGE}, None),
    ("POST", "/requests", {"flavor": 2**70, "image": -1, "count": 10**20}, None),
    ("POST", "/requests", {"unknown": 1}, None),
    ("POST", "/requests/quote", {"expires_on": "31/12/2030"}, None),
    ("POST", "/requests/quote", {"expires_on": 20301231}, None),
    ("GET", "/requests/99999999999999999999", None, None),
    ("GET", "/requests/2147483647", None, None),
    ("GET", "/requests/-1", None, None),
    ("POST", "/requests/2147483647/approve", {"reason": HUGE}, None),
    ("POST", "/requests/1/reject", {"reason": 5}, None),
    ("GET", "/servers/99999999999999999999", None, None),
    ("POST", "/servers/1/actions", {"action": None}, None),
    ("POST", "/servers/1/actions", {"action": "stop", "confirm": HUGE}, None),
    ("POST", "/servers/1/extend", {"expires_on": "9999-99-99"}, None),
    ("POST", "/servers/1/resize", {"flavor": "big"}, None),
    ("GET", "/catalog?cloud=" + "x" * 5000, None, None),
    ("GET", "/quotas?department=" + "x" * 5000, None, None),
    ("POST", "/quota-requests", {"cloud": HUGE, "reason": HUGE, "size": HUGE}, None),
    ("POST", "/quota-requests", {"cloud": "education", "reason": "x", "limits": {"cores": 2**40}}, None),
    ("POST", "/quota-requests", {"cloud": "education", "reason": "x", "limits": [1]}, None),
    ("POST", "/quota-requests", None, "null"),
]


@pytest.mark.parametrize(("method", "path", "body", "raw"), BAD_INPUT)
def test_bad_input_is_a_4xx_json_error_never_a_500(
    api: Any, journey: Journey, method: str, path: str, body: Any, raw: str | None
) -> None:
    staff = api("zhangwei")
    status, answer = staff.call(method, path, body, raw=raw)
    assert 400 <= status < 500, (status, answer)


def test_too_large_a_body_is_413(api: Any, journey: Journey) -> None:
    status, body = api("zhangwei").post("/requests", {"justification": "x" * (3 * 1024 * 1024)})
    assert status == 413 and body["error"] == "payload_too_large"


def test_the_openapi_document_has_the_self_service_endpoints(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    paths = doc["paths"]
    expected = {
        "/api/v1/requests": {"get", "post"},
        "/api/v1/requests/quote": {"post"},
        "/api/v1/requests/{request_id}": {"get"},
        "/api/v1/requests/{request_id}/approve": {"post"},
        "/api/v1/requests/{request_id}/reject": {"post"},
        "/api/v1/requests/{request_id}/cancel": {"post"},
        "/api/v1/servers": {"get"},
        "/api/v1/servers/{server_id}": {"get"},
        "/api/v1/servers/{server_id}/actions": {"post"},
        "/api/v1/servers/{server_id}/extend": {"post"},
        "/api/v1/servers/{server_id}/retry": {"post"},
        "/api/v1/catalog": {"get"},
        "/api/v1/quotas": {"get"},
        "/api/v1/quota-requests": {"get", "post"},
        "/api/v1/quota-requests/{change_id}/decide": {"post"},
        "/api/v1/quota-drifts": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    create = paths["/api/v1/requests"]["post"]
    assert {"201", "400", "401", "403", "409"} <= set(create["responses"])
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NewRequest"}
    assert paths["/api/v1/requests/{request_id}"]["get"]["parameters"][0]["schema"] == {"type": "integer"}
    assert "Roles: operator." in paths["/api/v1/servers/{server_id}/retry"]["post"]["description"]
    for name in ("Request", "RequestDetail", "Server", "Quote", "QuotaBalance", "QuotaChange", "QuotaDrift"):
        assert name in doc["components"]["schemas"], name
