"""The capacity, consolidation and planner pages and their API (operators; finance reads capacity)."""

from __future__ import annotations

import io
import secrets
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cloudmgr.capacity.models import CapacitySnapshot, ConsolidationRun, RunState
from cloudmgr.cloud import CloudProvider, ServerSpec
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.workqueue.services import Worker
from tests.web.helpers import csrf_token, demo_login, logged_in

OPERATOR = demo_login("operator").username
FINANCE = demo_login("finance").username
STAFF = demo_login("dept_staff").username

GOOD_CSV = """base,date,physical_servers,vcpus,ram_gb,disk_gb,vcpus_used,ram_gb_used,disk_gb_used,label
langfang,2026-01-01,100000,4000000,16000000,400000000,1000000,4000000,100000000,廊坊台账
langfang,2026-04-01,200000,8000000,32000000,800000000,2000000,8000000,200000000,廊坊台账
langfang,2026-07-01,300000,12000000,48000000,1200000000,3000000,12000000,300000000,廊坊台账
"""

PLANNER_CSV = """name,vcpus,ram_gb,disk_gb,cpu_p95,ram_p95,anti_affinity,department,zone,classification
web-1,4,8,100,0.5,0.6,web,财政厅,internet,non-classified
web-2,4,8,100,,,web,财政厅,internet,non-classified
db-1,16,128,500,0.9,0.9,,财政厅,extranet,
db-2,16,128,500,,,,教育厅,extranet,non-classified
secret-1,8,32,200,,,,公安厅,extranet,classified
app-1,2,4,50,,,,教育厅,,
"""

PLANNER_HOST = {
    "host_vcpus": "32",
    "host_ram_gb": "256",
    "host_disk_gb": "2000",
    "cpu_ratio": "2",
    "ram_ratio": "1",
    "max_wave": "50",
}


@pytest.fixture
def ops(app: Flask) -> FlaskClient:
    return logged_in(app, OPERATOR)


def _upload(client: FlaskClient, path: str, field: str, text: str, page: str, **extra: str) -> Any:
    token = csrf_token(client.get(page).get_data(as_text=True))
    data: dict[str, Any] = {"csrf_token": token, field: (io.BytesIO(text.encode("utf-8")), "data.csv"), **extra}
    return client.post(path, data=data, content_type="multipart/form-data")


def _post(client: FlaskClient, path: str, page: str, data: dict[str, Any] | None = None) -> Any:
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **(data or {})})


def _snapshot_count(rt: Runtime) -> int:
    with rt.db.unit_of_work() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(CapacitySnapshot)) or 0)


# --- permissions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ops/capacity", "/ops/consolidation", "/ops/planner", "/finance/capacity"])
def test_anonymous_is_sent_to_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("path", ["/ops/capacity", "/ops/consolidation", "/ops/planner", "/finance/capacity"])
def test_department_users_get_403(app: Flask, path: str) -> None:
    assert logged_in(app, STAFF).get(path).status_code == 403


def test_finance_reads_capacity_without_the_forms(app: Flask) -> None:
    client = logged_in(app, FINANCE)
    html = client.get("/finance/capacity").get_data(as_text=True)
    assert "石家庄基地" in html and "<svg" in html
    assert "take-snapshot" not in html and 'enctype="multipart/form-data"' not in html
    assert client.get("/ops/capacity").status_code == 403


# --- capacity -------------------------------------------------------------------------------------


def test_capacity_page_before_any_snapshot(ops: FlaskClient) -> None:
    html = ops.get("/ops/capacity").get_data(as_text=True)
    for name in ("石家庄基地", "廊坊基地", "张北基地", "承德基地", "秦皇岛基地"):
        assert name in html
    assert "2018年底服务器规模达到150万台" in html
    assert "数据不足" in html  # not enough data for a forecast
    assert 'data-testid="servers-chart"' in html and "style=" not in html


def test_take_a_snapshot_shows_the_simulated_hosts(ops: FlaskClient, seeded: Runtime) -> None:
    response = _post(ops, "/ops/capacity/snapshots", "/ops/capacity")
    assert response.status_code == 302
    assert _snapshot_count(seeded) >= 1
    html = ops.get("/ops/capacity").get_data(as_text=True)
    with seeded.db.unit_of_work() as uow:
        names = {h.name for s in uow.session.scalars(select(CapacitySnapshot)) for h in s.hosts}
    assert names
    for name in names:
        assert f'data-host="{name}"' in html
    assert "bar-used w-" in html


def test_the_snapshot_button_needs_the_csrf_token(ops: FlaskClient, seeded: Runtime) -> None:
    assert ops.post("/ops/capacity/snapshots").status_code == 400
    assert _snapshot_count(seeded) == 0


