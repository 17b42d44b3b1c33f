"""The network programme: the deadline from the programme file, progress by department and city, the
at-risk rule, the burndown rebuilt from recorded cut-overs, contracts ending and the savings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloudmgr.lines import tracking
from cloudmgr.lines.models import LineState, LineTarget, LineType
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.programme.config import Deadline
from cloudmgr.programme.errors import ProgrammeFileInvalid
from cloudmgr.runtime import Runtime
from tests.inventory.helpers import department
from tests.lines.helpers import make_line

TODAY = date(2019, 6, 30)
CONFIG = tracking.LinesConfig(date(2017, 1, 1), Deadline(date(2020, 12, 31), "2020年底", "end of 2020"), pace_days=90)


def _done(when: date) -> datetime:
    return datetime(when.year, when.month, when.day, 4, tzinfo=UTC)


def _gone(session: object, code: str, when: date, **kw: Any) -> None:
    make_line(
        session,  # type: ignore[arg-type]
        code,
        state=LineState.CUT_OVER,
        target=LineTarget.EXTRANET,
        cut_over_at=_done(when),
        **kw,
    )


def test_programme_file_network_deadline(tmp_path: Path) -> None:
    base = Path("etc/programme.yaml").read_text(encoding="utf-8")
    config = tracking.read_lines_config(Path("etc/programme.yaml"))
    assert config.deadline.date == date(2020, 12, 31) and config.deadline.label_zh
    without = tmp_path / "p.yaml"
    data = yaml.safe_load(base)
    del data["deadlines"]["network"]
    without.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert tracking.read_lines_config(without).deadline.date == date(2020, 12, 31)  # the rooms' deadline
    bad = tmp_path / "bad.yaml"
    bad.write_text(base.replace("network_pace_days: 90", "network_pace_days: 0"), encoding="utf-8")
    with pytest.raises(ProgrammeFileInvalid):
        tracking.read_lines_config(bad)


def test_at_risk_rule_and_rows(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        # prov-education: 4 lines, 2 done in the last 90 days: 2 left at 2 per 90 days -> on track
        _gone(s, "E1", TODAY - timedelta(days=10), b_city="保定市")
        _gone(s, "E2", TODAY - timedelta(days=40), b_city="保定市", monthly_rent=Decimal("1000.00"))
        make_line(s, "E3", b_city="唐山市")
        make_line(s, "E4", b_city="唐山市")
        # ts-hrss: 3 lines, one done long ago, none lately -> no pace -> at risk
        _gone(s, "T1", date(2018, 1, 15), dept_key="ts-hrss", b_city="唐山市")
        make_line(s, "T2", dept_key="ts-hrss", b_city="唐山市")
        make_line(s, "T3", dept_key="ts-hrss", b_city="唐山市")
        f = tracking.compute(s, CONFIG, TODAY)
        rows = {r.key: r for r in f.departments}
        edu, ts = rows["prov-education"], rows["ts-hrss"]
        assert (edu.total, edu.done, edu.remaining, edu.done_recent) == (4, 2, 2, 2)
        assert edu.status == "on_track" and edu.projected_finish == TODAY + timedelta(days=90)
        assert edu.rent_done == Decimal("4200.00") and edu.rent_remaining == Decimal("6400.00")
        assert (ts.status, ts.projected_finish, ts.remaining) == ("at_risk", None, 2)
        assert [r.key for r in f.at_risk] == ["ts-hrss"]
        cities = {r.key: r for r in f.cities}
        assert (cities["唐山市"].total, cities["唐山市"].done, cities["保定市"].status) == (5, 1, "done")
        assert f.total.total == 7 and f.total.done == 3
        assert sum(r.total for r in f.cities) == sum(r.total for r in f.departments) == 7
        assert f.by_target == {"extranet": 4}
        # after the deadline whatever remains is overdue
        late = tracking.compute(s, CONFIG, date(2021, 1, 5))
        assert {r.key: r.status for r in late.departments} == {"prov-education": "overdue", "ts-hrss": "overdue"}
        # a pace too slow for the deadline: 1 line per 90 days, 2 left, 60 days to go
        slow = tracking.compute(s, CONFIG, date(2020, 11, 1))
        assert {r.key: r.status for r in slow.departments}["prov-education"] == "at_risk"
        # a department user sees their own department only
        staff = Actor("x", Role.DEPT_STAFF, department_id=department(s, "ts-hrss").id)
        assert [r.key for r in tracking.compute(s, CONFIG, TODAY, actor=staff).departments] == ["ts-hrss"]


def test_burndown_from_recorded_cutovers(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        _gone(s, "B1", date(2019, 3, 10), monthly_rent=Decimal("100.00"))
        _gone(s, "B2", date(2019, 5, 2), monthly_rent=Decimal("200.00"))
        make_line(s, "B3", monthly_rent=Decimal("400.00"))
        b = tracking.burndown(s, CONFIG, TODAY)
        assert b.total_lines == 3 and b.total_rent == Decimal("700.00")
        assert b.points == [
            (date(2019, 2, 28), 3, Decimal("700.00")),
            (date(2019, 3, 31), 2, Decimal("600.00")),
            (date(2019, 4, 30), 2, Decimal("600.00")),
            (date(2019, 5, 31), 1, Decimal("400.00")),
            (TODAY, 1, Decimal("400.00")),
        ]
        assert tracking.burndown(s, CONFIG, TODAY, city="唐山市").points == [(TODAY, 0, Decimal(0))]


def test_contracts_ending_and_what_to_do(seeded: Runtime) -> None:
    today = date(2026, 12, 7)
    soon = today + timedelta(days=30)
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        _gone(s, "EXT", today - timedelta(days=100), b_city="保定市")  # the extranet reaches 石家庄市, 保定市
        make_line(s, "C-EXT", b_city="保定市", contract_end=soon)
        make_line(s, "C-FAR", b_city="承德市", contract_end=soon)
        make_line(s, "C-SEC", declared_classified=True, contract_end=soon)
        make_line(s, "C-PUB", public_facing=True, line_type=LineType.INTERNET, contract_end=soon)
        make_line(s, "C-PUB2", public_facing=True, contract_end=soon)
        make_line(
            s, "C-PLAN", state=LineState.PLANNED, target=LineTarget.INTRANET, declared_classified=True,
            cutover_date=today + timedelta(days=10), contract_end=soon,
        )  # fmt: skip
        make_line(s, "C-LATE", contract_end=today - timedelta(days=5))
        make_line(s, "C-FUTURE", contract_end=today + timedelta(days=91))
        rows = {r.line.code: r for r in tracking.contracts_ending(s, today)}
        assert "C-FUTURE" not in rows and "EXT" not in rows
        assert rows["C-LATE"].days_left == -5
        actions = {code: r.action for code, r in rows.items()}
        assert actions == {
            "C-EXT": "cut_over_extranet",
            "C-FAR": "renew",
            "C-SEC": "renew",
            "C-PUB": "renew",
            "C-PUB2": "cut_over_internet",
            "C-PLAN": "cut_over_intranet",
            "C-LATE": "cut_over_extranet",  # 石家庄市 to 石家庄市: reached
        }
        assert "承德市" in str(rows["C-FAR"].reason)
        assert list(rows) == sorted(rows, key=lambda c: (rows[c].line.contract_end, c))


def test_savings_add_up(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        _gone(s, "S1", date(2025, 3, 1), b_city="保定市", monthly_rent=Decimal("100.50"))
        _gone(s, "S2", date(2026, 3, 1), b_city="保定市", monthly_rent=Decimal("200.00"))
        _gone(s, "S3", date(2026, 4, 1), b_city="唐山市", monthly_rent=Decimal("300.00"), dept_key="ts-hrss")
        make_line(s, "S4", state=LineState.RETIRED, target=LineTarget.RETIRE, cut_over_at=_done(date(2026, 5, 1)))
        make_line(s, "S5")  # still rented: no saving
        sv = tracking.savings(s)
        assert sv.lines == 4 and sv.monthly_rent == Decimal("3800.50")
        assert sv.by_year == [(2025, 1, Decimal("100.50")), (2026, 3, Decimal("3700.00"))]
        for group in (sv.by_year, sv.by_department, sv.by_city):
            assert sum(n for _, n, _ in group) == sv.lines
            assert sum(v for _, _, v in group) == sv.monthly_rent
        assert dict((k, v) for k, _, v in sv.by_city) == {
            "保定市": Decimal("300.50"), "唐山市": Decimal("300.00"), "石家庄市": Decimal("3200.00")
        }  # fmt: skip
        assert tracking.savings(s, year=2025).monthly_rent == Decimal("100.50")
        staff = Actor("x", Role.DEPT_STAFF, department_id=department(s, "ts-hrss").id)
        assert tracking.savings(s, actor=staff).monthly_rent == Decimal("300.00")
