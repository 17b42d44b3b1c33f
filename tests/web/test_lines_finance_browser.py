"""The finance block of a line renewal in a real browser (Debian's Chromium through Playwright).

zhangwei (department IT staff) renews a line between two places the e-government extranet already reaches;
the finance reviewer finds it flagged at the top of the line rental review, sees the extranet beside it
and blocks it with a reason; zhangwei sees it blocked, with the reason.  Then the reviewer opens the
contracts ending and the savings report (chart), and the operator the network programme (burndown charts).
Screenshots go to test-artifacts/lines-finance-*.png.  Never skipped: without /usr/bin/chromium it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from cloudmgr.lines import tracking
from cloudmgr.lines.models import LineState, LineTarget
from cloudmgr.runtime import Runtime
from tests.lines.helpers import make_line
from tests.web.browser_session import browser_session, go, served_app

pytestmark = pytest.mark.browser


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the journey is about the pages (tests/web/test_lines_finance.py runs on PostgreSQL too)."""
    return f"sqlite:///{tmp_path / 'cloudmgr.sqlite3'}"


@pytest.fixture
def server(journey_rt: Runtime) -> Iterator[str]:
    today = tracking.today()
    with journey_rt.db.unit_of_work() as uow:
        s = uow.session
        make_line(
            s, "EXT-BD", b_city="保定市", b_county="竞秀区", state=LineState.CUT_OVER, target=LineTarget.EXTRANET,
            cut_over_at=datetime.combine(today - timedelta(days=40), datetime.min.time(), tzinfo=UTC),
            monthly_rent=Decimal("2500.00"),
        )  # fmt: skip
        make_line(s, "JYT-BD-9", b_city="保定市", b_county="竞秀区", contract_end=today + timedelta(days=25))
    with served_app(journey_rt, "lines-finance") as base:
        yield base


def test_staff_renewal_flagged_blocked_by_finance_seen_by_staff(server: str, artifacts_dir: Path) -> None:
    base = server

    with browser_session(base, artifacts_dir, "lines-finance") as session:
        # The department renews its line to 保定市竞秀区, where the extranet already reaches.
        staff = session.login("zhangwei")
        go(staff, "/portal/lines/rentals")
        staff.click("[data-testid=new-renewal]")
        staff.select_option("#kind", "renewal")
        staff.select_option("#line_code", "JYT-BD-9")
        staff.fill("#monthly_rent", "3100")
        staff.fill("#contract_end", (tracking.today() + timedelta(days=3 * 365)).isoformat())
        staff.fill("#purpose", "合同即将到期，申请续约三年")
        session.shot(staff, "1-renewal")
        staff.click("[data-testid=submit-rental]")
        staff.wait_for_selector("[data-state=submitted]")
        rental_path = staff.url.removeprefix(base)
        rental_id = int(rental_path.rstrip("/").split("/")[-1])
        assert staff.locator("[data-testid=rental-line]").inner_text() == "JYT-BD-9"
        session.shot(staff, "2-submitted")

        # Finance: flagged at the top of the review, the extranet beside it; blocked with a reason.
        reviewer = session.login("finance")
        go(reviewer, "/finance/lines/rentals")
        row = reviewer.locator(f"tr[data-rental='{rental_id}']")
        assert row.get_attribute("data-flagged") == "true"
        assert row.locator("[data-finding=extranet_reaches]").count() == 1
        session.shot(reviewer, "3-queue")
        row.locator("a").first.click()
        reviewer.wait_for_selector("[data-testid=decide]")
        assert reviewer.locator("[data-testid=rental-ends] tr[data-reached=true]").count() == 2
        assert "保定市竞秀区" in reviewer.inner_text("[data-finding=extranet_reaches]")
        reviewer.check("input[name=decision][value=block]")
        reviewer.click("[data-testid=decide]")  # no reason: refused, asked again
        reviewer.wait_for_selector(".error-summary")
        session.shot(reviewer, "4-reason-needed")
        reviewer.check("input[name=decision][value=block]")
        reviewer.select_option("#basis", "extranet_reaches")
        reviewer.fill("#reason", "电子政务外网已覆盖保定市竞秀区，请割接至外网，不再续租专线")
        reviewer.click("[data-testid=decide]")
        reviewer.wait_for_selector("[data-testid=rental-queue]")
        assert reviewer.locator(f"[data-testid=rental-queue] tr[data-rental='{rental_id}']").count() == 0
        assert reviewer.locator(f"[data-testid=rentals-decided] tr[data-rental='{rental_id}']").count() == 1
        session.shot(reviewer, "5-decided")

        # The department sees it blocked, with the reason.
        go(staff, "/portal/lines/rentals")
        assert staff.locator(f"tr[data-rental='{rental_id}'] [data-state=blocked]").count() == 1
        staff.locator(f"tr[data-rental='{rental_id}'] a").first.click()
        staff.wait_for_selector("[data-testid=rental-decision]")
        assert "电子政务外网已覆盖保定市竞秀区" in staff.inner_text("[data-testid=rental-decision]")
        assert staff.locator("[data-state=blocked]").count() == 1
        session.shot(staff, "6-blocked")

        # The reviewer's other pages: contracts ending, savings (chart); the operator's programme.
        go(reviewer, "/finance/lines/contracts")
        assert reviewer.locator("tr[data-line='JYT-BD-9'][data-action=cut_over_extranet]").count() == 1
        go(reviewer, "/finance/lines/savings")
        assert reviewer.locator("[data-testid=savings-chart] rect.chart-bar").count() == 1
        session.shot(reviewer, "7-savings")
        operator = session.login("operator")
        go(operator, "/ops/lines/programme")
        assert operator.locator("[data-testid=lines-burndown] [data-testid=actual-point]").count() >= 2
        assert operator.locator("[data-testid=rent-burndown]").count() == 1
        session.shot(operator, "8-programme")
