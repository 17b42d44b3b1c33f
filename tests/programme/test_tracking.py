"""The programme's figures on a fixed day, the daily job (snapshot, reminders) and room closing."""

from __future__ import annotations

import email
from collections.abc import Iterator
from datetime import date, timedelta
from email.header import decode_header, make_header
from typing import Any

import pytest
from sqlalchemy import select

from cloudmgr.config import REPO_ROOT
from cloudmgr.errors import NotFound, PermissionDenied
from cloudmgr.inventory.models import ServerRoom
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role, User
from cloudmgr.programme import services as waves
from cloudmgr.programme import tracking
from cloudmgr.programme.config import read_programme_file
from cloudmgr.programme.errors import ProgrammeFileInvalid, RoomNotEmpty
from cloudmgr.programme.jobs import handle_programme_reminder, run_daily
from cloudmgr.programme.models import ProgrammeSnapshot
from cloudmgr.runtime import set_runtime
from cloudmgr.workqueue.models import WorkItem
from cloudmgr.workqueue.services import Worker
from tests.programme.conftest import TODAY, Env, Inventory, build_scenario

CONFIG = read_programme_file(REPO_ROOT / "etc" / "programme.yaml")
AS_OPERATOR = Actor(username="operator", role=Role.OPERATOR)


def _figures(journey: Env, when: date = TODAY) -> tracking.Figures:
    with journey.rt.db.unit_of_work() as uow:
        return tracking.compute(uow.session, CONFIG, when)


def test_progress_overdue_and_at_risk_on_a_fixed_day(journey: Env, inventory: Inventory) -> None:
    ids = build_scenario(inventory)
    f = _figures(journey)
    assert (f.in_scope, f.done, f.remaining, f.out_of_scope) == (6, 3, 3, 2)
    assert f.pct == 50 and f.days_past_deadline == (TODAY - date(2018, 12, 31)).days
    assert [(x.hostname, x.reason, x.days) for x in f.overdue] == [("edu-old", "overdue", 2889)]
    assert [(x.hostname, x.reason, x.days) for x in f.at_risk] == [("edu-soon", "not_in_wave", 48)]
    rows = {r.key: (r.in_scope, r.done, r.overdue, r.at_risk) for r in f.departments}
    assert rows == {"prov-education": (3, 1, 1, 1), "ts-hrss": (2, 1, 0, 0), "sjz-zhengding-gov": (1, 1, 0, 0)}
    assert [(r.key, r.in_scope, r.done) for r in f.cities] == [
        ("province", 3, 1),
        ("shijiazhuang", 1, 1),
        ("tangshan", 2, 1),
    ]
    assert [(r.key, r.pct) for r in f.counties] == [("shijiazhuang/zhengding", 100)]
    assert f.by_state["legacy"] == 4 and f.by_state["intranet"] == 1

    # a wave whose window ends after the system's own deadline puts it at risk
    with journey.rt.db.unit_of_work() as uow:
        wave = waves.create_wave(
            uow.session,
            name="late",
            cloud_key="education",
            zone="extranet",
            window_start=date(2027, 1, 10),
            window_end=date(2027, 1, 20),
            actor=AS_OPERATOR,
        )
        waves.add_systems(uow.session, wave.id, [ids["edu-soon"]], actor=AS_OPERATOR)
    (risk,) = _figures(journey).at_risk
    assert (risk.hostname, risk.reason, risk.wave_id) == ("edu-soon", "wave_too_late", wave.id)
    # on the day after its due date it is overdue instead
    later = _figures(journey, date(2027, 1, 16))
    assert {x.hostname for x in later.overdue} == {"edu-old", "edu-soon"} and later.at_risk == []

    # one department only
    with journey.rt.db.unit_of_work() as uow:
        dept_id = uow.session.get_one(ServerRoom, inventory.room("zd-room", "sjz-zhengding-gov")).department_id
        own = tracking.compute(uow.session, CONFIG, TODAY, department_id=dept_id)
    assert (own.in_scope, own.done, [r.code for r in own.rooms]) == (1, 1, ["zd-room"])


def test_rooms_close_only_when_their_in_scope_systems_are_done(journey: Env, inventory: Inventory) -> None:
    build_scenario(inventory)
    full, done = inventory.room("edu-room-1", "prov-education"), inventory.room("zd-room", "sjz-zhengding-gov")
    with pytest.raises(RoomNotEmpty, match="edu-old"), journey.rt.db.unit_of_work() as uow:
        tracking.close_room(uow.session, full, actor=AS_OPERATOR)
    with journey.rt.db.unit_of_work() as uow:
        tracking.close_room(uow.session, done, actor=AS_OPERATOR)
    with pytest.raises(RoomNotEmpty, match="was closed"), journey.rt.db.unit_of_work() as uow:
        tracking.close_room(uow.session, done, actor=AS_OPERATOR)
    f = _figures(journey)
    assert (len(f.rooms), f.rooms_closed) == (4, 1)
    closed = next(r for r in f.rooms if r.code == "zd-room")
    assert closed.closed_by == "operator" and not closed.closable


