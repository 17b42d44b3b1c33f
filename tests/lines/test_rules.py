"""The target rule and the classified rule for lines, through the service and the CLI: every refusal audited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cli import main
from cloudmgr.db import utcnow
from cloudmgr.errors import PermissionDenied
from cloudmgr.inventory.models import SystemState
from cloudmgr.lines.coverage import CITIES
from cloudmgr.lines.errors import ClassifiedLineRefused, InvalidLineTarget
from cloudmgr.lines.models import LineState, LineTarget, NetworkLine
from cloudmgr.lines.rules import effective_target, proposed_target
from cloudmgr.lines.services import (
    PLANNED_ACTION,
    RECORDED_ACTION,
    REFUSED_ACTION,
    LineFilter,
    export_csv,
    list_lines,
    plan_line,
    record_cutover,
)
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime
from tests.inventory.helpers import department, make_system
from tests.lines.helpers import make_line

OPERATOR = Actor(username="op", role=Role.OPERATOR)


def refusals(runtime: Runtime) -> list[AuditEvent]:
    with runtime.db.unit_of_work() as uow:
        return list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == REFUSED_ACTION)))


def test_target_by_rule(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        extranet_sys = make_system(s, "ext01")
        web_sys = make_system(s, "web01", network="internet")
        secret = make_system(s, "secret01", classification="classified", network="intranet", state="intranet")
        plain = make_line(s, "L-EXT", systems=[extranet_sys])
        public = make_line(s, "L-PUB", systems=[web_sys])
        declared_public = make_line(s, "L-PUB2", public_facing=True)
        classified = make_line(s, "L-SEC", systems=[extranet_sys, secret])
        declared = make_line(s, "L-DECL", declared_classified=True, public_facing=True)
        assert proposed_target(plain).target == LineTarget.EXTRANET
        assert proposed_target(public).target == LineTarget.INTERNET
        assert proposed_target(declared_public).target == LineTarget.INTERNET
        assert proposed_target(classified).target == LineTarget.INTRANET
        assert proposed_target(classified).classified
        # declared classified wins over public-facing: never the internet
        assert proposed_target(declared).target == LineTarget.INTRANET


def test_a_line_whose_systems_moved_and_rooms_closed_is_proposed_for_retirement(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        a = make_system(s, "a01")
        b = make_system(s, "b01")
        line = make_line(s, "L-RET", systems=[a, b])
        empty = make_line(s, "L-EMPTY")
        assert proposed_target(line).target == LineTarget.EXTRANET
        a.state = SystemState.ON_CLOUD
        assert proposed_target(line).target == LineTarget.EXTRANET  # b still in the room
        b.state = SystemState.DECOMMISSIONED
        assert proposed_target(line).target == LineTarget.EXTRANET  # the room is still open
        a.server_room.closed_at = utcnow()
        assert proposed_target(line).target == LineTarget.RETIRE
        # a line that carries nothing known is not proposed for retirement by the rule
        assert proposed_target(empty).target == LineTarget.EXTRANET


def test_a_linked_open_room_keeps_the_line(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        a = make_system(s, "a01", state="on_cloud")
        other = make_system(s, "h01", dept_key="prov-hrss")
        a.server_room.closed_at = utcnow()
        line = make_line(s, "L-ROOM", systems=[a], rooms=[a.server_room])
        assert proposed_target(line).target == LineTarget.RETIRE
        line.rooms = [a.server_room, other.server_room]
        assert proposed_target(line).target == LineTarget.EXTRANET


@pytest.mark.parametrize("target", [LineTarget.EXTRANET, LineTarget.INTERNET, "extranet", "互联网"])
def test_planning_a_classified_line_off_the_intranet_is_refused_and_audited(seeded: Runtime, target: object) -> None:
    with seeded.db.unit_of_work() as uow:
        secret = make_system(uow.session, "secret01", classification="classified", network="intranet", state="intranet")
        make_line(uow.session, "L-SEC", systems=[secret])
        make_line(uow.session, "L-DECL", declared_classified=True)
    for code in ("L-SEC", "L-DECL"):
        with pytest.raises(ClassifiedLineRefused), seeded.db.unit_of_work() as uow:
            plan_line(uow.session, code, target, actor=OPERATOR, entry_point="test")  # type: ignore[arg-type]
    events = refusals(seeded)
    assert [e.detail["code"] for e in events] == ["L-SEC", "L-DECL"]
    assert all(e.actor == "op" and e.detail["entry_point"] == "test" for e in events)
    with seeded.db.unit_of_work() as uow:
        assert all(line.target is None for line in uow.session.scalars(select(NetworkLine)))


def test_a_system_classified_later_makes_the_line_refuse_the_extranet(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        system = make_system(uow.session, "x01")
        make_line(uow.session, "L-X", systems=[system])
    with seeded.db.unit_of_work() as uow:
        plan_line(uow.session, "L-X", LineTarget.EXTRANET, actor=OPERATOR, entry_point="test")
    with seeded.db.unit_of_work() as uow:
        line = uow.session.scalars(select(NetworkLine)).one()
        line.systems[0].classification = "classified"
        line.systems[0].network = "intranet"
    with pytest.raises(ClassifiedLineRefused), seeded.db.unit_of_work() as uow:
        plan_line(uow.session, "L-X", LineTarget.INTERNET, actor=OPERATOR, entry_point="test")
    with seeded.db.unit_of_work() as uow:
        line = plan_line(uow.session, "L-X", LineTarget.INTRANET, actor=OPERATOR, entry_point="test")
        assert line.state == LineState.PLANNED and line.target == LineTarget.INTRANET


def test_planning_allowed_targets(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        secret = make_system(uow.session, "secret01", classification="classified", network="intranet", state="intranet")
        make_line(uow.session, "L-SEC", systems=[secret])
        make_line(uow.session, "L-EXT")
    with seeded.db.unit_of_work() as uow:
        line = plan_line(uow.session, "L-SEC", "intranet", actor=OPERATOR, entry_point="test")
        assert (line.target, line.state, line.planned_by) == (LineTarget.INTRANET, LineState.PLANNED, "op")
        plan_line(uow.session, "L-SEC", "retire", actor=OPERATOR, entry_point="test")
        plan_line(uow.session, "L-EXT", "extranet", actor=OPERATOR, entry_point="test")
    # the intranet is for classified business only (refused, not a classified refusal)
    with pytest.raises(InvalidLineTarget), seeded.db.unit_of_work() as uow:
        plan_line(uow.session, "L-EXT", "intranet", actor=OPERATOR, entry_point="test")
    with pytest.raises(InvalidLineTarget), seeded.db.unit_of_work() as uow:
        plan_line(uow.session, "L-EXT", "dmz", actor=OPERATOR, entry_point="test")
    assert refusals(seeded) == []
    with seeded.db.unit_of_work() as uow:
        dept = department(uow.session)
        staff = Actor(username="zhangwei", role=Role.DEPT_STAFF, department_id=dept.id)
        with pytest.raises(PermissionDenied):
            plan_line(uow.session, "L-EXT", "internet", actor=staff, entry_point="test")
        assert [line.code for line in list_lines(uow.session, actor=staff)] == ["L-EXT", "L-SEC"]
        hrss = Actor(username="wangfang", role=Role.DEPT_STAFF, department_id=department(uow.session, "ts-hrss").id)
        assert list_lines(uow.session, actor=hrss) == []
        assert [line.code for line in list_lines(uow.session, LineFilter(target=LineTarget.RETIRE))] == ["L-SEC"]
        assert effective_target(uow.session.scalars(select(NetworkLine).where(NetworkLine.code == "L-EXT")).one()) == (
            LineTarget.EXTRANET
        )


def test_export_neutralises_formulas(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        line = make_line(uow.session, "L-F", a_site='=HYPERLINK("http://x")')
        text = export_csv([line])
    assert "'=HYPERLINK" in text
    assert "中国电信" in text


def cli_env(runtime: Runtime, tmp_path: Path) -> dict[str, str]:
    return {"CLOUDMGR_DATABASE_URL": runtime.settings.database_url, "CLOUDMGR_INSTANCE_PATH": str(tmp_path)}


def test_cli_plan_refuses_a_classified_line_and_audits_it(seeded: Runtime, tmp_path: Path) -> None:
    with seeded.db.unit_of_work() as uow:
        secret = make_system(uow.session, "secret01", classification="classified", network="intranet", state="intranet")
        make_line(uow.session, "L-SEC", systems=[secret])
        make_line(uow.session, "L-EXT")
    runner = CliRunner()
    env = cli_env(seeded, tmp_path)
    result = runner.invoke(main, ["lines", "plan", "L-SEC", "--target", "extranet"], env=env)
    assert result.exit_code != 0
    assert "carries classified business" in result.output  # the CLI reads the domain's English
    events = refusals(seeded)
    assert len(events) == 1 and events[0].detail["entry_point"] == "cli" and events[0].actor.startswith("cli:")
    result = runner.invoke(main, ["lines", "plan", "L-SEC", "--target", "internet"], env=env)
    assert result.exit_code != 0 and len(refusals(seeded)) == 2
    result = runner.invoke(main, ["lines", "plan", "L-SEC", "--target", "intranet"], env=env)
    assert result.exit_code == 0, result.output
    assert "cut-over onto E-government intranet planned" in result.output
    result = runner.invoke(main, ["lines", "plan", "NOPE", "--target", "intranet"], env=env)
    assert result.exit_code != 0 and "NOPE" in result.output
    result = runner.invoke(main, ["lines", "plan", "L-EXT", "--target", "moon"], env=env)
    assert result.exit_code != 0 and "moon" in result.output
    result = runner.invoke(main, ["lines", "list", "--target", "extranet"], env=env)
    assert result.exit_code == 0, result.output
    assert "L-EXT" in result.output and "L-SEC" not in result.output
    result = runner.invoke(main, ["lines", "list", "--department", "nope"], env=env)
    assert result.exit_code != 0
    result = runner.invoke(main, ["lines", "list", "--target", "sky"], env=env)
    assert result.exit_code != 0


def test_recording_a_cutover_and_a_retirement(seeded: Runtime, tmp_path: Path) -> None:
    with seeded.db.unit_of_work() as uow:
        system = make_system(uow.session, "x01")
        make_line(uow.session, "L-X", systems=[system])
        make_line(uow.session, "L-R")
        make_line(uow.session, "L-N")
    with seeded.db.unit_of_work() as uow:
        plan_line(uow.session, "L-X", "extranet", actor=OPERATOR, entry_point="test")
        plan_line(uow.session, "L-R", "retire", actor=OPERATOR, entry_point="test")
    runner = CliRunner()
    env = cli_env(seeded, tmp_path)
    result = runner.invoke(main, ["lines", "record", "L-R"], env=env)
    assert result.exit_code == 0 and "Line retired" in result.output, result.output
    result = runner.invoke(main, ["lines", "record", "L-N"], env=env)
    assert result.exit_code != 0 and "has no cut-over planned" in result.output
    # classified since it was planned onto the extranet: the cut-over is refused and audited
    with seeded.db.unit_of_work() as uow:
        uow.session.scalars(select(NetworkLine).where(NetworkLine.code == "L-X")).one().declared_classified = True
    result = runner.invoke(main, ["lines", "record", "L-X"], env=env)
    assert result.exit_code != 0 and "carries classified business" in result.output
    assert [e.detail["entry_point"] for e in refusals(seeded)] == ["cli"]
    with seeded.db.unit_of_work() as uow:
        states = {line.code: line.state for line in uow.session.scalars(select(NetworkLine))}
    assert states == {"L-X": LineState.PLANNED, "L-R": LineState.RETIRED, "L-N": LineState.IN_SERVICE}
    with seeded.db.unit_of_work() as uow:
        uow.session.scalars(select(NetworkLine).where(NetworkLine.code == "L-X")).one().declared_classified = False
        line = record_cutover(uow.session, "L-X", actor=OPERATOR, entry_point="test")
        assert line.state == LineState.CUT_OVER
    with pytest.raises(InvalidLineTarget), seeded.db.unit_of_work() as uow:
        plan_line(uow.session, "L-X", "internet", actor=OPERATOR, entry_point="test")


def test_a_line_classified_after_its_cutover_is_listed_as_a_conflict(seeded: Runtime, tmp_path: Path) -> None:
    from cloudmgr.lines.services import classified_conflicts

    with seeded.db.unit_of_work() as uow:
        system = make_system(uow.session, "x01")
        make_line(uow.session, "L-X", systems=[system])
        plan_line(uow.session, "L-X", "extranet", actor=OPERATOR, entry_point="test")
        record_cutover(uow.session, "L-X", actor=OPERATOR, entry_point="test")
    env = cli_env(seeded, tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["lines", "conflicts"], env=env)
    assert result.exit_code == 0 and "no line breaks the classified rule" in result.output
    with seeded.db.unit_of_work() as uow:
        line = uow.session.scalars(select(NetworkLine)).one()
        line.systems[0].classification = "classified"
        line.systems[0].network = "intranet"
    with seeded.db.unit_of_work() as uow:
        assert [line.code for line in classified_conflicts(uow.session)] == ["L-X"]
    result = runner.invoke(main, ["lines", "conflicts"], env=env)
    assert result.exit_code != 0 and "x01" in result.output
    result = runner.invoke(main, ["lines", "list"], env=env)
    assert "breaks the classified rule" in result.output
    with seeded.db.unit_of_work() as uow:
        line = plan_line(uow.session, "L-X", "intranet", actor=OPERATOR, entry_point="test")
        assert (line.target, line.state) == (LineTarget.INTRANET, LineState.PLANNED)
        assert classified_conflicts(uow.session) == []
        record_cutover(uow.session, "L-X", actor=OPERATOR, entry_point="test")
    with pytest.raises(InvalidLineTarget), seeded.db.unit_of_work() as uow:
        plan_line(uow.session, "L-X", "retire", actor=OPERATOR, entry_point="test")


def test_a_department_sees_only_its_own_lines(seeded: Runtime) -> None:
    from cloudmgr.lines.errors import LineNotFound
    from cloudmgr.lines.services import get_line

    with seeded.db.unit_of_work() as uow:
        make_line(uow.session, "L-EDU")
        hrss = Actor(username="wangfang", role=Role.DEPT_STAFF, department_id=department(uow.session, "ts-hrss").id)
        edu = Actor(username="zhangwei", role=Role.DEPT_STAFF, department_id=department(uow.session).id)
        assert get_line(uow.session, "L-EDU", actor=edu).code == "L-EDU"
        with pytest.raises(LineNotFound):
            get_line(uow.session, "L-EDU", actor=hrss)
        with pytest.raises(PermissionDenied):
            plan_line(uow.session, "L-EDU", "extranet", actor=hrss, entry_point="test")


def test_a_cutover_batch_per_city_and_county(seeded: Runtime, tmp_path: Path) -> None:
    with seeded.db.unit_of_work() as uow:
        secret = make_system(uow.session, "secret01", classification="classified", network="intranet", state="intranet")
        make_line(uow.session, "TS-1", b_city="唐山市", b_county="迁安市", systems=[secret])
        make_line(uow.session, "TS-2", b_city="唐山市", b_county="迁安市", public_facing=True)
        make_line(uow.session, "TS-3", b_city="唐山市", b_county="遵化市")
        make_line(uow.session, "TS-4", b_city="唐山市", b_county="迁安市")
        make_line(uow.session, "BD-1", b_city="保定市")
        plan_line(uow.session, "TS-4", "retire", actor=OPERATOR, entry_point="test")
    env = cli_env(seeded, tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["lines", "batch", "--city", "唐山市", "--county", "迁安市", "--date", "2027-03-01"],
                           env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 lines planned" in result.output and "skipped TS-4" in result.output
    with seeded.db.unit_of_work() as uow:
        lines = {line.code: line for line in uow.session.scalars(select(NetworkLine))}
        assert (lines["TS-1"].target, lines["TS-1"].state) == (LineTarget.INTRANET, LineState.PLANNED)
        assert lines["TS-2"].target == LineTarget.INTERNET
        assert str(lines["TS-1"].cutover_date) == "2027-03-01"
        assert lines["TS-3"].target is None and lines["BD-1"].target is None
        assert lines["TS-4"].cutover_date is None
        line = record_cutover(uow.session, "TS-1", actor=OPERATOR, entry_point="test")
        assert line.cut_over_at is not None
    assert refusals(seeded) == []
    result = runner.invoke(main, ["lines", "batch", "--city", "火星市", "--date", "2027-03-01"], env=env)
    assert result.exit_code != 0 and "There are no lines in 火星市" in result.output
    result = runner.invoke(main, ["lines", "batch", "--city", "唐山市", "--date", "soon"], env=env)
    assert result.exit_code != 0
    result = runner.invoke(main, ["lines", "plan", "BD-1", "--target", "extranet", "--date", "2027-04-01"], env=env)
    assert result.exit_code == 0 and "2027-04-01" in result.output


CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+")


def test_the_cli_says_everything_in_english_and_the_audit_keeps_messages(seeded: Runtime, tmp_path: Path) -> None:
    """``cloudmgr lines …`` speaks English like the rest of the CLI: the only Chinese in its output is
    data (place names, as stored).  The audit reasons it leaves are English with their message kept,
    so the console says them in the reader's language."""
    with seeded.db.unit_of_work() as uow:
        secret = make_system(uow.session, "secret01", classification="classified", network="intranet", state="intranet")
        make_line(uow.session, "EN-1", b_county="迁安市", systems=[secret])
        make_line(uow.session, "EN-2", public_facing=True, contract_end=utcnow().date())
        make_line(uow.session, "EN-3", state=LineState.PLANNED, target=LineTarget.INTERNET, systems=[secret])
        places = set(CITIES) | {
            place
            for line in uow.session.scalars(select(NetworkLine))
            for place in (line.a_city, line.a_county, line.b_city, line.b_county)
            if place
        }
    env, runner = cli_env(seeded, tmp_path), CliRunner()
    outputs = []
    for args in (
        ["list"], ["plan", "EN-2", "--target", "internet", "--date", "2027-05-01"], ["record", "EN-2"],
        ["conflicts"], ["contracts-ending"], ["savings"], ["coverage"], ["burndown"],
        ["batch", "--city", "石家庄市", "--date", "2027-06-01"],
    ):  # fmt: skip
        result = runner.invoke(main, ["lines", *args], env=env)
        outputs.append(result.output)
        text = result.output
        for place in sorted(places, key=len, reverse=True):
            text = text.replace(place, " ")
        chinese = CJK.findall(text)
        assert chinese == [], (args, chinese, result.output)
    assert "line EN-2: cut-over onto Internet planned for 2027-05-01" in outputs[1]
    assert "line EN-2: Cut over onto its target (Internet)" in outputs[2]
    assert "breaks the classified rule" in outputs[0] and "EN-3" in outputs[3]
    with seeded.db.unit_of_work() as uow:
        planned, recorded = (
            uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).first()
            for action in (PLANNED_ACTION, RECORDED_ACTION)
        )
    assert planned is not None and planned.reason == "planned onto Internet (cli)"
    assert planned.detail["reason_message"] == {
        "msgid": "planned onto %(target)s (%(entry_point)s)",
        "params": {"target": {"msgid": "Internet", "params": {}}, "entry_point": "cli"},
    }
    assert recorded is not None and recorded.reason == "Cut over onto its target (cli)"
    assert recorded.detail["reason_message"]["msgid"] == "%(state)s (%(entry_point)s)"
