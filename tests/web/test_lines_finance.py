"""Finance and the dedicated lines through the Flask client: a department's renewal of a line to places the
extranet reaches, flagged on finance's queue and blocked with a reason; bad input on the forms; the
contracts ending, the savings report (its totals add up) and the network programme pages of every role;
department isolation of the requests."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cloudmgr.lines import tracking
from cloudmgr.lines.finance_models import LineRentalRequest
from cloudmgr.lines.models import LineState, LineTarget
from cloudmgr.runtime import Runtime
from tests.lines.helpers import make_line
from tests.web.helpers import logged_in, post_form
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


@pytest.fixture
def world(journey_rt: Runtime) -> dict[str, Any]:
    """The extranet reaching 石家庄市 and 保定市竞秀区 (a line cut over to it two months ago), and lines of
    prov-education (zhangwei) and ts-hrss (wangfang) whose contracts end soon."""
    today = tracking.today()
    with journey_rt.db.unit_of_work() as uow:
        s = uow.session
        make_line(
            s, "EXT-BD", b_city="保定市", b_county="竞秀区", state=LineState.CUT_OVER, target=LineTarget.EXTRANET,
            cut_over_at=datetime.combine(today - timedelta(days=60), datetime.min.time(), tzinfo=UTC),
            monthly_rent=Decimal("2500.00"),
        )  # fmt: skip
        edu = make_line(s, "EDU-BD", b_city="保定市", b_county="竞秀区", contract_end=today + timedelta(days=30))
        ts = make_line(s, "TS-QA", dept_key="ts-hrss", b_city="唐山市", b_county="迁安市",
                       contract_end=today + timedelta(days=50))  # fmt: skip
        return {"edu": edu.code, "ts": ts.code, "today": today}


def _renew(client: Any, code: str, end: str, *, rent: str = "3000", submit: bool = True) -> Any:
    data = {"kind": "renewal", "line_code": code, "monthly_rent": rent, "contract_end": end}
    data["submit" if submit else "save"] = "1"
    return post_form(client, "/portal/lines/rentals/new", data)


def _id(response: Any) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def test_renewal_flagged_and_blocked_with_a_reason(app: Flask, world: dict[str, Any], journey_rt: Runtime) -> None:
    staff = logged_in(app, "zhangwei")
    end = (world["today"] + timedelta(days=3 * 365)).isoformat()
    rental_id = _id(_renew(staff, world["edu"], end))
    mine = staff.get("/portal/lines/rentals").get_data(as_text=True)
    assert f'data-rental="{rental_id}"' in mine and 'data-state="submitted"' in mine

    finance = logged_in(app, "finance")
    home = finance.get("/finance/").get_data(as_text=True)
    assert re.search(r'data-testid="line-rentals-waiting"><span class="stat-value">1<', home)
    queue = finance.get("/finance/lines/rentals").get_data(as_text=True)
    assert re.search(rf'data-rental="{rental_id}" data-flagged="true"', queue)
    assert 'data-finding="extranet_reaches"' in queue
    page = finance.get(f"/finance/lines/rentals/{rental_id}").get_data(as_text=True)
    assert page.count("<h1") == 1
    assert 'data-end="B" data-reached="true"' in page and 'data-severity="flag"' in page
    # a block without a reason is refused, nothing stored
    refused = post_form(finance, f"/finance/lines/rentals/{rental_id}/decide", {"decision": "block", "reason": ""})
    assert refused.status_code == 400 and "error-summary" in refused.get_data(as_text=True)
    done = post_form(
        finance, f"/finance/lines/rentals/{rental_id}/decide", {"decision": "block", "reason": "外网已覆盖保定竞秀区"}
    )
    assert done.status_code == 302
    # decided: a second decision is refused with a clear message
    again = post_form(
        finance, f"/finance/lines/rentals/{rental_id}/decide", {"decision": "approve", "reason": ""},
        page=f"/finance/lines/rentals/{rental_id}",
    )  # fmt: skip
    assert again.status_code == 409
    seen = staff.get(f"/portal/lines/rentals/{rental_id}").get_data(as_text=True)
    assert 'data-state="blocked"' in seen and "外网已覆盖保定竞秀区" in seen and 'data-testid="rental-decision"' in seen
    with journey_rt.db.unit_of_work() as uow:
        stored = uow.session.get(LineRentalRequest, rental_id)
        assert stored is not None and stored.decided_by == "finance" and stored.block_basis == "extranet_reaches"


def test_bad_input_and_department_isolation(app: Flask, world: dict[str, Any]) -> None:
    staff = logged_in(app, "zhangwei")
    # another department's line is not offered, and asked for anyway it is not found
    form = staff.get("/portal/lines/rentals/new").get_data(as_text=True)
    assert world["edu"] in form and world["ts"] not in form
    response = _renew(staff, world["ts"], "2035-01-01")
    assert response.status_code == 404
    # every problem at once, nothing stored
    english = logged_in(app, "zhangwei")
    english.get("/portal/?lang=en")
    bad = _renew(english, world["edu"], "someday", rent="-3")
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "Monthly rent (yuan): " in text and "Contract ends: Enter a date" in text
    draft = _id(_renew(staff, world["edu"], "2031-01-01", submit=False))
    other = logged_in(app, "wangfang")
    assert other.get(f"/portal/lines/rentals/{draft}").status_code == 404
    submitted = post_form(other, f"/portal/lines/rentals/{draft}/submit", {}, page="/portal/lines/rentals")
    assert submitted.status_code == 404
    assert f'data-rental="{draft}"' not in other.get("/portal/lines/rentals").get_data(as_text=True)
    # the owner submits the draft
    sent = post_form(staff, f"/portal/lines/rentals/{draft}/submit", {}, page=f"/portal/lines/rentals/{draft}")
    assert sent.status_code == 302
    # finance-only pages
    assert staff.get("/finance/lines/rentals").status_code == 403
    assert logged_in(app, "operator").get(f"/finance/lines/rentals/{draft}").status_code == 403


def test_contracts_savings_and_programme_pages(app: Flask, world: dict[str, Any]) -> None:
    finance = logged_in(app, "finance")
    contracts = finance.get("/finance/lines/contracts").get_data(as_text=True)
    assert 'data-line="EDU-BD" data-action="cut_over_extranet"' in contracts
    assert 'data-line="TS-QA" data-action="renew"' in contracts
    savings = finance.get("/finance/lines/savings").get_data(as_text=True)
    assert 'data-testid="savings-chart"' in savings and "<rect" in savings
    assert re.search(r'data-testid="savings-total">[^<]*2,500\.00', savings)
    csv = finance.get("/finance/lines/savings.csv").get_data(as_text=True)
    assert "2500.00" in csv.splitlines()[-1]
    assert finance.get("/finance/lines/savings?year=1999").status_code == 200
    for client, path in (
        (finance, "/finance/lines/programme"),
        (logged_in(app, "operator"), "/ops/lines/programme"),
        (logged_in(app, "wangfang"), "/portal/lines/programme"),
    ):
        page = client.get(path).get_data(as_text=True)
        assert page.count("<h1") == 1 and 'data-testid="lines-burndown"' in page
        assert 'data-testid="rent-burndown"' in page
        assert "<script" not in page.split("<main", 1)[-1].split("</main>", 1)[0]
    department = logged_in(app, "wangfang").get("/portal/lines/programme").get_data(as_text=True)
    assert 'data-department="ts-hrss"' in department and 'data-department="prov-education"' not in department
    assert "EDU-BD" not in department
    ops = logged_in(app, "operator").get("/ops/lines/programme").get_data(as_text=True)
    assert 'data-department="ts-hrss"' in ops and 'data-department="prov-education"' in ops
    assert re.search(r'<a href="/ops/lines/\d+"><code>TS-QA</code></a>', ops)  # the operators open the line


def test_new_line_request_through_the_page(app: Flask, world: dict[str, Any], journey_rt: Runtime) -> None:
    staff = logged_in(app, "zhangwei")
    data = {
        "kind": "new", "monthly_rent": "1800.50", "contract_start": "2027-01-01", "contract_end": "2029-12-31",
        "carrier": "unicom", "line_type": "mstp", "bandwidth_mbps": "20", "a_site": "省教育厅", "a_city": "石家庄市",
        "a_county": "", "b_site": "保定市教育局", "b_city": "保定市", "b_county": "竞秀区", "submit": "1",
    }  # fmt: skip
    rental_id = _id(post_form(staff, "/portal/lines/rentals/new", data))
    with journey_rt.db.unit_of_work() as uow:
        stored = uow.session.scalars(select(LineRentalRequest).where(LineRentalRequest.id == rental_id)).one()
        assert stored.kind == "new" and stored.flagged and stored.monthly_rent == Decimal("1800.50")


def test_form_problems_read_in_chinese(app: Flask, world: dict[str, Any]) -> None:
    """The request form's problems in the Chinese console (the domain's sentences, translated where shown)."""
    staff = logged_in(app, "zhangwei")
    bad = _renew(staff, world["edu"], "someday", rent="-3")
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "月租（元）：" in text and "合同结束：" in text
