"""The network programme for operators (/ops/lines/programme): every department's and city's lines against
the deadline, the burndown of lines and rent, the at-risk departments and the contracts ending soon."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from web.common.lines_programme import render_lines_programme
from web.operations.blueprint import bp


@bp.get("/lines/programme")
def ops_lines_programme() -> ResponseReturnValue:
    return render_lines_programme(audience="ops")
