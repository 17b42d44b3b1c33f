"""/metrics has the dedicated lines: cloudmgr_network_lines, _monthly_rent_yuan, _classified_conflicts."""

from __future__ import annotations

from sqlalchemy import select

from cloudmgr.lines.models import LineState, LineTarget, NetworkLine
from cloudmgr.metrics_exposition import render
from cloudmgr.runtime import Runtime
from tests.inventory.helpers import make_system
from tests.lines.helpers import make_line


def test_line_metrics(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        system = make_system(uow.session, "x01")
        make_line(uow.session, "L-1", systems=[system])
        make_line(uow.session, "L-2", state=LineState.CUT_OVER, target=LineTarget.EXTRANET, public_facing=True)
    text = render(seeded.db, seeded.settings).decode()
    assert 'cloudmgr_network_lines{department="prov-education",state="in_service",target="extranet"} 1.0' in text
    assert 'cloudmgr_network_lines{department="prov-education",state="cut_over",target="extranet"} 1.0' in text
    assert 'cloudmgr_network_monthly_rent_yuan{department="prov-education",state="in_service"} 3200.0' in text
    assert "cloudmgr_network_classified_conflicts 0.0" in text
    with seeded.db.unit_of_work() as uow:
        line = uow.session.scalars(select(NetworkLine).where(NetworkLine.code == "L-2")).one()
        line.declared_classified = True
    assert "cloudmgr_network_classified_conflicts 1.0" in render(seeded.db, seeded.settings).decode()
