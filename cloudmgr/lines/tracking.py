"""The network programme against its deadline: burndown of lines and of monthly rent, by department and by
city, the at-risk rule, contracts ending soon with what should happen to each, and the savings.

* **Every line** in the register is to go: cut over onto its target (intranet, extranet, internet) or
  retired.  **Done**: cut over or retired; it is done on the day that was recorded (``cut_over_at``).
* A line's **city** is the city of its B end (the far site the department reaches; the A end is
  usually the department's own building), so every line counts in one city and the totals add up.
* The **deadline** is ``deadlines.network`` of the programme file (the plan: one unified e-government
  network by 2020); without it, the server rooms' deadline (also 2020).
* **At risk** (a department or a city): lines remain, the deadline is still ahead, and at its pace
  (the lines it cut over or retired in the last ``pace_days`` days, per day) the remaining lines would
  not be done by the deadline; no line done in that window is no pace at all, so at risk too.
  **Overdue**: lines remain and the deadline has passed.  The projected finish (today + remaining ÷
  pace) is shown for both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.inventory.models import LegacySystem
from cloudmgr.lines.coverage import Place
from cloudmgr.lines.finance import TARGET_WORDS, reached_places
from cloudmgr.lines.models import LineState, LineTarget, LineType, NetworkLine
from cloudmgr.lines.rules import effective_target
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.programme.config import Deadline, read_programme_file
from cloudmgr.programme.errors import ProgrammeFileInvalid
from cloudmgr.programme.tracking import PROVINCE_TZ
from cloudmgr.programme.tracking import today as province_today

DONE_STATES = frozenset({LineState.CUT_OVER, LineState.RETIRED})
STILL_RENTED = frozenset({LineState.IN_SERVICE, LineState.PLANNED})
ENDING_DAYS = 90


def today() -> date:
    return province_today()


@dataclass(frozen=True)
class LinesConfig:
    start: date
    deadline: Deadline
    pace_days: int = 90
    ending_days: int = ENDING_DAYS
    reminder_every_days: int = 7


def read_lines_config(path: Path) -> LinesConfig:
    """The network deadline from the programme file (``deadlines.network``: date, label_zh, label_en;
    ``network_pace_days``), beside the server rooms' deadline it defaults to."""
    programme = read_programme_file(path)
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw = data["deadlines"].get("network")
    deadline = programme.rooms
    if raw is not None:
        if not isinstance(raw, dict) or not isinstance(raw.get("date"), date):
            raise ProgrammeFileInvalid(f"{path}: deadlines.network needs a date (YYYY-MM-DD)")
        deadline = Deadline(raw["date"], str(raw.get("label_zh") or ""), str(raw.get("label_en") or ""))
    pace = data.get("network_pace_days", 90)
    if not isinstance(pace, int) or isinstance(pace, bool) or not 7 <= pace <= 3650:
        raise ProgrammeFileInvalid(f"{path}: network_pace_days must be a whole number of days from 7 to 3650")
    if programme.start >= deadline.date:
        raise ProgrammeFileInvalid(f"{path}: start ({programme.start}) must come before the network deadline")
    return LinesConfig(programme.start, deadline, pace, ENDING_DAYS, programme.reminder_every_days)


def done_on(line: NetworkLine) -> date | None:
    """The day a line was cut over or retired (in the province), None while it is still rented."""
    if line.state not in DONE_STATES:
        return None
    when: datetime = line.cut_over_at or line.updated_at
    return when.astimezone(PROVINCE_TZ).date()


def _lines(session: Session, actor: Actor | None, department_id: int | None) -> list[NetworkLine]:
    query = select(NetworkLine).options(
        selectinload(NetworkLine.department),
        selectinload(NetworkLine.systems).selectinload(LegacySystem.server_room),
        selectinload(NetworkLine.rooms),
    )
    scope = actor.department_scope if actor is not None else None
    if scope is not None:
        query = query.where(NetworkLine.department_id == scope)
    if department_id is not None:
        query = query.where(NetworkLine.department_id == department_id)
    return list(session.scalars(query.order_by(NetworkLine.code)))


# --- progress --------------------------------------------------------------------------------------


