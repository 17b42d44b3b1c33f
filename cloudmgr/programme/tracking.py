"""The programme against its deadlines: progress, burndown, overdue and at-risk systems, rooms.

* **In scope**: non-classified systems on the internet or the extranet (the plan's rule for 2018).
* **Done**: on the cloud or decommissioned.
* A system's deadline is its own ``due_date`` when the inventory gives one, else the programme
  file's cloud deadline.  **Overdue**: not done and the deadline has passed.  **At risk**: not
  done, the deadline still ahead, and either not yet in a wave within ``at_risk_days`` of it, or
  in a wave whose window ends after it.
* A server room **closes** when an operator marks it closed, which is refused while any of its
  in-scope systems is not done.

Every figure takes ``today`` (the tests fix it); :func:`today` is the province's date now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from cloudmgr.audit import services as audit
from cloudmgr.db import utcnow
from cloudmgr.errors import NotFound, PermissionDenied
from cloudmgr.inventory.models import DONE_STATES, LegacySystem, ServerRoom, SystemState
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Department, Role
from cloudmgr.programme.config import ProgrammeConfig
from cloudmgr.programme.errors import RoomNotEmpty, RoomNotFound
from cloudmgr.programme.models import MigrationWave, MigrationWaveMember, ProgrammeSnapshot

PROVINCE_TZ = ZoneInfo("Asia/Shanghai")
NOT_IN_WAVE = frozenset({SystemState.LEGACY, SystemState.ROLLED_BACK})
PROVINCE = "province"


def today() -> date:
    """Today in the province (UTC+8)."""
    return datetime.now(PROVINCE_TZ).date()


def in_scope(system: LegacySystem) -> bool:
    return system.classification != "classified" and system.network in {"internet", "extranet"}


def deadline_of(system: LegacySystem, config: ProgrammeConfig) -> date:
    return system.due_date or config.cloud.date


@dataclass
class Row:
    """Progress of one group (a department, a city, a county)."""

    key: str
    name_zh: str
    name_en: str
    in_scope: int = 0
    done: int = 0
    overdue: int = 0
    at_risk: int = 0
    department_id: int | None = None

    @property
    def remaining(self) -> int:
        return self.in_scope - self.done

    @property
    def pct(self) -> int:
        """Done, in whole percent (rounded down: 100 only when everything is done)."""
        return 100 * self.done // self.in_scope if self.in_scope else 100

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_zh

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "in_scope": self.in_scope,
            "done": self.done,
            "remaining": self.remaining,
            "overdue": self.overdue,
            "at_risk": self.at_risk,
            "percent_done": self.pct,
        }


@dataclass(frozen=True)
class Flagged:
    """An overdue or at-risk system."""

    system_id: int
    hostname: str
    department_key: str
    department_zh: str
    department_en: str
    state: str
    deadline: date
    days: int  # overdue: days late; at risk: days left
    reason: str  # "overdue" | "not_in_wave" | "wave_too_late"
    wave_id: int | None = None

    def department(self, locale: str) -> str:
        return self.department_en if locale == "en" else self.department_zh

    def as_dict(self) -> dict[str, Any]:
        return {
            "system_id": self.system_id,
            "hostname": self.hostname,
            "department": self.department_key,
            "state": self.state,
            "deadline": self.deadline.isoformat(),
            "days": self.days,
            "reason": self.reason,
            "wave_id": self.wave_id,
        }


@dataclass(frozen=True)
class RoomRow:
    id: int
    code: str
    name_zh: str
    name_en: str
    department_key: str
    department_id: int
    systems: int
    in_scope: int
    remaining: int  # in-scope systems not done
    closed_at: datetime | None
    closed_by: str | None

    @property
    def closable(self) -> bool:
        return self.closed_at is None and self.remaining == 0

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_zh

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "department": self.department_key,
            "systems": self.systems,
            "in_scope": self.in_scope,
            "remaining": self.remaining,
            "closed": self.closed_at is not None,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "closed_by": self.closed_by,
        }


@dataclass
class Figures:
    today: date
    config: ProgrammeConfig
    in_scope: int = 0
    done: int = 0
    out_of_scope: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    departments: list[Row] = field(default_factory=list)
    cities: list[Row] = field(default_factory=list)
    counties: list[Row] = field(default_factory=list)
    overdue: list[Flagged] = field(default_factory=list)
    at_risk: list[Flagged] = field(default_factory=list)
    rooms: list[RoomRow] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.in_scope - self.done

    @property
    def pct(self) -> int:
        return 100 * self.done // self.in_scope if self.in_scope else 100

    @property
    def rooms_closed(self) -> int:
        return sum(1 for r in self.rooms if r.closed_at is not None)

    @property
    def days_past_deadline(self) -> int:
        return max((self.today - self.config.cloud.date).days, 0)

    def summary(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "in_scope": self.in_scope,
            "done": self.done,
            "remaining": self.remaining,
            "percent_done": self.pct,
            "out_of_scope": self.out_of_scope,
            "overdue": len(self.overdue),
            "at_risk": len(self.at_risk),
            "by_state": dict(sorted(self.by_state.items())),
            "rooms_total": len(self.rooms),
            "rooms_closed": self.rooms_closed,
        }


def _open_waves(session: Session) -> dict[int, MigrationWave]:
    rows = session.execute(
        select(MigrationWaveMember.system_id, MigrationWave)
        .join(MigrationWave, MigrationWave.id == MigrationWaveMember.wave_id)
        .where(MigrationWaveMember.active.is_(True))
    ).all()
    return {system_id: wave for system_id, wave in rows}


def _place_rows(departments: Sequence[Department], dept_rows: dict[int, Row]) -> tuple[list[Row], list[Row]]:
    cities: dict[str, Row] = {}
    counties: dict[str, Row] = {}
    for dept in departments:
        row = dept_rows.get(dept.id)
        if row is None or row.in_scope == 0:
            continue
        city_key = dept.city or PROVINCE
        targets = [cities.setdefault(city_key, Row(city_key, city_key, city_key))]
        if dept.county:
            county_key = f"{dept.city or PROVINCE}/{dept.county}"
            targets.append(counties.setdefault(county_key, Row(county_key, dept.county, dept.county)))
        for target in targets:
            target.in_scope += row.in_scope
            target.done += row.done
            target.overdue += row.overdue
            target.at_risk += row.at_risk
    return sorted(cities.values(), key=lambda r: (r.key != PROVINCE, r.key)), sorted(
        counties.values(), key=lambda r: r.key
    )


def visible_department(session: Session, actor: Actor, department_key: str | None = None) -> Department | None:
    """Whose figures ``actor`` reads: a department user their own department's only, whatever
    they ask for; operators and finance the department they name (None: the whole programme)."""
    if actor.is_department:
        own = session.get(Department, actor.department_id) if actor.department_id is not None else None
        if own is None:
            raise PermissionDenied("a department user without a department sees no programme")
        return own
    if department_key is None:
        return None
    department = session.scalar(select(Department).where(Department.key == department_key))
    if department is None:
        raise NotFound(f"no department {department_key!r}")
    return department


def compute(session: Session, config: ProgrammeConfig, when: date, *, department_id: int | None = None) -> Figures:
    """All the programme's figures on ``when`` (one department's when ``department_id`` is given)."""
    query = select(LegacySystem).options(joinedload(LegacySystem.department))
    dept_query = select(Department).order_by(Department.key)
    if department_id is not None:
        query = query.where(LegacySystem.department_id == department_id)
        dept_query = dept_query.where(Department.id == department_id)
    systems = session.scalars(query).unique().all()
    departments = session.scalars(dept_query).all()
    waves = _open_waves(session)
    figures = Figures(when, config)
    dept_rows: dict[int, Row] = {d.id: Row(d.key, d.name_zh, d.name_en, department_id=d.id) for d in departments}
    by_state: Counter[str] = Counter()
    room_counts: dict[int, list[int]] = {}  # room id -> [systems, in scope, remaining]
    for system in systems:
        by_state[system.state] += 1
        counts = room_counts.setdefault(system.server_room_id, [0, 0, 0])
        counts[0] += 1
        if not in_scope(system):
            figures.out_of_scope += 1
            continue
        counts[1] += 1
        # a system of a department outside ``departments`` still counts, under its own row
        row = dept_rows.setdefault(
            system.department_id,
            Row(system.department.key, system.department.name_zh, system.department.name_en),
        )
        row.in_scope += 1
        figures.in_scope += 1
        if system.state in DONE_STATES:
            row.done += 1
            figures.done += 1
            continue
        counts[2] += 1
        flagged = _flag(system, config, when, waves.get(system.id))
        if flagged is None:
            continue
        if flagged.reason == "overdue":
            row.overdue += 1
            figures.overdue.append(flagged)
        else:
            row.at_risk += 1
            figures.at_risk.append(flagged)
    figures.by_state = dict(by_state)
    figures.departments = sorted((r for r in dept_rows.values() if r.in_scope), key=lambda r: (-r.remaining, r.key))
    figures.cities, figures.counties = _place_rows(departments, dept_rows)
    figures.overdue.sort(key=lambda f: (-f.days, f.department_key, f.hostname))
    figures.at_risk.sort(key=lambda f: (f.days, f.department_key, f.hostname))
    figures.rooms = _room_rows(session, room_counts, department_id)
    return figures


def _flag(system: LegacySystem, config: ProgrammeConfig, when: date, wave: MigrationWave | None) -> Flagged | None:
    """An in-scope system not done: overdue once its deadline has passed; at risk when it is
    in no wave yet and the deadline is near, or when its wave ends after the deadline; else
    None."""
    deadline = deadline_of(system, config)
    if deadline < when:
        reason, days = "overdue", (when - deadline).days
    elif system.state in NOT_IN_WAVE and (deadline - when).days <= config.at_risk_days:
        reason, days = "not_in_wave", (deadline - when).days
    elif wave is not None and wave.window_end > deadline:
        reason, days = "wave_too_late", (deadline - when).days
    else:
        return None
    return Flagged(
        system.id,
        system.hostname,
        system.department.key,
        system.department.name_zh,
        system.department.name_en,
        system.state,
        deadline,
        days,
        reason,
        wave.id if wave else None,
    )


def _room_rows(session: Session, room_counts: dict[int, list[int]], department_id: int | None) -> list[RoomRow]:
    """The server rooms (one department's when ``department_id`` is given) with their counts
    of systems, open ones with the most remaining first, closed ones last."""
    rooms_query = select(ServerRoom).options(joinedload(ServerRoom.department))
    if department_id is not None:
        rooms_query = rooms_query.where(ServerRoom.department_id == department_id)
    rows = []
    for room in session.scalars(rooms_query).unique():
        systems_n, scope_n, remaining_n = room_counts.get(room.id, [0, 0, 0])
        rows.append(
            RoomRow(
                room.id,
                room.code,
                room.name_zh,
                room.name_en,
                room.department.key,
                room.department_id,
                systems_n,
                scope_n,
                remaining_n,
                room.closed_at,
                room.closed_by,
            )
        )
    rows.sort(key=lambda r: (r.closed_at is not None, -r.remaining, r.code))
    return rows


# --- server rooms --------------------------------------------------------------------------------


def may_close_room(actor: Actor) -> bool:
    """Operators close server rooms; finance and departments read the programme only."""
    return actor.role == Role.OPERATOR


def close_room(session: Session, room_id: int, *, actor: Actor) -> ServerRoom:
    """Mark a server room closed: refused while any of its in-scope systems is not done."""
    if not may_close_room(actor):
        raise PermissionDenied("only operators close server rooms")
    room = session.get(ServerRoom, room_id)
    if room is None:
        raise RoomNotFound(f"no server room {room_id}")
    if room.closed_at is not None:
        raise RoomNotEmpty(f"server room {room.code} was closed on {room.closed_at:%Y-%m-%d} by {room.closed_by}")
    left = [
        s.hostname
        for s in session.scalars(
            select(LegacySystem).where(LegacySystem.server_room_id == room.id).order_by(LegacySystem.hostname)
        )
        if in_scope(s) and s.state not in DONE_STATES
    ]
    if left:
        shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        raise RoomNotEmpty(f"server room {room.code} still has {len(left)} systems not on the cloud: {shown}")
    username = actor.username
    room.closed_at, room.closed_by = utcnow(), username
    audit.record(
        session,
        actor=username,
        action="server_room.close",
        target_type="server_room",
        target_id=room.id,
        detail={"code": room.code},
    )
    return room


# --- snapshots and the burndown ------------------------------------------------------------------


def snapshot_figures(figures: Figures) -> dict[str, Any]:
    return {
        **figures.summary(),
        "departments": {r.key: {"in_scope": r.in_scope, "remaining": r.remaining} for r in figures.departments},
    }


def take_snapshot(session: Session, config: ProgrammeConfig, when: date) -> tuple[ProgrammeSnapshot, bool]:
    """Store the day's figures; run again the same day, it updates that day's row (one per day).
    Returns the snapshot and whether it was new."""
    figures = snapshot_figures(compute(session, config, when))
    snapshot = session.scalar(select(ProgrammeSnapshot).where(ProgrammeSnapshot.taken_on == when))
    if snapshot is not None:
        snapshot.figures, snapshot.taken_at = figures, utcnow()
        return snapshot, False
    snapshot = ProgrammeSnapshot(taken_on=when, figures=figures, taken_at=utcnow())
    session.add(snapshot)
    session.flush()
    return snapshot, True


@dataclass
class Burndown:
    start: date
    deadline: date
    today: date
    total: int  # in scope now: the ideal line starts from it
    points: list[tuple[date, int]]  # remaining in-scope systems, per day or week
    period: str

    @property
    def ideal(self) -> list[tuple[date, int]]:
        return [(self.start, self.total), (self.deadline, 0)]

    def ideal_on(self, day: date) -> int:
        """What the ideal line says should remain on ``day``."""
        if day >= self.deadline:
            return 0
        if day <= self.start:
            return self.total
        span = (self.deadline - self.start).days
        return round(self.total * (self.deadline - day).days / span)

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "start": self.start.isoformat(),
            "deadline": self.deadline.isoformat(),
            "today": self.today.isoformat(),
            "in_scope": self.total,
            "actual": [{"date": d.isoformat(), "remaining": n} for d, n in self.points],
            "ideal": [{"date": d.isoformat(), "remaining": n} for d, n in self.ideal],
        }


def burndown(
    session: Session,
    config: ProgrammeConfig,
    figures: Figures,
    *,
    period: str = "day",
    department_key: str | None = None,
) -> Burndown:
    """Remaining in-scope systems from the snapshots (and today's live figure), per day or per
    ISO week (the week's last snapshot), against the ideal line from the start to the deadline."""
    if period not in {"day", "week"}:
        raise ValueError("period is day or week")
    points: dict[date, int] = {}
    query = select(ProgrammeSnapshot).where(ProgrammeSnapshot.taken_on <= figures.today)
    for snap in session.scalars(query.order_by(ProgrammeSnapshot.taken_on)):
        if department_key is None:
            remaining = snap.figures.get("remaining")
        else:
            remaining = (snap.figures.get("departments", {}).get(department_key) or {}).get("remaining", 0)
        if isinstance(remaining, int):
            points[snap.taken_on] = remaining
    points[figures.today] = figures.remaining  # the live figure wins over a snapshot of today
    series = sorted(points.items())
    if period == "week":
        weekly: dict[tuple[int, int], tuple[date, int]] = {}
        for day, n in series:
            weekly[day.isocalendar()[:2]] = (day, n)
        series = sorted(weekly.values())
    return Burndown(config.start, config.cloud.date, figures.today, figures.in_scope, series, period)
