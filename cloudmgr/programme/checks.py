"""Checking a wave: its systems right-sized onto the cloud's flavors, against each
department's quota headroom and the cloud's free host capacity (:mod:`cloudmgr.programme.fit`).

:func:`check_wave` is job-shaped: it opens its own units of work and reads the cloud's
capacity between them; the result is stored on the wave.  :func:`evaluate` is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.cloud import CloudError, CloudProvider
from cloudmgr.db import Database, utcnow
from cloudmgr.inventory.models import LegacySystem, SystemState
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.programme import fit
from cloudmgr.programme.errors import WaveStateConflict
from cloudmgr.programme.models import WAVE_MACHINE, WaveState
from cloudmgr.programme.waves import (
    AUDIT_TARGET,
    SYSTEM_STATE_WORDS,
    ensure_editable,
    fit_failure_text,
    get_wave,
    members_easy_first,
)
from cloudmgr.providers import ProviderRegistry
from cloudmgr.quotas.models import QuotaLedgerRow


def _headroom(session: Session, department_ids: set[int], cloud_id: int) -> dict[int, dict[str, int] | None]:
    rows = session.scalars(
        select(QuotaLedgerRow).where(
            QuotaLedgerRow.cloud_id == cloud_id, QuotaLedgerRow.department_id.in_(department_ids)
        )
    )
    out: dict[int, dict[str, int] | None] = dict.fromkeys(department_ids)
    for row in rows:
        free = out.get(row.department_id)
        if free is None:
            free = out[row.department_id] = {}
        free[row.resource] = row.free
    return {k: (v if v and any(r in v for r in fit.QUOTA_RESOURCES) else None) for k, v in out.items()}


def _hosts(provider: CloudProvider) -> list[fit.HostFree]:
    disabled = {h.name for h in provider.list_hypervisors() if h.status != "enabled" or h.state != "up"}
    hosts = []
    for rp in provider.list_resource_providers():
        if rp.name in disabled:
            continue

        def total(cls: str, rp: Any = rp) -> int:
            inventory = rp.inventories.get(cls)
            return int(inventory.capacity) if inventory else 0

        hosts.append(
            fit.HostFree(
                name=rp.name,
                vcpus=max(rp.free("VCPU"), 0),
                ram_mb=max(rp.free("MEMORY_MB"), 0),
                disk_gb=max(rp.free("DISK_GB"), 0),
                total_vcpus=total("VCPU"),
                total_ram_mb=total("MEMORY_MB"),
                total_disk_gb=total("DISK_GB"),
                empty=not any(rp.usages.get(c, 0) for c in ("VCPU", "MEMORY_MB", "DISK_GB")),
            )
        )
    return hosts


def evaluate(
    sized: Sequence[fit.Sized],
    free_by_department: dict[str, dict[str, int] | None],
    hosts: Sequence[fit.HostFree] | None,
    problems: Sequence[str | Message],
) -> dict[str, Any]:
    """The stored check result (pure: the tests call it with made-up hosts too).

    Every sentence is stored in English (``reason``, ``problems``) and as a message to translate
    where it is shown (``message``, ``problem_messages``)."""
    unplaced = [
        _unplaced(
            s.system.system_id,
            s.system.hostname,
            message(
                N_("no flavor of the cloud's catalog holds %(vcpus)s vCPUs and %(ram_gb)s GB RAM (right-sized)"),
                vcpus=s.want_vcpus,
                ram_gb=f"{s.want_ram_mb / fit.MIB_PER_GB:g}",
            ),
        )
        for s in sized
        if s.flavor is None
    ]
    quota = [line.as_dict() for line in fit.quota_lines(sized, free_by_department)]
    capacity: dict[str, Any] = {"read": hosts is not None}
    placeable = [s for s in sized if s.flavor is not None]
    demand = [s.demand for s in placeable]
    if hosts is not None:
        placement = fit.place([(s.system.hostname, s.demand) for s in placeable], hosts)
        ids = {s.system.hostname: s.system.system_id for s in placeable}
        demand_of = {s.system.hostname: s.demand for s in placeable}
        unplaced += [
            _unplaced(ids[h], h, fit.unplaced_message(demand_of[h], hosts)) for h, _reason in placement.unplaced
        ]
        capacity.update(
            hosts=len(hosts),
            hosts_free=sum(1 for h in hosts if h.empty),
            hosts_used=len(set(placement.assign.values())),
            hosts_needed=fit.hosts_needed(demand, hosts),
            method=placement.method,
            free={
                "vcpus": sum(h.vcpus for h in hosts),
                "ram_mb": sum(h.ram_mb for h in hosts),
                "disk_gb": sum(h.disk_gb for h in hosts),
            },
            placements=placement.assign,
        )
    capacity["demand"] = {
        "vcpus": sum(d[0] for d in demand),
        "ram_mb": sum(d[1] for d in demand),
        "disk_gb": sum(d[2] for d in demand),
    }
    fits = not problems and hosts is not None and not unplaced and all(q["ok"] for q in quota) and bool(sized)
    return {
        "fits": fits,
        "systems": [s.as_dict() for s in sized],
        "quota": quota,
        "capacity": capacity,
        "unplaced": sorted(unplaced, key=lambda u: u["hostname"]),
        "problems": [str(p) for p in problems],
        "problem_messages": [(p if isinstance(p, Message) else Message(p)).as_dict() for p in problems],
    }


def _unplaced(system_id: int, hostname: str, why: Message) -> dict[str, Any]:
    return {"system_id": system_id, "hostname": hostname, "reason": str(why), "message": why.as_dict()}


@dataclass(frozen=True)
class _CheckInput:
    """What the check needs of the wave, read in one short unit of work."""

    member_ids: list[int]
    sizes: list[fit.SystemSize]
    flavors: list[fit.FlavorOption]
    free_by_department: dict[str, dict[str, int] | None]
    dependencies: dict[str, list[str]]
    cloud_key: str
    provider: CloudProvider


def check_wave(db: Database, registry: ProviderRegistry, wave_id: int, *, actor: Actor) -> dict[str, Any]:
    """Check the wave against the quota ledger and the cloud's free capacity; store the result.

    Opens its own units of work (it reads the cloud between them): call it outside any other.
    """
    with db.unit_of_work() as uow:
        wanted = _read_wave(uow.session, registry, wave_id)
    problems: list[Message] = []
    if not wanted.sizes:
        problems.append(Message(N_("the wave has no systems")))
    if not wanted.flavors:
        problems.append(
            message(N_("cloud %(cloud)s has no flavors in the catalog (sync the cloud)"), cloud=wanted.cloud_key)
        )
    hosts: list[fit.HostFree] | None = None
    try:
        hosts = _hosts(wanted.provider)
    except CloudError as exc:
        problems.append(
            message(
                N_("the capacity of cloud %(cloud)s could not be read: %(error)s"),
                cloud=wanted.cloud_key,
                error=str(exc),
            )
        )
    result = evaluate(fit.size_systems(wanted.sizes, wanted.flavors), wanted.free_by_department, hosts, problems)
    with db.unit_of_work() as uow:
        _store_result(uow.session, wave_id, wanted, result, actor)
    return result


def _read_wave(session: Session, registry: ProviderRegistry, wave_id: int) -> _CheckInput:
    wave = get_wave(session, wave_id)
    ensure_editable(wave)
    systems = members_easy_first(session, wave)
    flavors = [
        fit.FlavorOption(i.cloud_name, i.vcpus, i.ram_mb, i.disk_gb, i.offered)
        for i in session.scalars(
            select(CatalogItem).where(
                CatalogItem.cloud_id == wave.cloud_id,
                CatalogItem.kind == ItemKind.FLAVOR.value,
                CatalogItem.available.is_(True),
            )
        )
        if i.vcpus > 0 and i.ram_mb > 0
    ]
    departments = {s.department_id: s.department.key for s in systems}
    headroom = _headroom(session, set(departments), wave.cloud_id)
    cloud = wave.cloud
    return _CheckInput(
        member_ids=sorted(s.id for s in systems),
        sizes=[
            fit.SystemSize(
                s.id, s.hostname, s.department.key, s.vcpus, s.ram_mb, s.disk_gb, s.cpu_p95_pct, s.ram_p95_pct
            )
            for s in systems
        ],
        flavors=flavors,
        free_by_department={departments[k]: v for k, v in headroom.items()},
        dependencies={s.hostname: list(s.dependencies or []) for s in systems},
        cloud_key=cloud.key,
        provider=registry.for_cloud(cloud.key, cloud.os_cloud, cloud.region),
    )


def _store_result(session: Session, wave_id: int, wanted: _CheckInput, result: dict[str, Any], actor: Actor) -> None:
    """The result on the wave (checked when it fits, a draft with the reason when not),
    unless its systems changed while the cloud was read."""
    wave = get_wave(session, wave_id, for_update=True)
    ensure_editable(wave)
    if sorted(m.system_id for m in wave.members) != wanted.member_ids:
        raise WaveStateConflict(f"the systems of wave {wave.id} changed during the check: check again")
    warnings = _dependency_warnings(session, wanted.dependencies, set(wanted.dependencies))
    result["warnings"] = [str(w) for w in warnings]
    result["warning_messages"] = [w.as_dict() for w in warnings]
    now = utcnow()
    result.update(members=wanted.member_ids, checked_at=now.isoformat(), checked_by=actor.username)
    wave.check_result = result
    wave.checked_by, wave.checked_at = actor.username, now
    if result["fits"]:
        WAVE_MACHINE.apply(wave, WaveState.CHECKED, wave_id=wave.id)
        wave.state_reason = None
    else:
        WAVE_MACHINE.apply(wave, WaveState.DRAFT, wave_id=wave.id)
        wave.state_reason = fit_failure_text(result)[:1000]
    audit.record(
        session,
        actor=actor.username,
        action="wave.check",
        target_type=AUDIT_TARGET,
        target_id=wave.id,
        detail={
            "fits": result["fits"],
            "unplaced": len(result["unplaced"]),
            "quota_short": [q["department"] for q in result["quota"] if not q["ok"]],
        },
    )


def _dependency_warnings(session: Session, dependencies: dict[str, list[str]], members: set[str]) -> list[Message]:
    """Dependencies left behind: neither in this wave nor already on the cloud."""
    wanted = {d for deps in dependencies.values() for d in deps if d not in members}
    if not wanted:
        return []
    state_of: dict[str, str] = {
        host: state
        for host, state in session.execute(
            select(LegacySystem.hostname, LegacySystem.state).where(LegacySystem.hostname.in_(wanted))
        )
    }
    warnings = []
    for host, deps in sorted(dependencies.items()):
        for dep in deps:
            if dep in members:
                continue
            state = state_of.get(dep)
            if state is None:
                warnings.append(
                    message(N_("%(host)s depends on %(dep)s, which is not in the inventory"), host=host, dep=dep)
                )
            elif state not in {SystemState.ON_CLOUD, SystemState.DECOMMISSIONED}:
                warnings.append(
                    message(
                        N_("%(host)s depends on %(dep)s (%(state)s), which stays behind"),
                        host=host,
                        dep=dep,
                        state=Message(SYSTEM_STATE_WORDS.get(str(state), str(state))),
                    )
                )
    return warnings