def test_csv_import_stores_rows_and_forecasts_the_targets(ops: FlaskClient, seeded: Runtime) -> None:
    response = _upload(ops, "/ops/capacity/import", "csv_file", GOOD_CSV, "/ops/capacity")
    assert response.status_code == 302, response.get_data(as_text=True)
    assert _snapshot_count(seeded) == 3
    html = ops.get("/ops/capacity").get_data(as_text=True)
    assert "300,000" in html  # the newest count of Langfang
    assert "廊坊台账" in html
    assert "数据不足" not in html  # three points: a forecast with a range
    assert "chart-line" in html and "chart-forecast" in html


def test_csv_errors_are_shown_with_their_line_and_nothing_is_stored(ops: FlaskClient, seeded: Runtime) -> None:
    bad = (
        GOOD_CSV + "atlantis,2026-08-01,1,1,1,1,,,,\nlangfang,2026-13-01,1,1,1,1,,,,\nlangfang,2026-09-01,x,1,1,1,,,,\n"
    )
    response = _upload(ops, "/ops/capacity/import", "csv_file", bad, "/ops/capacity")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "data.csv:5: unknown base &#39;atlantis&#39;" in html
    assert "data.csv:6: date must be YYYY-MM-DD" in html
    assert "data.csv:7: physical_servers must be a whole number" in html
    assert _snapshot_count(seeded) == 0


