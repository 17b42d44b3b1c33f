"""The programme page and its burndown chart, shared by operators (/ops/programme), finance
(/finance/programme, read-only) and departments (/portal/programme, their own systems); the
wave states and the programme file, shared with the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l

from cloudmgr.programme import tracking
from cloudmgr.programme.config import ProgrammeConfig, read_programme_file
from cloudmgr.programme.models import WaveState
from web.common.selfservice_forms import ButtonForm
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, runtime

WAVE_STATES: dict[str, Any] = {
    WaveState.DRAFT: _l("Draft"),
    WaveState.CHECKED: _l("Checked"),
    WaveState.RUNNING: _l("Running"),
    WaveState.DONE: _l("Done"),
    WaveState.CANCELLED: _l("Cancelled"),
    # A finished wave whose systems are not all on the cloud (MigrationWave.outcome).
    "done_partly": _l("Ended: some systems not migrated"),
    "done_none": _l("Ended: no system migrated"),
}
WAVE_STATE_CLASS = {
    "draft": "off",
    "checked": "ok",
    "running": "warn",
    "done": "ok",
    "cancelled": "off",
    "done_partly": "warn",
    "done_none": "bad",
}
FLAG_REASONS: dict[str, Any] = {
    "overdue": _l("Overdue"),
    "not_in_wave": _l("Not in a wave yet"),
    "wave_too_late": _l("Its wave ends after the deadline"),
}
MAX_LISTED = 200


def programme_config() -> ProgrammeConfig:
    return read_programme_file(runtime().settings.programme_file)


def wave_state_label(code: object) -> str:
    return str(WAVE_STATES.get(str(code), code))


def wave_state_class(code: object) -> str:
    return f"state state-{WAVE_STATE_CLASS.get(str(code), 'off')}"


def init_app(app: Flask) -> None:
    app.add_template_filter(wave_state_label, "label_wave_state")
    app.add_template_filter(wave_state_class, "wave_state_class")


CHART_W, CHART_H = 760, 280
PAD_L, PAD_R, PAD_T, PAD_B = 56, 16, 24, 34


@dataclass(frozen=True)
class Marker:
    x: float
    label: str


@dataclass(frozen=True)
class BurndownChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    actual: str  # polyline points
    dots: list[tuple[float, float, str]]
    ideal: tuple[float, float, float, float]
    deadlines: list[Marker]
    today: Marker
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]


def _nice_step(top: int) -> int:
    raw = max(top / 4, 1)
    magnitude: int = 10 ** (len(str(int(raw))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if raw <= step * magnitude:
            return max(int(step * magnitude), 1)
    return int(10 * magnitude)


def burndown_chart(b: tracking.Burndown, config: ProgrammeConfig) -> BurndownChart:
    start = min([b.start] + [d for d, _ in b.points])
    end = max([b.today, b.deadline, config.rooms.date] + [d for d, _ in b.points]) + timedelta(days=30)
    top_value = max([b.total, 1] + [n for _, n in b.points])
    step = _nice_step(top_value)
    y_max = step * (top_value // step + (0 if top_value % step == 0 and top_value > 0 else 1))
    right, bottom = CHART_W - PAD_R, CHART_H - PAD_B
    span = max((end - start).days, 1)

    def x_of(day: date) -> float:
        return round(PAD_L + (right - PAD_L) * (day - start).days / span, 1)

    def y_of(value: float) -> float:
        return round(bottom - (bottom - PAD_T) * value / y_max, 1)

    dots = [(x_of(d), y_of(n), f"{d.isoformat()}: {n:,}") for d, n in b.points]
    years = list(range(start.year + 1, end.year + 1))
    if len(years) > 10:
        years = years[:: len(years) // 10 + 1]
    return BurndownChart(
        CHART_W,
        CHART_H,
        PAD_L,
        right,
        PAD_T,
        bottom,
        " ".join(f"{x},{y}" for x, y, _ in dots),
        dots,
        (x_of(b.start), y_of(b.total), x_of(b.deadline), y_of(0)),
        [
            Marker(x_of(config.cloud.date), config.cloud.date.isoformat()),
            Marker(x_of(config.rooms.date), config.rooms.date.isoformat()),
        ],
        Marker(x_of(b.today), b.today.isoformat()),
        [(x_of(date(y, 1, 1)), str(y)) for y in years],
        [(y_of(v), f"{v:,}") for v in range(0, y_max + 1, step)],
    )


# --- the programme page --------------------------------------------------------------------------


def render_programme(*, audience: str, department_id: int | None = None) -> ResponseReturnValue:
    """The programme page; ``audience`` ops | finance | department (read-only unless ops)."""
    session = request_uow().session
    config = programme_config()
    figures = tracking.compute(session, config, tracking.today(), department_id=department_id)
    department_key = None
    if department_id is not None:
        department_key = figures.departments[0].key if figures.departments else None
    period = request.args.get("period", "day")
    if period not in {"day", "week"}:
        period = "day"
    if department_id is not None and department_key is None:
        burn = tracking.Burndown(config.start, config.cloud.date, figures.today, 0, [(figures.today, 0)], period)
    else:
        burn = tracking.burndown(session, config, figures, period=period, department_key=department_key)
    return render_template(
        "programme/programme.html",
        f=figures,
        config=config,
        burn=burn,
        chart=burndown_chart(burn, config),
        audience=audience,
        read_only=not tracking.may_close_room(current_actor()),
        flag_reasons=FLAG_REASONS,
        max_listed=MAX_LISTED,
        button=ButtonForm(formdata=None),
        locale=current_locale(),
        period=period,
        endpoint=request.endpoint,
    )
