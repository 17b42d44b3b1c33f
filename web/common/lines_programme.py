"""What the network programme's pages share (operators /ops/lines/programme, finance
/finance/lines/programme, departments /portal/lines/programme) and finance's line rental pages: the
words in the reader's language, the inline SVG charts (burndown of lines and of monthly rent, savings per
year; classes only, no script) and the programme page itself.

The rules (the at-risk rule, what to do with a contract, the extranet flag) are the domain's
(:mod:`cloudmgr.lines.services`); here they are only shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from flask import render_template
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l

from cloudmgr.lines import services as lines
from cloudmgr.lines.finance_models import BlockBasis, RentalKind, RentalState
from web.common.lines import WORDS
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, runtime

STATUS_NAMES: Mapping[str, object] = {
    "on_track": _l("On track"),
    "at_risk": _l("At risk"),
    "overdue": _l("Past the deadline"),
    "done": _l("Done"),
}
STATUS_CLASSES: Mapping[str, str] = {
    "on_track": "state state-ok",
    "at_risk": "state state-warn",
    "overdue": "state state-bad",
    "done": "state state-ok",
}
ACTION_NAMES: Mapping[str, object] = {
    "renew": _l("Renew"),
    "cut_over_extranet": _l("Cut over to the e-government extranet"),
    "cut_over_intranet": _l("Cut over to the e-government intranet"),
    "cut_over_internet": _l("Move to the internet"),
    "retire": _l("Retire"),
}
FINDING_NAMES: Mapping[str, object] = {
    "extranet_reaches": _l("The extranet already reaches both ends"),
    "retire_by_rule": _l("To be retired by the rule"),
    "cutover_planned": _l("Cut-over planned before the new contract ends"),
    "classified": _l("Classified: the extranet is no alternative"),
}
RENTAL_STATE_NAMES: Mapping[str, object] = {
    RentalState.DRAFT: _l("Draft"),
    RentalState.SUBMITTED: _l("Waiting for finance"),
    RentalState.APPROVED: _l("Approved"),
    RentalState.BLOCKED: _l("Blocked"),
}
RENTAL_STATE_CLASSES: Mapping[str, str] = {
    RentalState.DRAFT: "state state-off",
    RentalState.SUBMITTED: "state state-pending",
    RentalState.APPROVED: "state state-ok",
    RentalState.BLOCKED: "state state-bad",
}
KIND_NAMES: Mapping[str, object] = {RentalKind.NEW: _l("New line"), RentalKind.RENEWAL: _l("Renewal")}
BASIS_NAMES: Mapping[str, object] = {
    BlockBasis.EXTRANET_REACHES: _l("The e-government extranet already reaches it"),
    BlockBasis.RETIRE: _l("The rule says retire it"),
    BlockBasis.OTHER: _l("Other"),
}


@dataclass(frozen=True)
class RentalWords:
    """The rental and programme words for the templates (``rw.state(r.state)`` …)."""

    def state(self, code: str) -> str:
        return str(RENTAL_STATE_NAMES.get(code, code))

    def state_class(self, code: str) -> str:
        return RENTAL_STATE_CLASSES.get(code, "state state-off")

    def kind(self, code: str) -> str:
        return str(KIND_NAMES.get(code, code))

    def basis(self, code: str | None) -> str:
        return "" if code is None else str(BASIS_NAMES.get(code, code))

    def finding(self, code: str) -> str:
        return str(FINDING_NAMES.get(code, code))

    def action(self, code: str) -> str:
        return str(ACTION_NAMES.get(code, code))

    def status(self, code: str) -> str:
        return str(STATUS_NAMES.get(code, code))

    def status_class(self, code: str) -> str:
        return STATUS_CLASSES.get(code, "state state-off")


RW = RentalWords()


def lines_config() -> lines.LinesConfig:
    return lines.read_lines_config(runtime().settings.programme_file)


# --- charts ----------------------------------------------------------------------------------------------

CHART_W, CHART_H = 760, 260
PAD_L, PAD_R, PAD_T, PAD_B = 80, 16, 24, 34


@dataclass(frozen=True)
class SeriesChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    actual: str  # polyline points
    dots: list[tuple[float, float, str]]
    ideal: tuple[float, float, float, float]
    deadline: tuple[float, str]
    today: tuple[float, str]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]


def _nice_top(value: float) -> tuple[float, float]:
    """A round top for the y axis and its step (four steps)."""
    raw = max(value / 4, 1)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    step = next(s * magnitude for s in (1, 2, 2.5, 5, 10) if raw <= s * magnitude)
    top = step * max(1, -(-value // step))
    return top, step


def series_chart(
    points: list[tuple[date, float]],
    *,
    start: date,
    deadline: date,
    today: date,
    total: float,
    label: Callable[[float], str],
) -> SeriesChart:
    """What remains over time (``points``) against the ideal line from ``total`` at the start to nothing
    at the deadline."""
    first = min([start] + [d for d, _ in points])
    end = max([today, deadline] + [d for d, _ in points]) + timedelta(days=30)
    top, step = _nice_top(max([total, 1.0] + [v for _, v in points]))
    right, bottom = CHART_W - PAD_R, CHART_H - PAD_B
    span = max((end - first).days, 1)

    def x_of(day: date) -> float:
        return round(PAD_L + (right - PAD_L) * (day - first).days / span, 1)

    def y_of(value: float) -> float:
        return round(bottom - (bottom - PAD_T) * value / top, 1)

    dots = [(x_of(d), y_of(v), f"{d.isoformat()}: {label(v)}") for d, v in points]
    years = list(range(first.year + 1, end.year + 1))
    if len(years) > 10:
        years = years[:: len(years) // 10 + 1]
    ticks = []
    value = 0.0
    while value <= top:
        ticks.append((y_of(value), label(value)))
        value += step
    return SeriesChart(
        CHART_W,
        CHART_H,
        PAD_L,
        right,
        PAD_T,
        bottom,
        " ".join(f"{x},{y}" for x, y, _ in dots),
        dots,
        (x_of(start), y_of(total), x_of(deadline), y_of(0)),
        (x_of(deadline), deadline.isoformat()),
        (x_of(today), today.isoformat()),
        [(x_of(date(y, 1, 1)), str(y)) for y in years],
        ticks,
    )


def _yuan(value: float) -> str:
    return f"¥{value:,.0f}"


def burndown_charts(burn: lines.Burndown) -> tuple[SeriesChart, SeriesChart]:
    """The lines still rented, and their monthly rent, at each month's end."""
    common = {"start": burn.start, "deadline": burn.deadline, "today": burn.today}
    lines_chart = series_chart(
        [(d, float(n)) for d, n, _ in burn.points], total=float(burn.total_lines), label=lambda v: f"{v:,.0f}", **common
    )
    rent_chart = series_chart(
        [(d, float(r)) for d, _, r in burn.points], total=float(burn.total_rent), label=_yuan, **common
    )
    return lines_chart, rent_chart