def test_csv_missing_columns_not_utf8_and_no_file(ops: FlaskClient, seeded: Runtime) -> None:
    response = _upload(ops, "/ops/capacity/import", "csv_file", "base,date\nlangfang,2026-01-01\n", "/ops/capacity")
    assert response.status_code == 400 and "data.csv:1: missing columns" in response.get_data(as_text=True)
    token = csrf_token(ops.get("/ops/capacity").get_data(as_text=True))
    response = ops.post(
        "/ops/capacity/import",
        data={"csrf_token": token, "csv_file": (io.BytesIO(b"\xff\xfe\x00bad"), "x.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "UTF-8" in response.get_data(as_text=True)
    huge = "base,date,physical_servers,vcpus,ram_gb,disk_gb,label\nlangfang,2026-01-01,1,1,1,1," + "x" * 200_000 + "\n"
    response = _upload(ops, "/ops/capacity/import", "csv_file", huge, "/ops/capacity")
    assert response.status_code == 400 and "field larger than field limit" in response.get_data(as_text=True)
    response = _post(ops, "/ops/capacity/import", "/ops/capacity")
    assert response.status_code == 400 and "请选择" in response.get_data(as_text=True)
    assert _snapshot_count(seeded) == 0


# --- consolidation --------------------------------------------------------------------------------


def _province_base(rt: Runtime) -> CloudProvider:
    with rt.db.unit_of_work() as uow:
        cloud = next(c for c in org.list_clouds(uow.session) if c.key == "province-base")
        return rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)


def _spread(provider: CloudProvider) -> None:
    """Four small servers over the two simulated hosts: one host can be emptied."""
    project = provider.ensure_project("cons", f"cons-{secrets.token_hex(2)}").id
    flavor = next(f for f in provider.list_flavors() if f.name == "m1.tiny")
    image = next(i for i in provider.list_images() if i.name == "cirros-lab")
    network = next(n for n in provider.list_networks() if n.name == "lab-extranet")
    ids = [
        provider.create_server(project, ServerSpec(f"cons-{i}", flavor.id, image.id, network.id, f"cons-{i}")).id
        for i in range(4)
    ]
    hosts = {provider.wait_for_server(i, {"ACTIVE"}, timeout=60).host for i in ids}
    assert len(hosts) == 2, hosts


def test_plan_start_and_stop_a_run_through_the_pages(ops: FlaskClient, seeded: Runtime) -> None:
    _spread(_province_base(seeded))
    page = ops.get("/ops/consolidation").get_data(as_text=True)
    assert 'value="province-base"' in page
    response = _post(ops, "/ops/consolidation", "/ops/consolidation", {"cloud": "province-base", "max_wave": "1"})
    assert response.status_code == 302, response.get_data(as_text=True)
    run_url = response.headers["Location"]
    html = ops.get(run_url).get_data(as_text=True)
    assert 'data-testid="start-run"' in html and 'data-testid="stop-run"' not in html
    assert 'data-wave="1" data-status="next"' in html
    assert "至少需要" in html and "最多可腾空" in html
    assert "cons-" in html
    assert ops.get("/ops/consolidation").get_data(as_text=True).count("data-run=") == 1

    response = _post(ops, run_url + "/start", run_url)
    assert response.status_code == 302
    html = ops.get(run_url).get_data(as_text=True)
    assert 'data-testid="stop-run"' in html
    response = _post(ops, run_url + "/stop", run_url)
    assert response.status_code == 302
    with seeded.db.unit_of_work() as uow:
        run = uow.session.scalars(select(ConsolidationRun)).one()
        assert run.state == RunState.STOPPING.value and run.stop_requested_by == OPERATOR
    Worker(seeded.db, work_handlers()).drain(max_items=20)
    html = ops.get(run_url).get_data(as_text=True)
    assert 'data-state="stopped"' in html
    # Stopping a stopped run is refused with the reason, not a 500.
    response = _post(ops, run_url + "/stop", run_url)
    assert response.status_code == 409 and "only a running run stops" in response.get_data(as_text=True)


def test_plan_form_errors_and_unknown_run(ops: FlaskClient) -> None:
    response = _post(ops, "/ops/consolidation", "/ops/consolidation", {"cloud": "province-base", "max_wave": "0"})
    assert response.status_code == 400 and "field-invalid" in response.get_data(as_text=True)
    response = _post(ops, "/ops/consolidation", "/ops/consolidation", {"cloud": "atlantis", "max_wave": "5"})
    assert response.status_code == 400
    assert ops.get("/ops/consolidation/999").status_code == 404
    assert ops.get("/ops/consolidation/99999999999").status_code == 404
    response = _post(ops, "/ops/consolidation/999/start", "/ops/consolidation")
    assert response.status_code == 404


# --- the planner ----------------------------------------------------------------------------------


def test_planner_shows_the_plan_and_the_refused_classified_server(ops: FlaskClient) -> None:
    response = _upload(ops, "/ops/planner", "servers", PLANNER_CSV, "/ops/planner", **PLANNER_HOST)
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    assert 'data-testid="hosts-used"' in html and 'data-testid="lower-bound"' in html
    assert 'data-refused="secret-1"' in html and "涉密系统" in html
    assert 'data-wave="1"' in html


def test_planner_errors_are_shown_in_the_form(ops: FlaskClient) -> None:
    bad = "name,vcpus,ram_gb,disk_gb,classification\na,1,2,10,secret\n"
    response = _upload(ops, "/ops/planner", "servers", bad, "/ops/planner", **PLANNER_HOST)
    assert response.status_code == 400
    assert "line 2: a: classification must be" in response.get_data(as_text=True)
    response = _upload(
        ops, "/ops/planner", "servers", PLANNER_CSV, "/ops/planner", **(PLANNER_HOST | {"host_vcpus": "0"})
    )
    assert response.status_code == 400 and "field-invalid" in response.get_data(as_text=True)


# --- the API --------------------------------------------------------------------------------------


class Api:
    def __init__(self, client: FlaskClient, rt: Runtime, username: str) -> None:
        self.client = client
        with rt.db.unit_of_work() as uow:
            user = org.get_user_by_name(uow.session, username)
            self.token = org.issue_token(
                uow.session, user, name="test", expires_at=None, actor=Actor.system("test")
            ).token

    def call(self, method: str, path: str, body: Any = None, raw: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if raw is not None:
            response = self.client.open(path, method=method, data=raw, headers=headers, content_type="application/json")
        else:
            response = self.client.open(path, method=method, json=body, headers=headers)
        return response.status_code, response.get_json()


@pytest.fixture
def api(client: FlaskClient, seeded: Runtime) -> Api:
    return Api(client, seeded, OPERATOR)


def test_api_capacity_and_snapshots(api: Api) -> None:
    status, body = api.call("GET", "/api/v1/capacity")
    assert status == 200 and [b["key"] for b in body["bases"]][:2] == ["shijiazhuang", "langfang"]
    assert body["targets"][0]["servers"] == 1500000 and body["targets"][0]["expected"] is None
    status, result = api.call("POST", "/api/v1/capacity/snapshots")
    assert status == 201 and result["snapshots"] >= 1 and result["hosts"] >= 1
    status, body = api.call("GET", "/api/v1/capacity")
    sources = [s for b in body["bases"] for s in b["sources"]]
    assert sources and all(s["source"] == "placement" for s in sources)
    hosts = [h for s in sources for h in s["hosts"]]
    assert hosts and {"name", "state", "vcpus_used", "vcpus_total"} <= set(hosts[0])
    base = next(b for b in body["bases"] if b["key"] == "shijiazhuang")
    assert base["totals"]["physical_servers"] >= 1 and "headroom" in base["totals"]
    assert api.call("POST", "/api/v1/capacity/snapshots", {"now": True})[0] == 400


def test_api_consolidation_runs(api: Api, seeded: Runtime) -> None:
    _spread(_province_base(seeded))
    status, run = api.call("POST", "/api/v1/consolidation-runs", {"cloud": "province-base", "max_wave": 2})
    assert status == 201, run
    assert run["state"] == "planned" and run["summary"]["emptied"] == 1 and run["waves"]
    assert {"server_id", "vm", "from", "to"} <= set(run["waves"][0][0])
    status, listed = api.call("GET", "/api/v1/consolidation-runs")
    assert status == 200 and [r["id"] for r in listed["items"]] == [run["id"]] and "waves" not in listed["items"][0]
    status, one = api.call("GET", f"/api/v1/consolidation-runs/{run['id']}")
    assert status == 200 and one["waves"] == run["waves"]
    assert api.call("POST", f"/api/v1/consolidation-runs/{run['id']}/stop")[1]["error"] == "consolidation_run_state"
    status, started = api.call("POST", f"/api/v1/consolidation-runs/{run['id']}/start")
    assert status == 200 and started["state"] == "running"
    status, stopping = api.call("POST", f"/api/v1/consolidation-runs/{run['id']}/stop")
    assert status == 200 and stopping["state"] == "stopping"


@pytest.mark.parametrize(
    ("method", "path", "body", "raw", "expected"),
    [
        ("POST", "/api/v1/consolidation-runs", {}, None, 400),
        ("POST", "/api/v1/consolidation-runs", {"cloud": 5}, None, 400),
        ("POST", "/api/v1/consolidation-runs", {"cloud": "province-base", "max_wave": 0}, None, 400),
        ("POST", "/api/v1/consolidation-runs", {"cloud": "province-base", "max_wave": "x"}, None, 400),
        ("POST", "/api/v1/consolidation-runs", {"cloud": "province-base", "extra": 1}, None, 400),
        ("POST", "/api/v1/consolidation-runs", None, "[1, 2", 400),
        ("POST", "/api/v1/consolidation-runs", {"cloud": "atlantis"}, None, 404),
        ("GET", "/api/v1/consolidation-runs/12345", None, None, 404),
        ("GET", "/api/v1/consolidation-runs/99999999999", None, None, 404),
        ("POST", "/api/v1/consolidation-runs/12345/start", None, None, 404),
        ("POST", "/api/v1/consolidation-runs/12345/stop", None, None, 404),
    ],
)
def test_api_bad_input_is_a_json_error(
    api: Api, method: str, path: str, body: Any, raw: str | None, expected: int
) -> None:
    status, answer = api.call(method, path, body, raw)
    assert status == expected and set(answer) >= {"error", "message"}


@pytest.mark.parametrize("username", [STAFF, FINANCE])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/capacity"),
        ("POST", "/api/v1/capacity/snapshots"),
        ("GET", "/api/v1/consolidation-runs"),
        ("POST", "/api/v1/consolidation-runs"),
        ("GET", "/api/v1/consolidation-runs/1"),
        ("POST", "/api/v1/consolidation-runs/1/start"),
        ("POST", "/api/v1/consolidation-runs/1/stop"),
    ],
)
def test_api_is_for_operators(client: FlaskClient, seeded: Runtime, username: str, method: str, path: str) -> None:
    status, answer = Api(client, seeded, username).call(method, path, {"cloud": "province-base"})
    assert status == 403 and answer["error"] == "forbidden"


def test_the_openapi_document_has_the_capacity_endpoints(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"get"} <= set(paths["/api/v1/capacity"]) and "post" in paths["/api/v1/capacity/snapshots"]
    assert {"get", "post"} <= set(paths["/api/v1/consolidation-runs"])
    assert "post" in paths["/api/v1/consolidation-runs/{run_id}/stop"]


def test_api_planner(api: Api) -> None:
    csv_text = (
        "name,vcpus,ram_gb,disk_gb,department,zone,classification,anti_affinity\n"
        "web1,2,4,40,edu,extranet,non-classified,web\n"
        "web2,2,4,40,edu,extranet,non-classified,web\n"
        "db1,4,16,200,edu,internet,non-classified,\n"
        "secret,2,4,40,police,extranet,classified,\n"
    )
    status, body = api.call(
        "POST",
        "/api/v1/planner",
        {"servers_csv": csv_text, "host_vcpus": 8, "host_ram_gb": 32, "host_disk_gb": 500, "max_wave": 2},
    )
    assert status == 200, body
    assert set(body["placements"]) == {"web1", "web2", "db1"}
    assert body["placements"]["web1"] != body["placements"]["web2"]  # anti-affinity
    assert body["hosts_used"] >= body["lower_bound"] >= 2  # two zones never share a host
    assert [r["name"] for r in body["refused"]] == ["secret"]
    status, body = api.call(
        "POST",
        "/api/v1/planner",
        {"servers_csv": "name,vcpus\nx,1\n", "host_vcpus": 8, "host_ram_gb": 32, "host_disk_gb": 1},
    )
    assert status == 400 and body["error"] and "ram_gb" in body["message"]
    status, body = api.call("POST", "/api/v1/planner", {"servers_csv": "x", "host_vcpus": 0})
    assert status == 400
