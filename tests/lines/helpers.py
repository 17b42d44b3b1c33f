"""Small builders for line tests (called inside a unit of work)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.lines.models import Carrier, LineState, LineType, NetworkLine
from tests.inventory.helpers import department


def make_line(
    session: Session,
    code: str,
    *,
    dept_key: str = "prov-education",
    systems: list[LegacySystem] | None = None,
    rooms: list[ServerRoom] | None = None,
    **overrides: Any,
) -> NetworkLine:
    values: dict[str, Any] = {
        "code": code,
        "department": department(session, dept_key),
        "carrier": Carrier.TELECOM,
        "line_type": LineType.MSTP,
        "bandwidth_mbps": 100,
        "a_site": "省教育厅机房",
        "a_city": "石家庄市",
        "b_site": "省政务云",
        "b_city": "石家庄市",
        "monthly_rent": Decimal("3200.00"),
        "contract_start": date(2024, 1, 1),
        "contract_end": date(2027, 12, 31),
        "state": LineState.IN_SERVICE,
    }
    values.update(overrides)
    line = NetworkLine(**values)
    line.systems = systems or []
    line.rooms = rooms or []
    session.add(line)
    session.flush()
    return line
