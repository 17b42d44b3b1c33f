"""The province demo's past (:mod:`cloudmgr.programme.demo`): waves finished months ago, and the weekly
programme and capacity snapshots their dates give.

A history wave goes through the real wave machinery (created, checked against the simulated cloud,
started), its systems' VMs are booted on the simulated cloud with the flavors its check chose, and
the systems land on the cloud with a reason saying that no runbook ran for them here.  The snapshots
before today are drawn from those dates: a system counts as done from the day its wave finished,
and a cloud's used capacity grows by its VM's flavor that day.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from cloudmgr.capacity.models import CapacitySnapshot
from cloudmgr.config import Settings
from cloudmgr.db import Database
from cloudmgr.inventory.models import DONE_STATES, LegacySystem, SystemState
from cloudmgr.inventory.services import transition_system
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.programme import tracking
from cloudmgr.programme.config import ProgrammeConfig
from cloudmgr.programme.models import MigrationWave, ProgrammeSnapshot
from cloudmgr.programme.waves import start_wave
from cloudmgr.providers import ProviderRegistry


def history_reason(wave_id: int) -> Message:
    return message(
        N_("demo history: moved in wave #%(id)s before this demo began (its VM booted by seed-demo; no runbook ran)"),
        id=wave_id,
    )


def province_time(day: date, hour: int) -> datetime:
    """``hour`` o'clock in the province on ``day``, in UTC."""
    return datetime.combine(day, time(hour), tzinfo=tracking.PROVINCE_TZ).astimezone(UTC)


def land_history_wave(
    db: Database, registry: ProviderRegistry, wave_id: int, finished_on: date, *, actor: Actor
) -> list[str]:
    """Start the checked wave, boot its systems' VMs on the simulated cloud and put the systems on the
    cloud as of ``finished_on``; returns their hostnames.  (The work items the start queued find the
    systems on the cloud and do nothing.)"""
    from cloudmgr.runbooks.execution import _boot_plan

    with db.unit_of_work() as uow:
        wave = start_wave(uow.session, wave_id, actor=actor)
        plans = [(member.system_id, _boot_plan(uow.session, member.system, wave_id, actor)) for member in wave.members]
    booted = {}
    for system_id, plan in plans:  # outside any transaction: cloud calls
        provider = registry.for_cloud(plan.cloud_key, plan.os_cloud, plan.region)
        server = provider.create_server(plan.project_id, plan.spec)
        booted[system_id] = (provider.wait_for_server(server.id, {"ACTIVE"}, timeout=60).id, plan.cloud_id)
    landed = []
    with db.unit_of_work() as uow:
        for system_id, (server_id, cloud_id) in booted.items():
            system = uow.session.get(LegacySystem, system_id)
            assert system is not None
            system.cloud_server_id, system.target_cloud_id = server_id, cloud_id
            transition_system(uow.session, system, SystemState.ON_CLOUD, actor=actor, reason=history_reason(wave_id))
            system.migrated_at = province_time(finished_on, 17)
            landed.append(system.hostname)
    return landed


def _schedule(start: date, today: date, every: int) -> list[date]:
    days = []
    day = start
    while day < today:
        days.append(day)
        day += timedelta(days=every)
    return days


def backfill_snapshots(db: Database, config: ProgrammeConfig, today: date, start_days: int, every: int) -> int:
    """Programme snapshots every ``every`` days from ``start_days`` ago until yesterday (days that have
    one keep it), then today's; returns how many were added before today."""
    added = 0
    with db.unit_of_work() as uow:
        session = uow.session
        live = tracking.compute(session, config, today)
        systems = [s for s in session.scalars(select(LegacySystem)) if tracking.in_scope(s)]
        rows = {r.key: r for r in live.departments}
        taken = set(session.scalars(select(ProgrammeSnapshot.taken_on)))
        for day in _schedule(today + timedelta(days=start_days), today, every):
            if day in taken:
                continue
            session.add(
                ProgrammeSnapshot(
                    taken_on=day, figures=_figures_on(day, systems, live, rows, config), taken_at=province_time(day, 23)
                )
            )
            added += 1
        tracking.take_snapshot(session, config, today)
    return added


