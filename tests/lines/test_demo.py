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
    assert result.exit_code == 0 and "涉密" in result.output