@dataclass
class Row:
    """The lines of one department or one city."""

    key: str
    name_zh: str
    name_en: str
    department_id: int | None = None
    total: int = 0
    done: int = 0
    done_recent: int = 0  # done within the pace window
    rent_total: Decimal = Decimal(0)
    rent_done: Decimal = Decimal(0)
    status: str = "done"  # done | on_track | at_risk | overdue
    projected_finish: date | None = None

    @property
    def remaining(self) -> int:
        return self.total - self.done

    @property
    def rent_remaining(self) -> Decimal:
        return self.rent_total - self.rent_done

    @property
    def pct(self) -> int:
        return 100 * self.done // self.total if self.total else 100

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_zh

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "lines": self.total,
            "done": self.done,
            "remaining": self.remaining,
            "done_recently": self.done_recent,
            "monthly_rent_total": str(self.rent_total),
            "monthly_rent_retired": str(self.rent_done),
            "monthly_rent_remaining": str(self.rent_remaining),
            "percent_done": self.pct,
            "status": self.status,
            "projected_finish": self.projected_finish.isoformat() if self.projected_finish else None,
        }


def assess(row: Row, config: LinesConfig, when: date) -> None:
    """The at-risk rule (module docstring), written onto ``row``."""
    if row.remaining == 0:
        row.status, row.projected_finish = "done", None
        return
    per_day = row.done_recent / config.pace_days
    row.projected_finish = when + timedelta(days=math.ceil(row.remaining / per_day)) if per_day else None
    if when > config.deadline.date:
        row.status = "overdue"
    elif row.projected_finish is None or row.projected_finish > config.deadline.date:
        row.status = "at_risk"
    else:
        row.status = "on_track"


@dataclass
class Figures:
    today: date
    config: LinesConfig
    total: Row
    departments: list[Row] = field(default_factory=list)
    cities: list[Row] = field(default_factory=list)
    by_target: dict[str, int] = field(default_factory=dict)  # remaining lines by target

    @property
    def at_risk(self) -> list[Row]:
        return [r for r in self.departments if r.status in {"at_risk", "overdue"}]

    @property
    def days_to_deadline(self) -> int:
        return (self.config.deadline.date - self.today).days

    def summary(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "deadline": self.config.deadline.date.isoformat(),
            "pace_days": self.config.pace_days,
            **self.total.as_dict(),
            "remaining_by_target": dict(sorted(self.by_target.items())),
        }


def _add(row: Row, line: NetworkLine, done: date | None, since: date) -> None:
    row.total += 1
    row.rent_total += line.monthly_rent
    if done is not None:
        row.done += 1
        row.rent_done += line.monthly_rent
        row.done_recent += int(done > since)


def compute(
    session: Session, config: LinesConfig, when: date, *, actor: Actor | None = None, department_id: int | None = None
) -> Figures:
    """Every figure on ``when`` (one department's when ``department_id`` is given, or ``actor`` is a
    department user)."""
    since = when - timedelta(days=config.pace_days)
    total = Row("all", "全部", "All")
    departments: dict[int, Row] = {}
    cities: dict[str, Row] = {}
    by_target: dict[str, int] = {}
    for line in _lines(session, actor, department_id):
        done = done_on(line)
        if done is not None and done > when:
            done = None  # as it stood on ``when``
        dept = line.department
        _add(total, line, done, since)
        _add(departments.setdefault(dept.id, Row(dept.key, dept.name_zh, dept.name_en, dept.id)), line, done, since)
        _add(cities.setdefault(line.b_city, Row(line.b_city, line.b_city, line.b_city)), line, done, since)
        if done is None:
            target = effective_target(line).value
            by_target[target] = by_target.get(target, 0) + 1
    for row in (total, *departments.values(), *cities.values()):
        assess(row, config, when)
    order = {"overdue": 0, "at_risk": 1, "on_track": 2, "done": 3}
    return Figures(
        when,
        config,
        total,
        sorted(departments.values(), key=lambda r: (order[r.status], -r.remaining, r.key)),
        sorted(cities.values(), key=lambda r: (order[r.status], -r.remaining, r.key)),
        by_target,
    )


# --- burndown ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Burndown:
    start: date
    deadline: date
    today: date
    total_lines: int
    total_rent: Decimal
    #: (month end or today, lines remaining, monthly rent remaining)
    points: list[tuple[date, int, Decimal]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "deadline": self.deadline.isoformat(),
            "today": self.today.isoformat(),
            "lines": self.total_lines,
            "monthly_rent": str(self.total_rent),
            "actual": [
                {"date": d.isoformat(), "lines_remaining": n, "monthly_rent_remaining": str(r)}
                for d, n, r in self.points
            ],
            "ideal": [
                {"date": self.start.isoformat(), "lines_remaining": self.total_lines},
                {"date": self.deadline.isoformat(), "lines_remaining": 0},
            ],
        }