def _done_on(system: LegacySystem, day: date) -> bool:
    return (
        system.state in DONE_STATES
        and system.migrated_at is not None
        and system.migrated_at.astimezone(tracking.PROVINCE_TZ).date() <= day
    )


def _figures_on(
    day: date,
    systems: list[LegacySystem],
    live: tracking.Figures,
    rows: dict[str, tracking.Row],
    config: ProgrammeConfig,
) -> dict[str, Any]:
    done = [s for s in systems if _done_on(s, day)]
    done_by_department = Counter(s.department.key for s in done)
    overdue = sum(1 for s in systems if not _done_on(s, day) and tracking.deadline_of(s, config) < day)
    states = Counter(SystemState.ON_CLOUD.value if _done_on(s, day) else SystemState.LEGACY.value for s in systems)
    in_scope = live.in_scope
    return {
        "today": day.isoformat(),
        "in_scope": in_scope,
        "done": len(done),
        "remaining": in_scope - len(done),
        "percent_done": 100 * len(done) // in_scope if in_scope else 100,
        "out_of_scope": live.out_of_scope,
        "overdue": overdue,
        "at_risk": 0,
        "by_state": dict(sorted(states.items())),
        "rooms_total": len(live.rooms),
        "rooms_closed": 0,
        "departments": {
            key: {"in_scope": row.in_scope, "remaining": row.in_scope - done_by_department[key]}
            for key, row in rows.items()
        },
    }


def backfill_capacity(
    db: Database, registry: ProviderRegistry, settings: Settings, today: date, start_days: int, every: int
) -> int:
    """Read the clouds' capacity now (a real snapshot), then copy each source's snapshot back every
    ``every`` days, less the VMs of the systems that were not yet on the cloud read; returns the copies."""
    from cloudmgr.capacity.config import read_capacity_file
    from cloudmgr.capacity.services import take_snapshots

    with db.unit_of_work() as uow:
        keys = set(uow.session.scalars(select(Cloud.key)))
    take_snapshots(db, registry, read_capacity_file(settings.capacity_file, keys or None))
    added = 0
    with db.unit_of_work() as uow:
        session = uow.session
        # each source's newest snapshot (a base may have several endpoints: count each one's)
        newest: dict[tuple[str, str, str], CapacitySnapshot] = {}
        for snap in session.scalars(select(CapacitySnapshot).order_by(CapacitySnapshot.taken_at)):
            newest[(snap.base, snap.source, snap.endpoint)] = snap
        demand = _vm_demand(session)
        for snap in newest.values():
            read_cloud = snap.clouds.split(",")[0]
            for day in _schedule(today + timedelta(days=start_days), today, every):
                later = [d for cloud, moved_on, d in demand if cloud == read_cloud and moved_on > day]
                session.add(
                    CapacitySnapshot(
                        taken_at=province_time(day, 3),
                        base=snap.base,
                        source=snap.source,
                        endpoint=snap.endpoint,
                        clouds=snap.clouds,
                        physical_servers=snap.physical_servers,
                        vcpus_total=snap.vcpus_total,
                        vcpus_used=max(snap.vcpus_used - sum(d[0] for d in later), 0),
                        ram_mb_total=snap.ram_mb_total,
                        ram_mb_used=max(snap.ram_mb_used - sum(d[1] for d in later), 0),
                        disk_gb_total=snap.disk_gb_total,
                        disk_gb_used=max(snap.disk_gb_used - sum(d[2] for d in later), 0),
                    )
                )
                added += 1
    return added


def _vm_demand(session: Any) -> list[tuple[str, date, tuple[int, int, int]]]:
    """(cloud key, day moved, (vCPUs, RAM MB, disk GB) of its flavor) of each system its wave moved."""
    out = []
    for wave in session.scalars(select(MigrationWave).where(MigrationWave.check_result.is_not(None))):
        sized = {s.get("system_id"): s for s in (wave.check_result or {}).get("systems", [])}
        for member in wave.members:
            system = member.system
            entry = sized.get(system.id) or {}
            if system.migrated_at is None or "vcpus" not in entry:
                continue
            moved_on = system.migrated_at.astimezone(tracking.PROVINCE_TZ).date()
            out.append((wave.cloud.key, moved_on, (entry["vcpus"], entry["ram_mb"], entry["disk_gb"])))
    return out
