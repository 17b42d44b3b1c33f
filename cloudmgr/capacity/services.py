"""Reading capacity from the clouds, importing what is outside them, and the trend against the targets."""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.audit import services as audit
from cloudmgr.capacity.config import CapacityConfig, Target
from cloudmgr.capacity.errors import CapacityCsvInvalid
from cloudmgr.capacity.models import CapacitySnapshot, HostCapacity
from cloudmgr.cloud import CloudError
from cloudmgr.db import Database, utcnow
from cloudmgr.errors import PermissionDenied
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Role
from cloudmgr.providers import ProviderRegistry
from cloudmgr.text import bidi_problem, has_bidi_control

log = logging.getLogger(__name__)

UNASSIGNED = "unassigned"
_CLASSES = (
    ("VCPU", "vcpus_total", "vcpus_used"),
    ("MEMORY_MB", "ram_mb_total", "ram_mb_used"),
    ("DISK_GB", "disk_gb_total", "disk_gb_used"),
)
_FIELDS = tuple(name for _cls, total, used in _CLASSES for name in (total, used))


@dataclass
class SnapshotResult:
    snapshots: int = 0
    hosts: int = 0
    problems: list[str] = field(default_factory=list)


def take_snapshots(db: Database, registry: ProviderRegistry, config: CapacityConfig) -> SnapshotResult:
    """Read every OpenStack endpoint's Placement providers once and store a snapshot of each."""
    result = SnapshotResult()
    with db.unit_of_work() as uow:
        endpoints: dict[tuple[str, str | None], list[str]] = defaultdict(list)
        for cloud in uow.session.scalars(select(Cloud).where(Cloud.enabled).order_by(Cloud.id)):
            endpoints[(cloud.os_cloud, cloud.region)].append(cloud.key)
    seen_providers: set[str] = set()
    now = utcnow()
    for (os_cloud, region), cloud_keys in endpoints.items():
        endpoint = f"{os_cloud}/{region or '-'}"
        bases = {config.base_of_cloud(k) or UNASSIGNED for k in cloud_keys}
        base = sorted(bases)[0]
        if len(bases) > 1:
            several = ", ".join(sorted(bases))
            result.problems.append(f"{endpoint} serves clouds of several bases ({several}); counted in {base}")
        aggregate_bases = config.aggregate_bases(cloud_keys)
        try:
            provider = registry.for_cloud(cloud_keys[0], os_cloud, region)
            # Placement's bulk-most read of every host (see CloudProvider.capacity_snapshot).
            providers = provider.capacity_snapshot().providers
            hypervisors = provider.list_hypervisors()
            aggregates = provider.list_aggregates() if aggregate_bases else []
        except CloudError as exc:
            result.problems.append(f"{endpoint}: {exc}")
            continue
        states = {h.name: h.state for h in hypervisors}
        service_host = {h.name: h.host for h in hypervisors}  # hypervisor name -> compute service host
        base_of_host: dict[str, str] = {}
        for aggregate in aggregates:
            if aggregate.name in aggregate_bases:
                for host in aggregate.hosts:
                    base_of_host[host] = aggregate_bases[aggregate.name]
        missing = set(aggregate_bases) - {a.name for a in aggregates}
        if missing:
            result.problems.append(f"{endpoint}: no host aggregate {', '.join(sorted(missing))}")
        fresh = [p for p in providers if p.id not in seen_providers]
        if len(fresh) < len(providers):
            # Two clouds.yaml entries can reach one control plane: never count a host twice.
            result.problems.append(f"{endpoint}: {len(providers) - len(fresh)} hosts already counted")
        seen_providers.update(p.id for p in providers)
        by_base: dict[str, list[Any]] = defaultdict(list)
        for rp in fresh:
            by_base[base_of_host.get(service_host.get(rp.name, rp.name), base)].append(rp)
        if not by_base:
            by_base[base] = []
        for snapshot_base, members in sorted(by_base.items()):
            snapshot = CapacitySnapshot(
                taken_at=now,
                base=snapshot_base,
                source="placement",
                endpoint=endpoint,
                clouds=",".join(cloud_keys),
                physical_servers=len(members),
            )
            sums = dict.fromkeys(_FIELDS, 0)
            for rp in members:
                values = {}
                for cls, total_attr, used_attr in _CLASSES:
                    inventory = rp.inventories.get(cls)
                    values[total_attr] = inventory.capacity if inventory else 0
                    values[used_attr] = rp.usages.get(cls, 0)
                for name, value in values.items():
                    sums[name] += value
                snapshot.hosts.append(HostCapacity(name=rp.name, state=states.get(rp.name, "up"), **values))
            for name, value in sums.items():
                setattr(snapshot, name, value)
            with db.unit_of_work() as uow:
                uow.session.add(snapshot)
            result.snapshots += 1
        result.hosts += len(fresh)
    return result