def test_burndown_series_and_the_ideal_line(journey: Env, inventory: Inventory) -> None:
    build_scenario(inventory)
    with journey.rt.db.unit_of_work() as uow:
        for days, remaining in ((20, 5), (13, 4), (12, 4), (6, 4)):
            uow.session.add(ProgrammeSnapshot(taken_on=TODAY - timedelta(days=days), figures={"remaining": remaining}))
    f = _figures(journey)
    with journey.rt.db.unit_of_work() as uow:
        daily = tracking.burndown(uow.session, CONFIG, f)
        weekly = tracking.burndown(uow.session, CONFIG, f, period="week")
        dept = tracking.burndown(uow.session, CONFIG, f, department_key="prov-education")
    assert [n for _d, n in daily.points] == [5, 4, 4, 4, 3]
    assert daily.points[-1] == (TODAY, 3)
    assert [d.isoformat() for d, _n in weekly.points] == ["2026-11-08", "2026-11-15", "2026-11-22", "2026-11-28"]
    assert daily.ideal == [(date(2017, 1, 1), 6), (date(2018, 12, 31), 0)]
    assert daily.ideal_on(date(2018, 1, 1)) == 3 and daily.ideal_on(TODAY) == 0
    assert dept.points[-1] == (TODAY, 3) and [n for _d, n in dept.points[:-1]] == [0, 0, 0, 0]


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


def test_the_daily_job_snapshots_once_a_day_and_reminds_departments_behind(
    journey: Env, inventory: Inventory, smtp_sink: tuple[list[email.message.Message], int]
) -> None:
    messages, port = smtp_sink
    rt = journey.rt
    rt.settings = rt.settings.with_overrides(smtp_host="127.0.0.1", smtp_port=port)
    set_runtime(rt)
    with rt.db.unit_of_work() as uow:
        for user in uow.session.scalars(select(User)):
            user.email = f"{user.username}@gov.example"
    build_scenario(inventory)

    first = run_daily(rt.db, CONFIG, TODAY)
    assert first.created and first.reminders == ["prov-education"]
    again = run_daily(rt.db, CONFIG, TODAY)
    assert not again.created and again.reminders == []
    with rt.db.unit_of_work() as uow:
        snaps = uow.session.scalars(select(ProgrammeSnapshot)).all()
        assert [(s.taken_on, s.figures["remaining"], s.figures["overdue"]) for s in snaps] == [(TODAY, 3, 1)]
        assert snaps[0].figures["departments"]["prov-education"] == {"in_scope": 3, "remaining": 2}

    Worker(rt.db, {"programme.reminder": handle_programme_reminder}).drain()
    (message,) = messages
    subject = str(make_header(decode_header(message["Subject"])))
    assert subject.startswith("省教育厅：1 个系统逾期未上云，1 个有逾期风险 / ")
    assert set(message["To"].split(", ")) == {"zhangwei@gov.example", "lina@gov.example"}
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode("utf-8")
    assert "edu-old" in body and "edu-soon" in body and "/portal/programme" in body

    # a week later: reminded again (a new snapshot too); the day after: not
    assert run_daily(rt.db, CONFIG, TODAY + timedelta(days=1)).reminders == []
    assert run_daily(rt.db, CONFIG, TODAY + timedelta(days=7)).reminders == ["prov-education"]
    with rt.db.unit_of_work() as uow:
        assert len(uow.session.scalars(select(ProgrammeSnapshot)).all()) == 3
        assert len(uow.session.scalars(select(WorkItem).where(WorkItem.kind == "programme.reminder")).all()) == 2


def test_the_programme_file_is_validated(tmp_path: Any) -> None:
    bad = tmp_path / "programme.yaml"
    bad.write_text("start: 2019-01-01\ndeadlines:\n  cloud: {date: soon}\nat_risk_days: 0\n", encoding="utf-8")
    with pytest.raises(ProgrammeFileInvalid) as refused:
        read_programme_file(bad)
    for part in ("deadlines.cloud needs a date", "deadlines.rooms needs a date", "at_risk_days"):
        assert part in refused.value.message
    assert CONFIG.cloud.date == date(2018, 12, 31) and CONFIG.rooms.date == date(2020, 12, 31)


def test_attack_only_an_operator_closes_a_server_room(journey: Env, inventory: Inventory) -> None:
    """The service decides who closes a room (the page asks it for the button): finance and a
    department user are refused even for a room that could be closed, and it stays open."""
    build_scenario(inventory)
    done = inventory.room("zd-room", "sjz-zhengding-gov")
    with journey.rt.db.unit_of_work() as uow:
        department_id = uow.session.get_one(ServerRoom, done).department_id
    for actor in (Actor("finance", Role.FINANCE), Actor("zhangwei", Role.DEPT_HEAD, department_id=department_id)):
        assert not tracking.may_close_room(actor)
        with pytest.raises(PermissionDenied), journey.rt.db.unit_of_work() as uow:
            tracking.close_room(uow.session, done, actor=actor)
    assert tracking.may_close_room(AS_OPERATOR)
    assert next(r for r in _figures(journey).rooms if r.code == "zd-room").closed_by is None


def test_attack_a_department_user_sees_only_their_own_programme(journey: Env, inventory: Inventory) -> None:
    """Whatever department a department user names, the service gives them their own; a
    department user whose department is gone sees nothing (never the whole programme)."""
    build_scenario(inventory)
    with journey.rt.db.unit_of_work() as uow:
        own = uow.session.get_one(ServerRoom, inventory.room("zd-room", "sjz-zhengding-gov")).department_id
        staff = Actor("zhangwei", Role.DEPT_STAFF, department_id=own)
        seen = tracking.visible_department(uow.session, staff, "prov-education")
        assert seen is not None and (seen.id, seen.key) == (own, "sjz-zhengding-gov")
        assert tracking.visible_department(uow.session, AS_OPERATOR) is None
        asked = tracking.visible_department(uow.session, Actor("finance", Role.FINANCE), "prov-education")
        assert asked is not None and asked.key == "prov-education"
        with pytest.raises(NotFound):
            tracking.visible_department(uow.session, AS_OPERATOR, "atlantis")
        with pytest.raises(PermissionDenied):
            tracking.visible_department(uow.session, Actor("ghost", Role.DEPT_STAFF, department_id=-1))
