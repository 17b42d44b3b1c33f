"""The programme against its deadlines, read-only for finance (/finance/programme)."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from web.common.programme import render_programme
from web.finance.blueprint import bp


@bp.get("/programme")
def finance_programme() -> ResponseReturnValue:
    return render_programme(audience="finance")