CSV_COLUMNS = ("base", "date", "physical_servers", "vcpus", "ram_gb", "disk_gb")
CSV_OPTIONAL = ("vcpus_used", "ram_gb_used", "disk_gb_used", "label")


def may_change_capacity(actor: Actor) -> bool:
    """Operators take snapshots and import capacity; finance reads the page only."""
    return actor.role == Role.OPERATOR


def import_csv(session: Session, config: CapacityConfig, text: str, *, source_name: str, actor: Actor) -> int:
    """Capacity outside OpenStack, one row per base and date.  All rows or none."""
    if not may_change_capacity(actor):
        raise PermissionDenied("only operators import capacity")
    try:
        return _import_csv(session, config, text, source_name=source_name, actor=actor)
    except csv.Error as exc:  # a malformed file (an endless field, a stray NUL byte…)
        raise CapacityCsvInvalid(f"{source_name}: not a readable CSV file: {exc}") from exc


def _import_csv(session: Session, config: CapacityConfig, text: str, *, source_name: str, actor: Actor) -> int:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise CapacityCsvInvalid(
            f"{source_name}:1: missing columns {', '.join(missing)} (need {', '.join(CSV_COLUMNS)})"
        )
    known_bases = {b.key for b in config.bases}
    problems: list[str] = []
    rows: list[CapacitySnapshot] = []
    if has_bidi_control(source_name):
        raise CapacityCsvInvalid(bidi_problem("the file name", source_name) or "")
    for line, raw in enumerate(reader, start=2):
        where = f"{source_name}:{line}"
        bidi = [p for c, v in raw.items() if isinstance(v, str) and (p := bidi_problem(str(c), v)) is not None]
        if bidi:
            problems.extend(f"{where}: {p}" for p in bidi)
            continue
        base = (raw.get("base") or "").strip()
        if base not in known_bases:
            problems.append(f"{where}: unknown base {base!r}")
            continue
        try:
            when = date.fromisoformat((raw.get("date") or "").strip())
        except ValueError:
            problems.append(f"{where}: date must be YYYY-MM-DD, not {raw.get('date')!r}")
            continue
        numbers: dict[str, int] = {}
        for column in CSV_COLUMNS[2:] + CSV_OPTIONAL[:3]:
            value = (raw.get(column) or "").strip()
            if value == "" and column in CSV_OPTIONAL:
                numbers[column] = 0
                continue
            try:
                numbers[column] = int(value)
            except ValueError:
                problems.append(f"{where}: {column} must be a whole number, not {value!r}")
                break
            if numbers[column] < 0:
                problems.append(f"{where}: {column} must not be negative")
                break
        else:
            for used, total in (("vcpus_used", "vcpus"), ("ram_gb_used", "ram_gb"), ("disk_gb_used", "disk_gb")):
                if numbers[used] > numbers[total]:
                    problems.append(f"{where}: {used} is more than {total}")
            rows.append(
                CapacitySnapshot(
                    taken_at=datetime(when.year, when.month, when.day, 12, tzinfo=UTC),
                    base=base,
                    source="csv",
                    endpoint=(raw.get("label") or source_name)[:255],
                    physical_servers=numbers["physical_servers"],
                    vcpus_total=numbers["vcpus"],
                    vcpus_used=numbers["vcpus_used"],
                    ram_mb_total=numbers["ram_gb"] * 1024,
                    ram_mb_used=numbers["ram_gb_used"] * 1024,
                    disk_gb_total=numbers["disk_gb"],
                    disk_gb_used=numbers["disk_gb_used"],
                )
            )
    if problems:
        raise CapacityCsvInvalid("\n".join(problems))
    if not rows:
        raise CapacityCsvInvalid(f"{source_name}: no rows")
    session.add_all(rows)
    audit.record(
        session,
        actor=actor.username,
        action="capacity.import",
        target_type="capacity",
        target_id=source_name,
        detail={"rows": len(rows)},
    )
    return len(rows)