def _month_ends(first: date, last: date) -> list[date]:
    out = []
    year, month = first.year, first.month
    while True:
        nxt = date(year + month // 12, month % 12 + 1, 1)
        end = nxt - timedelta(days=1)
        if end >= last:
            break
        out.append(end)
        year, month = nxt.year, nxt.month
    return [*out, last]


def burndown(
    session: Session,
    config: LinesConfig,
    when: date,
    *,
    actor: Actor | None = None,
    department_id: int | None = None,
    city: str | None = None,
) -> Burndown:
    """Lines and monthly rent still rented at each month's end, from the month before the first line was
    done to ``when`` (rebuilt from the recorded cut-overs: no snapshots needed), against the ideal line."""
    lines = [line for line in _lines(session, actor, department_id) if city is None or line.b_city == city]
    dated = [(done_on(line), line.monthly_rent) for line in lines]
    total_rent = sum((rent for _, rent in dated), Decimal(0))
    days = sorted(d for d, _ in dated if d is not None and d <= when)
    first = (days[0].replace(day=1) - timedelta(days=1)) if days else when
    points = []
    for day in _month_ends(min(first, when), when):
        gone = [rent for d, rent in dated if d is not None and d <= day]
        points.append((day, len(lines) - len(gone), total_rent - sum(gone, Decimal(0))))
    return Burndown(config.start, config.deadline.date, when, len(lines), total_rent, points)


# --- contracts ending ----------------------------------------------------------------------------------

ACTIONS = {
    "renew": "续约",
    "cut_over_extranet": "割接至电子政务外网",
    "cut_over_intranet": "割接至电子政务内网",
    "cut_over_internet": "改用互联网",
    "retire": "裁撤",
}

REASON_RETIRE = N_("Every system it carries is on the cloud and its rooms are closed: let the contract end, retire it.")
REASON_PLANNED = N_("Its cut-over onto %(target)s is planned for %(date)s: do not renew.")
REASON_PLANNED_LATE = N_("Its cut-over is planned for %(date)s, after the contract ends: renew briefly, until then.")
REASON_EXTRANET = N_("The e-government extranet reaches both ends: cut over to it, do not renew.")
REASON_NOT_REACHED = N_(
    "The e-government extranet does not reach %(places)s yet: renew briefly, cut over once it does."
)
REASON_INTERNET_LINE = N_("An internet line for public services is already on its target network: renew.")
REASON_INTERNET = N_("It serves the public: use an internet connection instead of a dedicated line.")
REASON_CLASSIFIED = N_("It carries classified business: renew until it joins the e-government intranet (plan it).")


@dataclass(frozen=True)
class EndingRow:
    line: NetworkLine
    days_left: int  # negative: ended that many days ago and still rented
    action: str  # a key of ACTIONS
    reason: Message  # for people, in their language where it is shown

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.line.code,
            "department": self.line.department.key,
            "contract_end": self.line.contract_end.isoformat(),
            "days_left": self.days_left,
            "monthly_rent": str(self.line.monthly_rent),
            "state": self.line.state.value,
            "target": effective_target(self.line).value,
            "action": self.action,
            "reason": str(self.reason),
        }


def _ends(line: NetworkLine) -> tuple[Place, Place]:
    return (
        Place(line.a_city, line.a_county, line.a_township if line.a_county else ""),
        Place(line.b_city, line.b_county, line.b_township if line.b_county else ""),
    )


def contract_action(line: NetworkLine, reached: set[Place]) -> tuple[str, Message]:
    """What should happen to a line whose contract ends: from its target (planned, else by rule)."""
    target = effective_target(line)
    if target == LineTarget.RETIRE:
        return "retire", Message(REASON_RETIRE)
    planned = line.state == LineState.PLANNED and line.cutover_date is not None
    if planned and line.cutover_date is not None and line.cutover_date <= line.contract_end:
        when = line.cutover_date.isoformat()
        return f"cut_over_{target.value}", message(REASON_PLANNED, date=when, target=TARGET_WORDS[target])
    if planned and line.cutover_date is not None:
        when = line.cutover_date.isoformat()
        return "renew", message(REASON_PLANNED_LATE, date=when)
    if target == LineTarget.EXTRANET:
        missing = [p for p in _ends(line) if p not in reached]
        if not missing:
            return "cut_over_extranet", Message(REASON_EXTRANET)
        names = ", ".join(p.city + p.county + p.township for p in missing)
        return "renew", message(REASON_NOT_REACHED, places=names)
    if target == LineTarget.INTERNET:
        if line.line_type == LineType.INTERNET:
            return "renew", Message(REASON_INTERNET_LINE)
        return "cut_over_internet", Message(REASON_INTERNET)
    return "renew", Message(REASON_CLASSIFIED)


