"""The demo lines: a few dozen, mid-way through the programme, the classified rule held, idempotent."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from cloudmgr.cli import main
from cloudmgr.lines.models import LineState, LineTarget, NetworkLine
from cloudmgr.lines.rules import allowed_targets, carries_classified
from cloudmgr.runtime import Runtime

REPO = Path(__file__).resolve().parents[2]


def test_demo_lines_after_the_demo_inventory(seeded: Runtime, tmp_path: Path) -> None:
    env = {"CLOUDMGR_DATABASE_URL": seeded.settings.database_url, "CLOUDMGR_INSTANCE_PATH": str(tmp_path)}
    runner = CliRunner()
    result = runner.invoke(main, ["inventory", "import", str(REPO / "inventory" / "legacy.yml")], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["lines", "seed-demo"], env=env)
    assert result.exit_code == 0, result.output
    with seeded.db.unit_of_work() as uow:
        lines = list(uow.session.scalars(select(NetworkLine)))
        assert 30 <= len(lines) <= 60
        states = {line.state for line in lines}
        assert states == {LineState.IN_SERVICE, LineState.PLANNED, LineState.CUT_OVER, LineState.RETIRED}
        assert all(line.systems for line in lines)
        assert all(line.cutover_date for line in lines if line.target is not None)
        classified = [line for line in lines if carries_classified(line)]
        assert len(classified) >= 4
        for line in lines:
            if line.target is not None:
                assert line.target in allowed_targets(line)
        assert {line.target for line in classified} <= {None, LineTarget.INTRANET, LineTarget.RETIRE}
        assert len({line.department_id for line in lines}) >= 10
    result = runner.invoke(main, ["lines", "seed-demo"], env=env)
    assert result.exit_code == 0 and "none new" in result.output
    result = runner.invoke(main, ["lines", "list", "--target", "intranet"], env=env)
    assert result.exit_code == 0 and "classified" in result.output


def test_demo_shows_the_programme_mid_way_for_finance(seeded: Runtime, tmp_path: Path) -> None:
    """Lines cut over over the past months, contracts ending soon, renewals waiting for finance (one flagged:
    the extranet reaches both its ends); the CLI's programme commands read them."""
    from cloudmgr.lines import finance, tracking
    from cloudmgr.lines.finance_models import RentalState
    from cloudmgr.organisation.actor import Actor
    from cloudmgr.organisation.models import Role

    env = {"CLOUDMGR_DATABASE_URL": seeded.settings.database_url, "CLOUDMGR_INSTANCE_PATH": str(tmp_path)}
    runner = CliRunner()
    assert runner.invoke(main, ["inventory", "import", str(REPO / "inventory" / "legacy.yml")], env=env).exit_code == 0
    assert runner.invoke(main, ["lines", "seed-demo"], env=env).exit_code == 0
    today = tracking.today()
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        done = [tracking.done_on(line) for line in s.scalars(select(NetworkLine))]
        months = {d.replace(day=1) for d in done if d is not None}
        assert len(months) >= 5 and all(d < today for d in done if d is not None)
        ending = tracking.contracts_ending(s, today)
        assert len(ending) >= 5 and all(0 <= r.days_left <= 90 for r in ending)
        assert {r.action for r in ending} >= {"renew", "cut_over_extranet"}
        queue = finance.review_queue(s, Actor("finance", Role.FINANCE))
        assert [(r.rental.line.code if r.rental.line else "", r.flagged) for r in queue] == [
            ("JYT-MSTP-005", True),
            ("TS-MSTP-801", False),
        ]
        assert all(r.rental.state == RentalState.SUBMITTED for r in queue)
        assert tracking.savings(s).monthly_rent > 0
    assert runner.invoke(main, ["lines", "seed-demo"], env=env).exit_code == 0  # no second renewal
    with seeded.db.unit_of_work() as uow:
        assert len(finance.review_queue(uow.session, Actor("finance", Role.FINANCE))) == 2
    result = runner.invoke(main, ["lines", "contracts-ending"], env=env)
    assert result.exit_code == 0 and "TS-MSTP-801" in result.output and "renew" in result.output
    result = runner.invoke(main, ["lines", "savings", "--by", "city"], env=env)
    assert result.exit_code == 0 and "in all" in result.output and "monthly rent saved" in result.output
    result = runner.invoke(main, ["lines", "burndown"], env=env)
    assert result.exit_code == 0 and "deadline 2020-12-31" in result.output and "overdue" in result.output
    result = runner.invoke(main, ["lines", "burndown", "--department", "nope"], env=env)
    assert result.exit_code != 0 and "there is no department" in result.output
