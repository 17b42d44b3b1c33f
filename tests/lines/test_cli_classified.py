"""The classified rule on the command line (issue 19): planning or recording a line that carries a
classified system onto the extranet or the internet exits non-zero, is audited, and changes nothing."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cli import main
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.lines.models import LineState, LineTarget, NetworkLine
from cloudmgr.lines.services import REFUSED_ACTION
from cloudmgr.runtime import Runtime
from tests.inventory.helpers import make_system
from tests.lines.helpers import make_line


def _env(runtime: Runtime, tmp_path: Path) -> dict[str, str]:
    return {"CLOUDMGR_DATABASE_URL": runtime.settings.database_url, "CLOUDMGR_INSTANCE_PATH": str(tmp_path)}


def _line(runtime: Runtime, code: str) -> tuple[LineState, LineTarget | None, str | None]:
    with runtime.db.unit_of_work() as uow:
        line = uow.session.scalars(select(NetworkLine).where(NetworkLine.code == code)).one()
        return line.state, line.target, line.cutover_date.isoformat() if line.cutover_date else None


def _refusals(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.db.unit_of_work() as uow:
        events = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == REFUSED_ACTION).order_by(AuditEvent.id)
        )
        return [(e.detail["target"], e.detail["entry_point"]) for e in events]


def test_cli_plan_and_record_refuse_a_classified_line_audited_and_unchanged(seeded: Runtime, tmp_path: Path) -> None:
    with seeded.db.unit_of_work() as uow:
        secret = make_system(uow.session, "secret01", classification="classified", network="intranet", state="intranet")
        make_line(uow.session, "L-SEC", systems=[secret])
        later = make_system(uow.session, "later01")
        make_line(uow.session, "L-LATER", systems=[later])
    runner = CliRunner()
    env = _env(seeded, tmp_path)
    for target in ("extranet", "internet"):
        result = runner.invoke(main, ["lines", "plan", "L-SEC", "--target", target, "--date", "2027-01-01"], env=env)
        assert result.exit_code != 0 and "carries classified business" in result.output
    assert _line(seeded, "L-SEC") == (LineState.IN_SERVICE, None, None)
    assert _refusals(seeded) == [("extranet", "cli"), ("internet", "cli")]

    # planned onto the extranet, then its system is classified: recording the cut-over is refused
    result = runner.invoke(main, ["lines", "plan", "L-LATER", "--target", "extranet", "--date", "2027-02-01"], env=env)
    assert result.exit_code == 0, result.output
    with seeded.db.unit_of_work() as uow:
        system = uow.session.scalars(select(LegacySystem).where(LegacySystem.hostname == "later01")).one()
        system.classification = "classified"
    result = runner.invoke(main, ["lines", "record", "L-LATER"], env=env)
    assert result.exit_code != 0 and "carries classified business" in result.output
    assert _line(seeded, "L-LATER") == (LineState.PLANNED, LineTarget.EXTRANET, "2027-02-01")
    assert _refusals(seeded)[-1] == ("extranet", "cli")
