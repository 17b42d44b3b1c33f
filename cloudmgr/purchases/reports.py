"""Finance reports: approved and blocked amounts by year, department and category; the money
not spent because the cloud served it; CSV and XLSX exports."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cloudmgr import exports
from cloudmgr.organisation.actor import Actor
from cloudmgr.purchases.models import BlockBasis, PurchaseRequest, PurchaseState

ZERO = Decimal("0.00")


@dataclass
class ReportRow:
    year: int
    department_key: str
    department_name_zh: str
    department_name_en: str
    category: str
    approved_count: int = 0
    approved_yuan: Decimal = ZERO
    blocked_count: int = 0
    blocked_yuan: Decimal = ZERO
    saved_by_cloud_yuan: Decimal = ZERO  # blocked because the cloud provides it
    cloud_monthly_yuan: Decimal = ZERO  # what the offers cost on the cloud per month


@dataclass
class YearTotal:
    year: int
    approved_yuan: Decimal = ZERO
    blocked_yuan: Decimal = ZERO
    saved_by_cloud_yuan: Decimal = ZERO
    cloud_monthly_yuan: Decimal = ZERO


@dataclass
class PurchaseReport:
    rows: list[ReportRow] = field(default_factory=list)
    years: list[YearTotal] = field(default_factory=list)
    year: int | None = None

    @property
    def approved_yuan(self) -> Decimal:
        return sum((r.approved_yuan for r in self.rows), ZERO)

    @property
    def blocked_yuan(self) -> Decimal:
        return sum((r.blocked_yuan for r in self.rows), ZERO)

    @property
    def saved_by_cloud_yuan(self) -> Decimal:
        return sum((r.saved_by_cloud_yuan for r in self.rows), ZERO)

    @property
    def cloud_monthly_yuan(self) -> Decimal:
        return sum((r.cloud_monthly_yuan for r in self.rows), ZERO)


def purchase_report(session: Session, actor: Actor, *, year: int | None = None) -> PurchaseReport:
    """Decided purchases by the year of their decision (department users: their own only)."""
    query = (
        select(PurchaseRequest)
        .where(
            PurchaseRequest.state.in_([PurchaseState.APPROVED, PurchaseState.BLOCKED]),
            PurchaseRequest.decided_at.is_not(None),
        )
        .options(selectinload(PurchaseRequest.department))
        .order_by(PurchaseRequest.id)
    )
    if actor.is_department:
        query = query.where(PurchaseRequest.department_id == actor.department_id)
    rows: dict[tuple[int, str, str], ReportRow] = {}
    years: dict[int, YearTotal] = {}
    for purchase in session.scalars(query):
        assert purchase.decided_at is not None
        y = purchase.decided_at.year
        total = years.setdefault(y, YearTotal(y))
        dept = purchase.department
        row = rows.get((y, dept.key, purchase.category))
        if row is None:
            row = rows[(y, dept.key, purchase.category)] = ReportRow(
                y, dept.key, dept.name_zh, dept.name_en, purchase.category
            )
        if purchase.state == PurchaseState.APPROVED:
            row.approved_count += 1
            row.approved_yuan += purchase.amount_yuan
            total.approved_yuan += purchase.amount_yuan
        else:
            row.blocked_count += 1
            row.blocked_yuan += purchase.amount_yuan
            total.blocked_yuan += purchase.amount_yuan
            if purchase.block_basis == BlockBasis.CLOUD_PROVIDES:
                monthly = Decimal(str((purchase.offer or {}).get("monthly_cost", "0")))
                row.saved_by_cloud_yuan += purchase.amount_yuan
                row.cloud_monthly_yuan += monthly
                total.saved_by_cloud_yuan += purchase.amount_yuan
                total.cloud_monthly_yuan += monthly
    selected = [r for r in rows.values() if year is None or r.year == year]
    selected.sort(key=lambda r: (-r.year, r.department_key, r.category))
    return PurchaseReport(rows=selected, years=[years[y] for y in sorted(years)], year=year)


HEADER = (
    "year",
    "department",
    "department_name",
    "category",
    "approved_count",
    "approved_yuan",
    "blocked_count",
    "blocked_yuan",
    "saved_by_cloud_yuan",
    "cloud_monthly_yuan",
)


def _values(row: ReportRow) -> tuple[object, ...]:
    return (
        row.year,
        row.department_key,
        row.department_name_zh,
        row.category,
        row.approved_count,
        row.approved_yuan,
        row.blocked_count,
        row.blocked_yuan,
        row.saved_by_cloud_yuan,
        row.cloud_monthly_yuan,
    )


def report_csv(report: PurchaseReport) -> str:
    return exports.csv_text(HEADER, (_values(row) for row in report.rows))


def report_xlsx(report: PurchaseReport) -> bytes:
    """The report as an Excel workbook: the rows, and the totals per year."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "purchases"
    sheet.append(exports.xlsx_row(HEADER))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in report.rows:
        sheet.append(exports.xlsx_row(_values(row)))
    for column in ("F", "H", "I", "J"):
        for cell in sheet[column][1:]:
            cell.number_format = "#,##0.00"
    totals = workbook.create_sheet("years")
    totals.append(
        exports.xlsx_row(["year", "approved_yuan", "blocked_yuan", "saved_by_cloud_yuan", "cloud_monthly_yuan"])
    )
    for y in report.years:
        totals.append(
            exports.xlsx_row([y.year, y.approved_yuan, y.blocked_yuan, y.saved_by_cloud_yuan, y.cloud_monthly_yuan])
        )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def decided_years(report: PurchaseReport) -> Sequence[int]:
    return [y.year for y in report.years]