@dataclass(frozen=True)
class YearBars:
    width: int
    height: int
    bars: list[tuple[int, int, int, str]]  # x, y, height, title
    labels: list[tuple[int, int, str]]
    grid: list[tuple[int, str]]
    baseline: int
    empty: bool


def savings_chart(by_year: list[tuple[int, int, Decimal]]) -> YearBars:
    """The monthly rent retired in each year (the last ten)."""
    years = by_year[-10:]
    width, height, left, bottom, top_pad, bar = 640, 220, 80, 30, 16, 28
    top = max((float(v) for _, _, v in years), default=0.0)
    top_value, _step = _nice_top(top) if top else (0.0, 0.0)
    plot, baseline = height - bottom - top_pad, height - bottom
    step = (width - left - 10) // max(len(years), 1)
    bars, labels = [], []
    for n, (year, count, rent) in enumerate(years):
        x = left + n * step + step // 2 - bar // 2
        h = int(plot * float(rent) / top_value) if top_value else 0
        bars.append((x, baseline - h, h, f"{year}: {_yuan(float(rent))} ({count})"))
        labels.append((x + bar // 2, baseline + 18, str(year)))
    grid = [(baseline - int(plot * k / 4), _yuan(top_value * k / 4)) for k in range(5)] if top_value else []
    return YearBars(width, height, bars, labels, grid, baseline, not years)


# --- the programme page ---------------------------------------------------------------------------------


def render_lines_programme(*, audience: str) -> ResponseReturnValue:
    """The network programme; ``audience`` ops | finance | department (a department user's own lines)."""
    session = request_uow().session
    actor = current_actor()
    config = lines_config()
    today = lines.programme_today()
    figures = lines.programme_figures(session, config, today, actor=actor)
    burn = lines.programme_burndown(session, config, today, actor=actor)
    lines_chart, rent_chart = burndown_charts(burn)
    ending = lines.contracts_ending(session, today, actor=actor, days=config.ending_days)
    return render_template(
        "lines_finance/programme.html",
        f=figures,
        config=config,
        burn=burn,
        lines_chart=lines_chart,
        rent_chart=rent_chart,
        ending=ending,
        audience=audience,
        rw=RW,
        words=WORDS,
        locale=current_locale(),
    )
