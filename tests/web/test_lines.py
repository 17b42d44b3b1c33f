"""Dedicated lines (issue 19) through the pages and the API with the Flask client: the department's
register, declaring and importing (all or nothing, every bad row named in Chinese), the operators'
register with targets by rule, planning, batches, recording and the coverage table, bad input on
every form and endpoint, and the department wall."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.lines.models import LineState, LineTarget, NetworkLine
from cloudmgr.lines.services import COLUMNS
from cloudmgr.runtime import Runtime
from tests.inventory.helpers import make_system
from tests.lines.helpers import make_line
from tests.web.helpers import Journey, csrf_token, logged_in, post_form
from tests.web.test_access_matrix import _bearer
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def row(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "code": "JYT-MSTP-001",
        "department": "prov-education",
        "carrier": "中国电信",
        "line_type": "MSTP",
        "bandwidth_mbps": "100",
        "a_site": "省教育厅信息中心机房",
        "a_city": "石家庄市",
        "a_county": "长安区",
        "b_site": "省政务云中心",
        "b_city": "石家庄市",
        "monthly_rent": "3200.00",
        "contract_start": "2024-01-01",
        "contract_end": "2027-12-31",
        "classified": "否",
        "public_facing": "否",
    }
    values.update(overrides)
    return values


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def line_count(rt: Runtime) -> int:
    with rt.db.unit_of_work() as uow:
        return uow.session.scalar(select(func.count()).select_from(NetworkLine)) or 0


def line_by_code(rt: Runtime, code: str) -> tuple[int, LineState, LineTarget | None]:
    with rt.db.unit_of_work() as uow:
        line = uow.session.scalars(select(NetworkLine).where(NetworkLine.code == code)).one()
        return line.id, line.state, line.target


def upload(client: FlaskClient, data: bytes, name: str = "lines.csv") -> Any:
    token = csrf_token(client.get("/portal/lines/import").get_data(as_text=True))
    return client.post(
        "/portal/lines/import",
        data={"csrf_token": token, "lines_file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def declare_form(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "code": "JYT-SDH-9",
        "carrier": "unicom",
        "line_type": "sdh",
        "bandwidth_mbps": "10",
        "a_site": "省教育厅",
        "a_city": "石家庄市",
        "a_county": "长安区",
        "a_township": "",
        "b_site": "考试院",
        "b_city": "保定市",
        "b_county": "竞秀区",
        "b_township": "",
        "monthly_rent": "900.50",
        "contract_start": "2024-01-01",
        "contract_end": "2026-12-31",
    }
    values.update(overrides)
    return values


def test_staff_import_all_or_nothing_then_list_filter_and_export(app: Flask, journey: Journey) -> None:
    staff = logged_in(app, "zhangwei")
    home = staff.get("/portal/").get_data(as_text=True)
    assert 'href="/portal/lines"' in home  # in the menu
    bad = csv_bytes([row(), row(code="JYT-MSTP-002", bandwidth_mbps="fast"), row(code="JYT-MSTP-003")])
    response = upload(staff, bad)
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    # the problems in the page's language (the domain's messages): Chinese first, then English
    assert 'data-testid="import-problems"' in page and "带宽（Mbit/s）" in page and "应为正整数，不是 'fast'" in page
    staff.get("/portal/?lang=en")
    page = html.unescape(upload(staff, bad).get_data(as_text=True))
    assert "Bandwidth (Mbit/s)" in page and "Should be a positive whole number, not 'fast'" in page
    assert "Nothing was imported" not in page  # the page says it its own way, once
    assert "应为" not in page and "带宽" not in page
    staff.get("/portal/?lang=zh")
    assert line_count(journey.rt) == 0  # nothing stored
    good = csv_bytes([row(), row(code="JYT-MSTP-002", carrier="中国联通", b_city="唐山市"), row(code="JYT-MSTP-003")])
    response = upload(staff, good)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert line_count(journey.rt) == 3
    listed = staff.get("/portal/lines").get_data(as_text=True)
    assert all(f'data-line="JYT-MSTP-00{n}"' in listed for n in (1, 2, 3))
    only = staff.get("/portal/lines?carrier=unicom").get_data(as_text=True)
    assert 'data-line="JYT-MSTP-002"' in only and 'data-line="JYT-MSTP-001"' not in only
    by_city = staff.get("/portal/lines?city=唐山市").get_data(as_text=True)
    assert 'data-line="JYT-MSTP-002"' in by_city and 'data-line="JYT-MSTP-003"' not in by_city
    searched = staff.get("/portal/lines?q=mstp-003&state=in_service&type=mstp").get_data(as_text=True)
    assert 'data-line="JYT-MSTP-003"' in searched and 'data-line="JYT-MSTP-001"' not in searched
    nonsense = staff.get("/portal/lines?carrier=moon&state=x&page=-4&type=zz")
    assert nonsense.status_code == 200
    export = staff.get("/portal/lines/export.csv?carrier=unicom")
    assert export.status_code == 200 and "JYT-MSTP-002" in export.get_data(as_text=True)
    assert "JYT-MSTP-001" not in export.get_data(as_text=True)
    line_id = line_by_code(journey.rt, "JYT-MSTP-001")[0]
    detail = staff.get(f"/portal/lines/{line_id}").get_data(as_text=True)
    assert "<h1>" in detail and "JYT-MSTP-001" in detail and 'data-testid="rule-target"' in detail


def test_staff_import_an_xlsx_workbook(app: Flask, journey: Journey) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    titles = ["编号", "部门", "运营商", "类型", "带宽", "A端", "A端市", "B端", "B端市", "月租", "合同开始", "合同结束"]
    sheet.append(titles)
    sheet.append(["X-1", "prov-education", "中国移动", "裸光纤", 1000, "甲", "廊坊市", "乙", "廊坊市", 5000,
                  date(2024, 1, 1), date(2028, 1, 1)])  # fmt: skip
    sheet.append(["X-2", "prov-education", "中国移动", "裸光纤", "=1+1", "甲", "廊坊市", "乙", "廊坊市", 5000,
                  date(2024, 1, 1), date(2028, 1, 1)])  # fmt: skip
    out = io.BytesIO()
    book.save(out)
    staff = logged_in(app, "zhangwei")
    response = upload(staff, out.getvalue(), name="lines.xlsx")
    assert response.status_code == 400 and "E3" in response.get_data(as_text=True)  # the formula cell
    assert line_count(journey.rt) == 0
    sheet.delete_rows(3)
    out = io.BytesIO()
    book.save(out)
    assert upload(staff, out.getvalue(), name="lines.xlsx").status_code == 302
    assert line_by_code(journey.rt, "X-1")[1] == LineState.IN_SERVICE


def test_import_form_refuses_no_file_and_a_bad_type(app: Flask, journey: Journey) -> None:
    staff = logged_in(app, "zhangwei")
    token = csrf_token(staff.get("/portal/lines/import").get_data(as_text=True))
    assert staff.post("/portal/lines/import", data={"csrf_token": token}).status_code == 400
    response = upload(staff, b"hello", name="lines.txt")
    assert response.status_code == 400 and ".xlsx" in response.get_data(as_text=True)
    response = upload(staff, csv_bytes([row(department="ts-hrss")]))  # another department's line
    assert response.status_code == 400 and line_count(journey.rt) == 0


def test_staff_declare_a_line_with_its_systems(app: Flask, journey: Journey) -> None:
    with journey.rt.db.unit_of_work() as uow:
        make_system(uow.session, "jyt-exam01")
        make_system(uow.session, "hrss-web01", dept_key="ts-hrss")
    staff = logged_in(app, "zhangwei")
    page = staff.get("/portal/lines/new").get_data(as_text=True)
    assert "jyt-exam01" in page and "hrss-web01" not in page  # only the department's systems to pick
    for label in ("code", "carrier", "line_type", "bandwidth_mbps", "a_site", "a_city", "monthly_rent", "systems"):
        assert f'for="{label}"' in page
    new = "/portal/lines/new"
    response = post_form(
        staff, "/portal/lines/new", declare_form(bandwidth_mbps="", a_city=""), page="/portal/lines/new"
    )
    assert response.status_code == 400 and line_count(journey.rt) == 0
    response = post_form(staff, "/portal/lines/new", declare_form(systems="hrss-web01"), page="/portal/lines/new")
    assert response.status_code == 400 and line_count(journey.rt) == 0  # not one of theirs to pick
    response = post_form(staff, new, declare_form(contract_end="2020-01-01"), page=new)
    assert response.status_code == 400 and "contract_end-error" in response.get_data(as_text=True)
    response = post_form(staff, new, declare_form(code="线路 1"), page=new)
    assert response.status_code == 400 and "code-error" in response.get_data(as_text=True)
    response = post_form(
        staff, "/portal/lines/new", declare_form(systems="jyt-exam01", classified="y"), page="/portal/lines/new"
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    line_id, state, target = line_by_code(journey.rt, "JYT-SDH-9")
    assert (state, target) == (LineState.IN_SERVICE, None)
    detail = staff.get(f"/portal/lines/{line_id}").get_data(as_text=True)
    assert "jyt-exam01" in detail
    with journey.rt.db.unit_of_work() as uow:  # another department's line: not found by its id
        theirs = make_line(uow.session, "HRSS-1", dept_key="ts-hrss").id
    assert staff.get(f"/portal/lines/{theirs}").status_code == 404
    assert "HRSS-1" not in staff.get("/portal/lines?q=HRSS").get_data(as_text=True)
    again = post_form(staff, "/portal/lines/new", declare_form(), page="/portal/lines/new")
    assert again.status_code == 400 and "已存在" in again.get_data(as_text=True)


def _lines_for_ops(rt: Runtime) -> dict[str, int]:
    with rt.db.unit_of_work() as uow:
        secret = make_system(uow.session, "secret01", classification="classified", network="intranet", state="intranet")
        ids = {
            "secret": make_line(uow.session, "L-SEC", systems=[secret], a_county="长安区").id,
            "plain": make_line(uow.session, "L-EXT", a_county="长安区").id,
            "public": make_line(uow.session, "L-PUB", public_facing=True, b_city="唐山市", b_county="迁安市").id,
            "hrss": make_line(uow.session, "L-HRSS", dept_key="ts-hrss", b_city="唐山市", b_county="路北区").id,
        }
    return ids


def test_operator_register_plan_batch_record_and_coverage(app: Flask, journey: Journey) -> None:
    ids = _lines_for_ops(journey.rt)
    op = logged_in(app, "operator")
    assert 'href="/ops/lines"' in op.get("/ops/").get_data(as_text=True)
    page = op.get("/ops/lines").get_data(as_text=True)
    assert all(f'data-line="{c}"' in page for c in ("L-SEC", "L-EXT", "L-PUB", "L-HRSS"))
    intranet = op.get("/ops/lines?target=intranet").get_data(as_text=True)
    assert 'data-line="L-SEC"' in intranet and 'data-line="L-EXT"' not in intranet
    dept = op.get("/ops/lines?department=ts-hrss").get_data(as_text=True)
    assert 'data-line="L-HRSS"' in dept and 'data-line="L-EXT"' not in dept
    county = op.get("/ops/lines?city=唐山市&county=迁安市").get_data(as_text=True)
    assert 'data-line="L-PUB"' in county and 'data-line="L-HRSS"' not in county

    detail = op.get(f"/ops/lines/{ids['plain']}")
    assert detail.status_code == 200 and 'data-testid="plan-form"' in detail.get_data(as_text=True)
    when = (date.today() + timedelta(days=30)).isoformat()
    response = post_form(
        op, f"/ops/lines/{ids['plain']}/plan", {"target": "extranet", "cutover_date": when},
        page=f"/ops/lines/{ids['plain']}",
    )  # fmt: skip
    assert response.status_code == 302
    assert line_by_code(journey.rt, "L-EXT")[1:] == (LineState.PLANNED, LineTarget.EXTRANET)
    # a non-classified line onto the intranet is refused with a message, not a 500
    public = f"/ops/lines/{ids['public']}"
    response = post_form(op, f"{public}/plan", {"target": "intranet"}, page=public)
    assert response.status_code == 400 and 'data-testid="refusal"' in response.get_data(as_text=True)
    response = post_form(op, f"{public}/plan", {"target": "moon"}, page=public)
    assert response.status_code == 400

    batch = op.get("/ops/lines/batch").get_data(as_text=True)
    assert "迁安市" in batch and 'for="city"' in batch and 'for="cutover_date"' in batch
    response = post_form(op, "/ops/lines/batch", {"city": "", "cutover_date": when}, page="/ops/lines/batch")
    assert response.status_code == 400
    response = post_form(op, "/ops/lines/batch", {"city": "唐山市", "county": "迁安市", "cutover_date": "soon"},
                         page="/ops/lines/batch")  # fmt: skip
    assert response.status_code == 400
    response = post_form(op, "/ops/lines/batch", {"city": "承德市", "county": "", "cutover_date": when},
                         page="/ops/lines/batch")  # fmt: skip
    assert response.status_code == 404  # no line there: said on the form
    response = post_form(op, "/ops/lines/batch", {"city": "唐山市", "county": "迁安市", "cutover_date": when},
                         page="/ops/lines/batch")  # fmt: skip
    assert response.status_code == 302
    assert line_by_code(journey.rt, "L-PUB")[1:] == (LineState.PLANNED, LineTarget.INTERNET)
    assert line_by_code(journey.rt, "L-HRSS")[1:] == (LineState.IN_SERVICE, None)  # another county

    planned = op.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-testid="record-L-PUB"' in planned and "data-confirm" in planned
    response = post_form(op, f"/ops/lines/{ids['plain']}/record", {"next": "/ops/lines"}, page="/ops/lines")
    assert response.status_code == 302 and response.headers["Location"].endswith("/ops/lines")
    assert line_by_code(journey.rt, "L-EXT")[1] == LineState.CUT_OVER
    response = post_form(op, f"/ops/lines/{ids['plain']}/record", {"next": "//evil.example"}, page="/ops/lines")
    assert response.status_code == 303 and "evil" not in response.headers["Location"]  # not planned any more
    assert op.get("/ops/lines/2147483647").status_code == 404

    coverage = op.get("/ops/lines/coverage").get_data(as_text=True)
    assert coverage.count('data-level="city"') == 11
    assert 'data-place="石家庄市/长安区/" data-reached="yes"' in coverage  # L-EXT was cut over onto the extranet
    assert 'data-place="唐山市//" data-reached="no"' in coverage


def test_classified_rule_on_the_page_refused_audited_unchanged(app: Flask, journey: Journey) -> None:
    ids = _lines_for_ops(journey.rt)
    op = logged_in(app, "operator")
    for target in ("extranet", "internet"):
        response = post_form(
            op, f"/ops/lines/{ids['secret']}/plan", {"target": target}, page=f"/ops/lines/{ids['secret']}"
        )
        assert response.status_code == 409
        assert 'data-testid="refusal"' in response.get_data(as_text=True)
        assert line_by_code(journey.rt, "L-SEC")[1:] == (LineState.IN_SERVICE, None)
    with journey.rt.db.unit_of_work() as uow:
        events = list(
            uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "network_line.placement_refused"))
        )
        assert [(e.detail["target"], e.detail["entry_point"], e.actor) for e in events] == [
            ("extranet", "page", "operator"),
            ("internet", "page", "operator"),
        ]
    # a batch over the line's city plans it onto the intranet, its target by rule
    batch = {"city": "石家庄市", "county": "长安区", "cutover_date": date.today().isoformat()}
    response = post_form(op, "/ops/lines/batch", batch, page="/ops/lines/batch")
    assert response.status_code == 302
    assert line_by_code(journey.rt, "L-SEC")[1:] == (LineState.PLANNED, LineTarget.INTRANET)


def _api(client: FlaskClient, headers: dict[str, str], path: str, body: Any = None) -> Any:
    if body is None:
        return client.get(path, headers=headers)
    return client.post(path, headers=headers, data=json.dumps(body), content_type="application/json")


def test_api_lines(app: Flask, journey: Journey) -> None:
    ids = _lines_for_ops(journey.rt)
    client = app.test_client()
    staff, op = _bearer(journey, "zhangwei"), _bearer(journey, "operator")
    listed = _api(client, staff, "/api/v1/lines").get_json()
    assert {x["code"] for x in listed["items"]} == {"L-SEC", "L-EXT", "L-PUB"}  # not ts-hrss's
    assert _api(client, op, "/api/v1/lines?department=ts-hrss").get_json()["total"] == 1
    assert _api(client, op, "/api/v1/lines?department=nope").status_code == 400
    assert _api(client, op, "/api/v1/lines?carrier=moon").status_code == 400
    one = _api(client, staff, f"/api/v1/lines/{ids['secret']}").get_json()
    assert one["classified"] and one["rule_target"] == "intranet" and one["state"] == "in_service"
    assert _api(client, staff, f"/api/v1/lines/{ids['hrss']}").status_code == 404

    body = {"code": "API-1", "carrier": "mobile", "line_type": "mpls_vpn", "bandwidth_mbps": 50, "a_site": "甲",
            "a_city": "邯郸市", "b_site": "乙", "b_city": "邯郸市", "b_county": "武安市", "monthly_rent": "1200",
            "contract_start": "2024-01-01", "contract_end": "2026-06-30"}  # fmt: skip
    created = _api(client, staff, "/api/v1/lines", body)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["department"] == "prov-education" and created.get_json()["rule_target"] == "extranet"
    bad = _api(client, staff, "/api/v1/lines", {**body, "code": "API-2", "carrier": "moon", "contract_end": "x"})
    assert bad.status_code == 400 and bad.get_json()["error"] == "lines_invalid"
    # the API speaks English, as every API error: the problems' fields and reasons too
    assert {p["field"] for p in bad.get_json()["problems"]} >= {"Carrier", "Contract ends"}
    assert (
        "'moon' is not valid" in json.dumps(bad.get_json()) and "The line was not declared" in bad.get_json()["message"]
    )
    assert _api(client, staff, "/api/v1/lines", {**body, "code": "API-3", "department": "ts-hrss"}).status_code == 400
    assert _api(client, staff, "/api/v1/lines", {**body, "bandwidth_mbps": "fast"}).status_code == 400
    assert _api(client, op, "/api/v1/lines", {**body, "code": "API-4"}).status_code == 400  # operators name it

    content = base64.b64encode(csv_bytes([row(code="IMP-1"), row(code="IMP-2", monthly_rent="-1")])).decode()
    refused = _api(client, staff, "/api/v1/lines/import", {"filename": "l.csv", "content_base64": content})
    assert refused.status_code == 400 and refused.get_json()["problems"][0]["row"] == 3
    assert _api(client, staff, "/api/v1/lines/import", {"filename": "l.csv", "content_base64": "%%"}).status_code == 400
    content = base64.b64encode(csv_bytes([row(code="IMP-1"), row(code="IMP-2")])).decode()
    imported = _api(client, staff, "/api/v1/lines/import", {"filename": "l.csv", "content_base64": content})
    assert imported.status_code == 200 and imported.get_json()["created"] == 2

    assert _api(client, staff, f"/api/v1/lines/{ids['plain']}/plan", {"target": "extranet"}).status_code == 403
    assert _api(client, op, f"/api/v1/lines/{ids['plain']}/plan", {"target": "sky"}).status_code == 400
    planned = _api(client, op, f"/api/v1/lines/{ids['plain']}/plan", {"target": "extranet", "date": "2027-01-02"})
    assert planned.status_code == 200 and planned.get_json()["cutover_date"] == "2027-01-02"
    recorded = _api(client, op, f"/api/v1/lines/{ids['plain']}/record", {})
    assert recorded.status_code == 200 and recorded.get_json()["state"] == "cut_over"
    assert _api(client, op, f"/api/v1/lines/{ids['plain']}/record", {}).status_code == 400  # not planned now
    batch = _api(client, op, "/api/v1/lines/batches", {"city": "唐山市", "date": "2027-03-01"})
    assert batch.status_code == 200 and set(batch.get_json()["planned"]) == {"L-PUB", "L-HRSS"}
    assert _api(client, op, "/api/v1/lines/batches", {"city": "承德市", "date": "2027-03-01"}).status_code == 404
    assert _api(client, op, "/api/v1/lines/batches", {"city": "唐山市"}).status_code == 400
    coverage = _api(client, op, "/api/v1/lines/coverage").get_json()["items"]
    reached = {(c["city"], c["county"]) for c in coverage if c["reached"]}
    assert ("石家庄市", "") in reached and ("石家庄市", "长安区") in reached
    assert _api(client, staff, "/api/v1/lines/coverage").status_code == 403


def test_classified_rule_on_the_api_refused_audited_unchanged(app: Flask, journey: Journey) -> None:
    ids = _lines_for_ops(journey.rt)
    client = app.test_client()
    op = _bearer(journey, "operator")
    for target in ("extranet", "internet"):
        response = _api(client, op, f"/api/v1/lines/{ids['secret']}/plan", {"target": target, "date": "2027-01-01"})
        assert response.status_code == 409 and response.get_json()["error"] == "classified_line"
    assert line_by_code(journey.rt, "L-SEC")[1:] == (LineState.IN_SERVICE, None)
    with journey.rt.db.unit_of_work() as uow:
        line = uow.session.get(NetworkLine, ids["secret"])
        assert line is not None and line.cutover_date is None and line.planned_by is None
        events = list(
            uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "network_line.placement_refused"))
        )
        assert [(e.detail["target"], e.detail["entry_point"]) for e in events] == [
            ("extranet", "api"),
            ("internet", "api"),
        ]
