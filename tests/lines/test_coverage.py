"""The extranet coverage table: the 11 cities always, counties and townships from the lines' ends."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cloudmgr.cli import main
from cloudmgr.lines.coverage import CITIES, Place, extranet_coverage
from cloudmgr.lines.models import LineState, LineTarget
from cloudmgr.runtime import Runtime
from tests.lines.helpers import make_line


def test_coverage(seeded: Runtime, tmp_path: Path) -> None:
    with seeded.db.unit_of_work() as uow:
        s = uow.session
        make_line(s, "L-1", b_city="唐山市", b_county="迁安市", b_township="杨店子镇",
                  state=LineState.CUT_OVER, target=LineTarget.EXTRANET)  # fmt: skip
        make_line(s, "L-2", b_city="唐山市", b_county="遵化市", b_township="华明路街道")
        make_line(s, "L-3", b_city="保定市", state=LineState.PLANNED, target=LineTarget.EXTRANET)
        make_line(s, "L-4", b_city="邯郸市", state=LineState.CUT_OVER, target=LineTarget.INTERNET)
        rows = {row.place: row for row in extranet_coverage(s)}
    assert {Place(city) for city in CITIES} <= rows.keys()
    assert rows[Place("唐山市")].reached and rows[Place("唐山市")].lines == 2
    assert rows[Place("唐山市", "迁安市")].reached
    assert rows[Place("唐山市", "迁安市", "杨店子镇")].reached
    assert not rows[Place("唐山市", "遵化市")].reached
    assert not rows[Place("唐山市", "遵化市", "华明路街道")].reached
    assert not rows[Place("保定市")].reached  # planned, not cut over
    assert not rows[Place("邯郸市")].reached  # the internet is not the extranet
    assert rows[Place("石家庄市")].reached  # every line's A end here
    assert not rows[Place("衡水市")].reached and rows[Place("衡水市")].lines == 0
    env = {"CLOUDMGR_DATABASE_URL": seeded.settings.database_url, "CLOUDMGR_INSTANCE_PATH": str(tmp_path)}
    result = CliRunner().invoke(main, ["lines", "coverage", "--city", "唐山市"], env=env)
    assert result.exit_code == 0, result.output
    assert "杨店子镇" in result.output and " reached" in result.output and "3/5" in result.output
