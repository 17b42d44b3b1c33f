"""The reports' inline SVG chart: approved and blocked amounts per year (classes only, no styles)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cloudmgr.purchases.reports import PurchaseReport

WIDTH, HEIGHT = 640, 240
LEFT, BOTTOM, TOP = 70, 30, 16
BAR = 22


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    height: int
    css: str
    title: str


@dataclass(frozen=True)
class YearChart:
    width: int
    height: int
    bars: list[Bar]
    labels: list[tuple[int, int, str]]  # x, y, text
    grid: list[tuple[int, str]]  # y, label
    baseline: int
    empty: bool


def year_chart(report: PurchaseReport) -> YearChart:
    years = report.years[-8:]
    top = max((max(y.approved_yuan, y.blocked_yuan) for y in years), default=Decimal(0))
    plot = HEIGHT - BOTTOM - TOP
    baseline = HEIGHT - BOTTOM
    bars: list[Bar] = []
    labels: list[tuple[int, int, str]] = []
    step = (WIDTH - LEFT - 10) // max(len(years), 1)
    for n, y in enumerate(years):
        x = LEFT + n * step + step // 2 - BAR
        for offset, value, css, what in (
            (0, y.approved_yuan, "chart-bar chart-bar-approved", "approved"),
            (BAR, y.blocked_yuan, "chart-bar chart-bar-blocked", "blocked"),
        ):
            h = int(plot * value / top) if top else 0
            bars.append(Bar(x + offset, baseline - h, h, css, f"{y.year} {what}: ¥{value:,.2f}"))
        labels.append((x + BAR, baseline + 18, str(y.year)))
    grid = [(baseline - int(plot * k / 4), f"¥{top * k / 4:,.0f}") for k in range(5)] if top else []
    return YearChart(WIDTH, HEIGHT, bars, labels, grid, baseline, not years)