def contracts_ending(
    session: Session, when: date, *, actor: Actor | None = None, days: int = ENDING_DAYS
) -> list[EndingRow]:
    """Lines still rented whose contract ends within ``days`` (or has ended), soonest first."""
    reached = reached_places(session)
    rows = []
    for line in _lines(session, actor, None):
        if line.state not in STILL_RENTED or line.contract_end > when + timedelta(days=days):
            continue
        action, reason = contract_action(line, reached)
        rows.append(EndingRow(line, (line.contract_end - when).days, action, reason))
    rows.sort(key=lambda r: (r.line.contract_end, r.line.code))
    return rows


# --- savings ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavingsRow:
    year: int
    department_key: str
    department_zh: str
    department_en: str
    city: str
    lines: int
    monthly_rent: Decimal

    def department(self, locale: str) -> str:
        return self.department_en if locale == "en" else self.department_zh

    def as_dict(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "department": self.department_key,
            "city": self.city,
            "lines": self.lines,
            "monthly_rent": str(self.monthly_rent),
        }


@dataclass(frozen=True)
class Savings:
    rows: list[SavingsRow]  # by year, department, city

    def _by(self, key: Any) -> list[tuple[Any, int, Decimal]]:
        out: dict[Any, list[Any]] = {}
        for row in self.rows:
            acc = out.setdefault(key(row), [0, Decimal(0)])
            acc[0] += row.lines
            acc[1] += row.monthly_rent
        return [(k, n, rent) for k, (n, rent) in sorted(out.items())]

    @property
    def by_year(self) -> list[tuple[int, int, Decimal]]:
        return self._by(lambda r: r.year)

    @property
    def by_department(self) -> list[tuple[str, int, Decimal]]:
        return self._by(lambda r: r.department_key)

    @property
    def by_city(self) -> list[tuple[str, int, Decimal]]:
        return self._by(lambda r: r.city)

    @property
    def lines(self) -> int:
        return sum(r.lines for r in self.rows)

    @property
    def monthly_rent(self) -> Decimal:
        return sum((r.monthly_rent for r in self.rows), Decimal(0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "monthly_rent": str(self.monthly_rent),
            "annual_rent": str(self.monthly_rent * 12),
            "rows": [r.as_dict() for r in self.rows],
            "by_year": [{"year": k, "lines": n, "monthly_rent": str(v)} for k, n, v in self.by_year],
            "by_department": [{"department": k, "lines": n, "monthly_rent": str(v)} for k, n, v in self.by_department],
            "by_city": [{"city": k, "lines": n, "monthly_rent": str(v)} for k, n, v in self.by_city],
        }


def savings(session: Session, *, actor: Actor | None = None, year: int | None = None) -> Savings:
    """The monthly rent no longer paid: lines cut over or retired, by the year that was recorded, their
    department and their city (the B end's).  Every total is a sum of the same rows."""
    acc: dict[tuple[int, str, str], list[Any]] = {}
    names: dict[str, tuple[str, str]] = {}
    for line in _lines(session, actor, None):
        done = done_on(line)
        if done is None or (year is not None and done.year != year):
            continue
        names[line.department.key] = (line.department.name_zh, line.department.name_en)
        entry = acc.setdefault((done.year, line.department.key, line.b_city), [0, Decimal(0)])
        entry[0] += 1
        entry[1] += line.monthly_rent
    rows = [
        SavingsRow(y, key, names[key][0], names[key][1], city, n, rent)
        for (y, key, city), (n, rent) in sorted(acc.items())
    ]
    return Savings(rows)


def years_with_savings(session: Session, *, actor: Actor | None = None) -> Sequence[int]:
    return sorted({r.year for r in savings(session, actor=actor).rows})