# --- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    physical_servers: int = 0
    vcpus_total: int = 0
    vcpus_used: int = 0
    ram_mb_total: int = 0
    ram_mb_used: int = 0
    disk_gb_total: int = 0
    disk_gb_used: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[int, ...]:
        return (
            self.physical_servers,
            self.vcpus_total,
            self.vcpus_used,
            self.ram_mb_total,
            self.ram_mb_used,
            self.disk_gb_total,
            self.disk_gb_used,
        )

    @property
    def headroom(self) -> dict[str, int]:
        return {
            "vcpus": self.vcpus_total - self.vcpus_used,
            "ram_mb": self.ram_mb_total - self.ram_mb_used,
            "disk_gb": self.disk_gb_total - self.disk_gb_used,
        }


def _totals(s: CapacitySnapshot) -> Totals:
    return Totals(
        s.physical_servers, s.vcpus_total, s.vcpus_used, s.ram_mb_total, s.ram_mb_used, s.disk_gb_total, s.disk_gb_used
    )


def latest_snapshots(session: Session) -> Sequence[CapacitySnapshot]:
    """The newest snapshot of each (base, source, endpoint)."""
    newest = (
        select(
            CapacitySnapshot.base,
            CapacitySnapshot.source,
            CapacitySnapshot.endpoint,
            func.max(CapacitySnapshot.taken_at).label("taken_at"),
        )
        .group_by(CapacitySnapshot.base, CapacitySnapshot.source, CapacitySnapshot.endpoint)
        .subquery()
    )
    return session.scalars(
        select(CapacitySnapshot)
        .join(
            newest,
            (CapacitySnapshot.base == newest.c.base)
            & (CapacitySnapshot.source == newest.c.source)
            & (CapacitySnapshot.endpoint == newest.c.endpoint)
            & (CapacitySnapshot.taken_at == newest.c.taken_at),
        )
        .options(selectinload(CapacitySnapshot.hosts))
        .order_by(CapacitySnapshot.base, CapacitySnapshot.endpoint)
    ).all()


def totals_by_base(session: Session, config: CapacityConfig) -> dict[str, Totals]:
    totals = {b.key: Totals() for b in config.bases}
    for snapshot in latest_snapshots(session):
        totals[snapshot.base] = totals.get(snapshot.base, Totals()) + _totals(snapshot)
    return totals


def server_trend(session: Session) -> list[tuple[date, int]]:
    """Physical servers per day: for each day, the sum over sources of each one's last snapshot that day."""
    per_day: dict[date, dict[tuple[str, str, str], int]] = defaultdict(dict)
    for s in session.scalars(select(CapacitySnapshot).order_by(CapacitySnapshot.taken_at)):
        per_day[s.taken_at.date()][(s.base, s.source, s.endpoint)] = s.physical_servers
    trend: list[tuple[date, int]] = []
    carried: dict[tuple[str, str, str], int] = {}
    for day in sorted(per_day):
        carried.update(per_day[day])  # a source not read that day keeps its last value
        trend.append((day, sum(carried.values())))
    return trend


@dataclass(frozen=True)
class Forecast:
    target: Target
    current: int
    reached: bool
    expected: date | None  # None: not reached at the current rate (or not enough data)
    earliest: date | None
    latest: date | None
    servers_per_day: float | None
    points: int

    @property
    def on_time(self) -> bool | None:
        if self.reached:
            return True
        if self.expected is None:
            return False if self.servers_per_day is not None else None
        return self.expected <= self.target.date


def forecast(trend: Sequence[tuple[date, int]], target: Target) -> Forecast:
    """A least-squares line through the daily server counts, with the slope's ±2 standard errors as the range."""
    current = trend[-1][1] if trend else 0
    if current >= target.servers:
        return Forecast(target, current, True, None, None, None, None, len(trend))
    if len(trend) < 2:
        return Forecast(target, current, False, None, None, None, None, len(trend))
    origin = trend[0][0]
    xs = [(d - origin).days for d, _ in trend]
    ys = [float(v) for _, v in trend]
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return Forecast(target, current, False, None, None, None, None, n)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    residual = sum((y - (mean_y + slope * (x - mean_x))) ** 2 for x, y in zip(xs, ys, strict=True))
    se = math.sqrt(residual / (n - 2) / sxx) if n > 2 else 0.0

    def day_for(rate: float) -> date | None:
        if rate <= 0:
            return None
        # Lines of other slopes pivot on the data's centre, where the fit is surest.
        days = mean_x + (target.servers - mean_y) / rate
        if days > 365 * 100:
            return None
        return origin + timedelta(days=math.ceil(days))

    expected = day_for(slope)
    fast, slow = day_for(slope + 2 * se), day_for(slope - 2 * se)
    return Forecast(target, current, False, expected, fast, slow, slope, n)
