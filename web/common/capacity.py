"""Capacity and consolidation shown to people and to the API: the overview per base, the
forecast of each target and the chart of servers over time (server-rendered SVG geometry)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from cloudmgr.capacity.config import CapacityConfig, Target, read_capacity_file
from cloudmgr.capacity.models import CapacitySnapshot, ConsolidationRun
from cloudmgr.capacity.services import UNASSIGNED, Forecast, Totals, forecast, latest_snapshots, server_trend
from web.core.uow import runtime


def capacity_config() -> CapacityConfig:
    return read_capacity_file(runtime().settings.capacity_file)


def ratio(used: int, total: int) -> float:
    return used / total if total else 0.0


@dataclass
class BaseView:
    key: str
    name_zh: str
    name_en: str
    totals: Totals
    snapshots: list[CapacitySnapshot] = field(default_factory=list)

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_zh


@dataclass
class Overview:
    bases: list[BaseView]
    forecasts: list[Forecast]
    trend: list[tuple[date, int]]

    @property
    def total(self) -> Totals:
        out = Totals()
        for base in self.bases:
            out = out + base.totals
        return out


def _snapshot_totals(s: CapacitySnapshot) -> Totals:
    return Totals(
        s.physical_servers, s.vcpus_total, s.vcpus_used, s.ram_mb_total, s.ram_mb_used, s.disk_gb_total, s.disk_gb_used
    )


def overview(session: Session, config: CapacityConfig) -> Overview:
    bases = {b.key: BaseView(b.key, b.name_zh, b.name_en, Totals()) for b in config.bases}
    for snapshot in latest_snapshots(session):
        view = bases.get(snapshot.base)
        if view is None:
            name = "未分配" if snapshot.base == UNASSIGNED else snapshot.base
            view = bases[snapshot.base] = BaseView(snapshot.base, name, snapshot.base, Totals())
        view.snapshots.append(snapshot)
        view.totals = view.totals + _snapshot_totals(snapshot)
    trend = server_trend(session)
    return Overview(list(bases.values()), [forecast(trend, t) for t in config.targets], trend)


def target_label(target: Target, locale: str) -> str:
    return (target.label_en if locale == "en" else target.label_zh) or f"{target.servers:,} @ {target.date}"


# --- the chart ---------------------------------------------------------------------------------------

CHART_W, CHART_H = 760, 260
PAD_L, PAD_R, PAD_T, PAD_B = 78, 16, 16, 34


@dataclass(frozen=True)
class ChartLine:
    y: float
    x: float  # where the target's date is
    label: str
    servers: int
    reached: bool


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: str  # the polyline of the trend
    dots: list[tuple[float, float, str]]
    targets: list[ChartLine]
    forecasts: list[tuple[float, float, float, float]]  # dashed lines from now to the expected dates
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    empty: bool


def _nice_step(span: float, count: int = 4) -> int:
    raw = max(span / count, 1)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if raw <= step * magnitude:
            return int(step * magnitude)
    return int(10 * magnitude)


def chart(trend: Sequence[tuple[date, int]], forecasts: Sequence[Forecast], locale: str) -> Chart:
    today = trend[-1][0] if trend else date.today()
    first = trend[0][0] if trend else today
    dates = [first, today] + [f.target.date for f in forecasts] + [f.expected for f in forecasts if f.expected]
    start, end = min(dates), max(dates)
    if end <= start:
        end = start + timedelta(days=1)
    top_value = max([v for _, v in trend] + [f.target.servers for f in forecasts] + [1])
    step = _nice_step(top_value)
    y_max = step * (top_value // step + 1)
    right, bottom = CHART_W - PAD_R, CHART_H - PAD_B
    span_days = (end - start).days

    def x_of(day: date) -> float:
        return round(PAD_L + (right - PAD_L) * (day - start).days / span_days, 1)

    def y_of(value: float) -> float:
        return round(bottom - (bottom - PAD_T) * value / y_max, 1)

    dots = [(x_of(d), y_of(v), f"{d.isoformat()}: {v:,}") for d, v in trend]
    targets = [
        ChartLine(
            y_of(f.target.servers), x_of(f.target.date), target_label(f.target, locale), f.target.servers, f.reached
        )
        for f in forecasts
    ]
    lines = []
    if trend:
        for f in forecasts:
            if f.expected is not None:
                lines.append((x_of(today), y_of(trend[-1][1]), x_of(f.expected), y_of(f.target.servers)))
    years = list(range(start.year + (0 if start.month == 1 and start.day == 1 else 1), end.year + 1))
    if len(years) > 8:
        years = years[:: len(years) // 8 + 1]
    x_ticks = [Tick(x_of(date(y, 1, 1)), str(y)) for y in years]
    if not x_ticks:
        x_ticks = [Tick(x_of(start), start.isoformat()), Tick(x_of(end), end.isoformat())]
    y_ticks = [Tick(y_of(v), f"{v:,}") for v in range(0, y_max + 1, step)]
    return Chart(
        CHART_W,
        CHART_H,
        PAD_L,
        right,
        PAD_T,
        bottom,
        " ".join(f"{x},{y}" for x, y, _ in dots),
        dots,
        targets,
        lines,
        x_ticks,
        y_ticks,
        not trend,
    )


# --- JSON of the API ---------------------------------------------------------------------------------


def totals_json(t: Totals) -> dict[str, Any]:
    return {
        "physical_servers": t.physical_servers,
        "vcpus_total": t.vcpus_total,
        "vcpus_used": t.vcpus_used,
        "ram_mb_total": t.ram_mb_total,
        "ram_mb_used": t.ram_mb_used,
        "disk_gb_total": t.disk_gb_total,
        "disk_gb_used": t.disk_gb_used,
        "headroom": t.headroom,
    }


def snapshot_json(s: CapacitySnapshot) -> dict[str, Any]:
    return {
        "source": s.source,
        "endpoint": s.endpoint,
        "clouds": [c for c in s.clouds.split(",") if c],
        "taken_at": s.taken_at.isoformat(),
        **{k: v for k, v in totals_json(_snapshot_totals(s)).items() if k != "headroom"},
        "hosts": [
            {
                "name": h.name,
                "state": h.state,
                "vcpus_total": h.vcpus_total,
                "vcpus_used": h.vcpus_used,
                "ram_mb_total": h.ram_mb_total,
                "ram_mb_used": h.ram_mb_used,
                "disk_gb_total": h.disk_gb_total,
                "disk_gb_used": h.disk_gb_used,
            }
            for h in s.hosts
        ],
    }


def forecast_json(f: Forecast) -> dict[str, Any]:
    def iso(d: date | None) -> str | None:
        return d.isoformat() if d else None

    return {
        "date": f.target.date.isoformat(),
        "servers": f.target.servers,
        "label_zh": f.target.label_zh,
        "label_en": f.target.label_en,
        "current": f.current,
        "reached": f.reached,
        "expected": iso(f.expected),
        "earliest": iso(f.earliest),
        "latest": iso(f.latest),
        "servers_per_day": f.servers_per_day,
        "points": f.points,
        "on_time": f.on_time,
    }


def run_json(run: ConsolidationRun, *, waves: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": run.id,
        "cloud": run.cloud.key,
        "state": run.state,
        "next_wave": run.next_wave,
        "wave_count": len(run.plan.get("waves", [])),
        "moves_done": run.moves_done,
        "moves_failed": run.moves_failed,
        "last_error": run.last_error,
        "created_by": run.created_by,
        "created_at": run.created_at.isoformat(),
        "started_by": run.started_by,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "summary": run.plan.get("summary", {}),
    }
    if waves:
        out["waves"] = run.plan.get("waves", [])
        out["emptied"] = run.plan.get("emptied", [])
    return out


# --- the page (operators; finance reads it without the forms) ---------------------------------------


def render_capacity(*, csv_form: Any = None, status: int = 200) -> tuple[str, int]:
    """The capacity page; its snapshot and import forms only for who may use them (the service says)."""
    from flask import render_template

    from cloudmgr.capacity.services import may_change_capacity
    from web.common.selfservice_forms import ButtonForm
    from web.core.i18n import current_locale
    from web.core.security import current_actor
    from web.core.uow import request_uow

    locale = current_locale()
    data = overview(request_uow().session, capacity_config())
    return (
        render_template(
            "capacity/capacity.html",
            data=data,
            chart=chart(data.trend, data.forecasts, locale),
            locale=locale,
            ratio=ratio,
            target_label=target_label,
            csv_form=csv_form,
            button=ButtonForm(formdata=None),
            read_only=not may_change_capacity(current_actor()),
        ),
        status,
    )
