"""The network programme's daily job: a reminder (e-mail, through the work queue) to a department at risk
or with contracts ending soon, at most once a week; and the programme's metrics on /metrics."""

from __future__ import annotations

import email
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.header import decode_header, make_header
from typing import Any

import pytest
from sqlalchemy import select

from cloudmgr.db import utcnow
from cloudmgr.lines import finance, tracking
from cloudmgr.lines.jobs import handle_line_reminder, run_daily
from cloudmgr.lines.models import LineState, LineTarget
from cloudmgr.metrics_exposition import render
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role, User
from cloudmgr.programme.config import Deadline
from cloudmgr.runtime import Runtime, set_runtime
from cloudmgr.workqueue.models import WorkItem
from cloudmgr.workqueue.services import Worker
from tests.inventory.helpers import department
from tests.lines.helpers import make_line

TODAY = date(2020, 6, 30)
CONFIG = tracking.LinesConfig(date(2017, 1, 1), Deadline(date(2020, 12, 31), "2020年底", "end of 2020"))


@pytest.fixture
def smtp_sink() -> Iterator[tuple[list[email.message.Message], int]]:
    import socket

    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self) -> None:
            self.messages: list[email.message.Message] = []

        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
            self.messages.append(email.message_from_bytes(envelope.content))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink.messages, port
    finally:
        controller.stop()


def test_reminders_for_departments_at_risk_and_contracts_ending(
    seeded: Runtime, smtp_sink: tuple[list[email.message.Message], int]
) -> None:
    messages, port = smtp_sink
    rt = seeded
    rt.settings = rt.settings.with_overrides(smtp_host="127.0.0.1", smtp_port=port)
    set_runtime(rt)
    with rt.db.unit_of_work() as uow:
        s = uow.session
        for user in s.scalars(select(User)):
            user.email = f"{user.username}@gov.example"
        # prov-education: no line done lately -> at risk
        make_line(s, "EDU-1", contract_end=date(2022, 1, 1))
        # ts-hrss: on track (one done lately, one left) but a contract ends in 30 days
        make_line(
            s, "TS-1", dept_key="ts-hrss", state=LineState.CUT_OVER, target=LineTarget.EXTRANET,
            cut_over_at=datetime(2020, 6, 1, tzinfo=UTC),
        )  # fmt: skip
        make_line(s, "TS-2", dept_key="ts-hrss", contract_end=TODAY + timedelta(days=30))
        # sjz-gov-office: on track, no contract ending: no reminder
        make_line(
            s, "SJZ-1", dept_key="sjz-gov-office", state=LineState.RETIRED, target=LineTarget.RETIRE,
            cut_over_at=datetime(2020, 6, 1, tzinfo=UTC),
        )  # fmt: skip
    assert sorted(run_daily(rt.db, CONFIG, TODAY).reminded) == ["prov-education", "ts-hrss"]
    assert run_daily(rt.db, CONFIG, TODAY + timedelta(days=1)).reminded == []
    Worker(rt.db, {"lines.reminder": handle_line_reminder}).drain()
    subjects = {}
    for message in messages:
        subject = str(make_header(decode_header(message["Subject"])))
        payload = message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        subjects[subject.split("：")[0]] = (subject, message["To"], payload.decode("utf-8"))
    edu_subject, edu_to, edu_body = subjects["省教育厅"]
    assert "按当前进度无法在期限前完成" in edu_subject and "剩余 1 条专线" in edu_subject
    assert set(edu_to.split(", ")) == {"zhangwei@gov.example", "lina@gov.example"}
    assert "无进度" in edu_body and "EDU-1" not in edu_body  # its contract ends in 2022: not listed
    ts_subject, ts_to, ts_body = next(v for k, v in subjects.items() if k != "省教育厅")
    assert "1 条合同 90 天内到期" in ts_subject and ts_to == "wangfang@gov.example"
    assert "TS-2" in ts_body and "/portal/lines/programme" in ts_body
    assert run_daily(rt.db, CONFIG, TODAY + timedelta(days=7)).reminded != []
    with rt.db.unit_of_work() as uow:
        assert len(uow.session.scalars(select(WorkItem).where(WorkItem.kind == "lines.reminder")).all()) == 4


def test_programme_metrics(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        make_line(s, "M-1", monthly_rent=Decimal("1000.00"), contract_end=tracking.today() + timedelta(days=20))
        make_line(s, "M-2", state=LineState.RETIRED, target=LineTarget.RETIRE, cut_over_at=utcnow())
        staff = Actor("zhangwei", Role.DEPT_STAFF, department_id=department(s, "prov-education").id)
        finance.create_rental(
            s,
            staff,
            finance.RentalInput(
                kind="renewal",
                line_code="M-1",
                monthly_rent="900",
                contract_end=(tracking.today() + timedelta(days=400)).isoformat(),
            ),
            submit=True,
            entry_point="test",
        )
    text = render(seeded.db, seeded.settings).decode()
    # the real deadline (2020) has passed: what remains is overdue
    assert 'cloudmgr_network_programme_remaining_lines{department="prov-education",status="overdue"} 1.0' in text
    assert 'cloudmgr_network_programme_remaining_rent_yuan{department="prov-education"} 1000.0' in text
    assert 'cloudmgr_network_programme_departments{status="overdue"} 1.0' in text
    assert "cloudmgr_network_retired_rent_yuan 3200.0" in text
    assert 'cloudmgr_network_contracts_ending{action="cut_over_extranet"} 0.0' in text
    assert sum(f'cloudmgr_network_contracts_ending{{action="{a}"}} 1.0' in text for a in tracking.ACTIONS) == 1
    assert "cloudmgr_network_rentals_waiting 1.0" in text
    assert "cloudmgr_network_rental_oldest_waiting_seconds " in text
