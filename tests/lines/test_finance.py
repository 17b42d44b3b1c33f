"""Finance's review of line rentals and renewals: the state machine, the extranet flag, blocking with a
reason (audited), department isolation, and an approved renewal extending the line's contract."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import utcnow
from cloudmgr.errors import PermissionDenied
from cloudmgr.lines import finance
from cloudmgr.lines.errors import LineNotFound, RentalInvalid, RentalNotFound, RentalTransitionInvalid
from cloudmgr.lines.finance_models import BlockBasis, LineRentalRequest, RentalState
from cloudmgr.lines.models import LineState, LineTarget, NetworkLine
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime
from tests.inventory.helpers import department
from tests.lines.helpers import make_line

FINANCE = Actor("finance", Role.FINANCE)
OPERATOR = Actor("operator", Role.OPERATOR)


def _staff(session: object, key: str = "prov-education") -> Actor:
    return Actor(f"staff-{key}", Role.DEPT_STAFF, department_id=department(session, key).id)  # type: ignore[arg-type]


def _reach(session: object, city: str = "保定市", county: str = "竞秀区") -> None:
    """A line cut over onto the extranet, so that the extranet reaches 石家庄市 and ``city``/``county``."""
    make_line(
        session,  # type: ignore[arg-type]
        "EXT-1",
        b_city=city,
        b_county=county,
        state=LineState.CUT_OVER,
        target=LineTarget.EXTRANET,
        cut_over_at=utcnow(),
    )


def _renewal(code: str, end: date, rent: str = "3000.00") -> finance.RentalInput:
    return finance.RentalInput(kind="renewal", line_code=code, monthly_rent=rent, contract_end=end.isoformat())


def test_renewal_to_a_site_the_extranet_reaches_is_flagged_and_blocked(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        _reach(s)
        line = make_line(s, "L-BD", b_city="保定市", b_county="竞秀区", contract_end=date(2027, 1, 31))
        staff = _staff(s)
        rental = finance.create_rental(s, staff, _renewal("L-BD", date(2030, 1, 31)), submit=True, entry_point="test")
        assert rental.state == RentalState.SUBMITTED and rental.submitted_by == staff.username
        assert rental.line_id == line.id and rental.b_city == "保定市"
        rows = finance.review_queue(s, FINANCE)
        assert [r.rental.id for r in rows] == [rental.id] and rows[0].flagged
        assert [f.kind for f in rows[0].findings] == ["extranet_reaches"]
        assert "保定市竞秀区" in rows[0].findings[0].places
        with pytest.raises(RentalInvalid):  # a block needs a reason
            finance.decide_rental(s, FINANCE, rental.id, decision="block", entry_point="test")
        finance.decide_rental(s, FINANCE, rental.id, decision="block", reason="外网已通保定", entry_point="test")
        rental_id = rental.id
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        stored = s.get(LineRentalRequest, rental_id)
        assert stored is not None and stored.state == RentalState.BLOCKED
        assert stored.decided_by == "finance" and stored.decided_at is not None
        assert stored.block_basis == BlockBasis.EXTRANET_REACHES and stored.decision_reason == "外网已通保定"
        line = s.scalars(select(NetworkLine).where(NetworkLine.code == "L-BD")).one()
        assert line.contract_end == date(2027, 1, 31)  # a block changes nothing on the line
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "network_line_rental.block")).one()
        assert event.actor == "finance" and event.reason == "外网已通保定"
        assert event.detail["basis"] == "extranet_reaches"
        # decided: no second decision
        with pytest.raises(RentalTransitionInvalid):
            finance.decide_rental(s, FINANCE, rental_id, decision="approve", entry_point="test")


def test_approved_renewal_extends_the_contract_and_sets_the_rent(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        make_line(s, "L-TS", b_city="唐山市", contract_end=date(2027, 1, 31))
        rental = finance.create_rental(
            s, _staff(s), _renewal("L-TS", date(2029, 1, 31), "2800.50"), submit=True, entry_point="test"
        )
        assert not finance.review_queue(s, FINANCE)[0].flagged  # the extranet does not reach 唐山市
        with pytest.raises(RentalInvalid):  # no extranet finding to block on
            finance.decide_rental(
                s, FINANCE, rental.id, decision="block", reason="x", basis="extranet_reaches", entry_point="test"
            )
        finance.decide_rental(s, FINANCE, rental.id, decision="approve", entry_point="test")
    with seeded.db.unit_of_work() as uow:
        line = uow.session.scalars(select(NetworkLine).where(NetworkLine.code == "L-TS")).one()
        assert line.contract_end == date(2029, 1, 31) and line.monthly_rent == Decimal("2800.50")
        assert uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "network_line.renewed")).one()


def test_new_line_request_every_problem_reported_nothing_stored(seeded: Runtime) -> None:
    bad = finance.RentalInput(
        kind="new", monthly_rent="-5", contract_end="2020-01-01", contract_start="2026-01-01", carrier="x",
        line_type="mstp", bandwidth_mbps="0", a_site="", a_city="石家庄市", b_site="b", b_city="",
    )  # fmt: skip
    with seeded.db.unit_of_work() as uow:
        with pytest.raises(RentalInvalid) as exc:
            finance.create_rental(uow.session, _staff(uow.session), bad, submit=True, entry_point="test")
        fields = " ".join(str(p) for p in exc.value.problems)
        for field in ("Monthly rent", "Carrier", "Bandwidth", "A end: site", "B end: city", "Contract ends"):
            assert field in fields
        assert all(p.msgid == "%(field)s: %(message)s" for p in exc.value.problems)  # translated where shown
        assert uow.session.scalars(select(LineRentalRequest)).first() is None


def test_new_line_flag_and_classified_not_flagged(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        _reach(s)
        common: dict[str, Any] = {
            "kind": "new", "monthly_rent": "1000", "contract_start": "2027-01-01", "contract_end": "2029-12-31",
            "carrier": "unicom", "line_type": "mstp", "bandwidth_mbps": "20", "a_site": "a", "a_city": "石家庄市",
            "b_site": "b", "b_city": "保定市", "b_county": "竞秀区",
        }  # fmt: skip
        plain = finance.create_rental(s, _staff(s), finance.RentalInput(**common), submit=True, entry_point="t")
        secret = finance.create_rental(
            s, _staff(s), finance.RentalInput(**common, classified=True), submit=True, entry_point="t"
        )
        assert plain.flagged and [f["kind"] for f in plain.findings] == ["extranet_reaches"]
        # stored with its msgid and parameters, so a page says it in its reader's language
        assert plain.findings[0]["msgid"] == finance.EXTRANET_TEXT
        assert plain.findings[0]["params"] == {"places": "石家庄市, 保定市竞秀区"}
        assert plain.findings[0]["message"].startswith("The e-government extranet already reaches 石家庄市")
        assert not secret.flagged and [f["kind"] for f in secret.findings] == ["classified"]


def test_department_isolation_and_roles(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        make_line(s, "L-EDU")
        make_line(s, "L-TS", dept_key="ts-hrss")
        edu, ts = _staff(s), _staff(s, "ts-hrss")
        with pytest.raises(LineNotFound):  # another department's line cannot be renewed
            finance.create_rental(s, ts, _renewal("L-EDU", date(2030, 1, 1)), submit=False, entry_point="t")
        draft = finance.create_rental(s, edu, _renewal("L-EDU", date(2030, 1, 1)), submit=False, entry_point="t")
        assert draft.state == RentalState.DRAFT
        with pytest.raises(RentalNotFound):
            finance.get_rental(s, ts, draft.id)
        with pytest.raises(RentalNotFound):
            finance.submit_rental(s, ts, draft.id, entry_point="t")
        assert finance.list_rentals(s, ts) == []
        assert [r.id for r in finance.list_rentals(s, edu)] == [draft.id]
        with pytest.raises(RentalInvalid):  # one open renewal per line
            finance.create_rental(s, edu, _renewal("L-EDU", date(2031, 1, 1)), submit=False, entry_point="t")
        with pytest.raises(RentalTransitionInvalid):  # a draft is not decided
            finance.decide_rental(s, FINANCE, draft.id, decision="approve", entry_point="t")
        finance.submit_rental(s, edu, draft.id, entry_point="t")
        for who in (edu, OPERATOR, Actor("admin", Role.ADMIN)):
            with pytest.raises(PermissionDenied):
                finance.decide_rental(s, who, draft.id, decision="approve", entry_point="t")
        with pytest.raises(PermissionDenied):
            finance.create_rental(s, FINANCE, _renewal("L-EDU", date(2030, 1, 1)), submit=False, entry_point="t")


def test_renewal_of_a_line_to_retire_is_flagged(seeded: Runtime) -> None:
    from tests.inventory.helpers import make_system

    with seeded.db.unit_of_work() as uow:
        s = uow.session
        system = make_system(s, "moved01", state="on_cloud")
        system.server_room.closed_at = utcnow()
        line = make_line(s, "L-OLD", systems=[system], contract_end=date.today() + timedelta(days=30))
        rental = finance.create_rental(
            s, _staff(s), _renewal(line.code, date.today() + timedelta(days=400)), submit=True, entry_point="t"
        )
        assert [f["kind"] for f in rental.findings] == ["retire_by_rule"]
        assert finance.default_basis(rental.findings) == BlockBasis.RETIRE
