"""In-cloud consolidation: plan from the live placement, then live-migrate in waves, with a stop.

The plan comes from the planner's pure ``plan_migration`` (a drain plan: every move goes
straight to its final host and kept hosts never lose a VM, so the run can stop between any
two waves and every intermediate state fits).  A run is an explicit state machine:
planned → running → (stopping →) stopped | done | failed.  Each wave is one work item;
a move already done (the server is on its target) is skipped, so a resumed wave never
moves a server twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.capacity.models import ConsolidationRun, RunState
from cloudmgr.cloud import CloudError, CloudProvider, CloudUnavailable
from cloudmgr.db import Database, utcnow
from cloudmgr.errors import Conflict, NotFound, ValidationFailed
from cloudmgr.organisation.models import Cloud
from cloudmgr.providers import ProviderRegistry
from cloudmgr.runtime import get_runtime
from cloudmgr.workqueue.services import ClaimedItem, RetryLater, enqueue

if TYPE_CHECKING:
    from cloudmgr.capacity.planner.migration import HostState, VmState

log = logging.getLogger(__name__)


class RunNotFound(NotFound):
    code = "consolidation_run_not_found"


class RunStateConflict(Conflict):
    code = "consolidation_run_state"


def live_state(provider: CloudProvider) -> tuple[list[HostState], list[VmState], dict[str, str]]:
    """Hosts with their bookable capacity and the VMs on them, as the cloud has them now.
    Returns the planner's input and a map from VM name (the server id) to its display name."""
    # The planner brings numpy and OR-Tools: imported when a plan is made, not at start-up.
    from cloudmgr.capacity.planner.migration import HostState, VmState

    hosts = []
    for rp in provider.list_resource_providers():

        def cap(cls: str, rp: Any = rp) -> int:
            inventory = rp.inventories.get(cls)
            return int(inventory.capacity) if inventory else 0

        hosts.append(HostState(rp.name, cap("VCPU"), cap("MEMORY_MB"), cap("DISK_GB")))
    disabled = {h.name for h in provider.list_hypervisors() if h.status != "enabled" or h.state != "up"}
    hosts = [HostState(h.name, h.vcpus, h.ram_mb, h.disk_gb, enabled=h.name not in disabled) for h in hosts]
    flavors = {f.id: f for f in provider.list_flavors()}
    flavors_by_name = {f.name: f for f in flavors.values()}
    vms, names = [], {}
    for server in provider.iter_servers():
        if not server.host or server.status not in {"ACTIVE"}:
            continue  # only running servers are live-migrated; others stay where they are
        flavor = flavors.get(server.flavor_id or "") or flavors_by_name.get(server.flavor_name or "")
        if flavor is None:
            continue
        vms.append(VmState(server.id, server.host, flavor.vcpus, flavor.ram_mb, flavor.disk_gb))
        names[server.id] = server.name
    return hosts, vms, names


def _provider(registry: ProviderRegistry, cloud: Cloud) -> CloudProvider:
    return registry.for_cloud(cloud.key, cloud.os_cloud, cloud.region)


def plan_run(db: Database, registry: ProviderRegistry, cloud_key: str, *, actor: str, max_wave: int = 5) -> int:
    """Read the cloud, plan, and store the plan as a run (nothing moves yet)."""
    if not 1 <= max_wave <= 500:
        raise ValidationFailed("a wave holds between 1 and 500 moves")
    with db.unit_of_work() as uow:
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == cloud_key))
        if cloud is None:
            raise NotFound(f"no cloud {cloud_key!r}")
        provider = _provider(registry, cloud)
        cloud_id = cloud.id
    from cloudmgr.capacity.planner.migration import plan_migration

    hosts, vms, names = live_state(provider)
    plan = plan_migration(hosts, vms, max_wave=max_wave)
    summary: dict[str, Any] = {
        "hosts": len(hosts),
        "vms": len(vms),
        "moves": len(plan.moves),
        "emptied": len(plan.emptied),
        "max_emptiable": plan.max_emptiable,
        "min_moves_bound": plan.min_moves_bound,
        "method": plan.method,
        "status": plan.status,
    }
    body: dict[str, Any] = {
        "waves": [
            [{"server_id": m.vm, "vm": names.get(m.vm, m.vm), "from": m.source, "to": m.target} for m in wave]
            for wave in plan.waves
        ],
        "emptied": plan.emptied,
        "summary": summary,
    }
    with db.unit_of_work() as uow:
        run = ConsolidationRun(cloud_id=cloud_id, plan=body, created_by=actor, state=RunState.PLANNED.value)
        uow.session.add(run)
        uow.session.flush()
        audit.record(
            uow.session,
            actor=actor,
            action="consolidation.plan",
            target_type="consolidation_run",
            target_id=run.id,
            detail=summary,
        )
        return run.id


def get_run(session: Session, run_id: int) -> ConsolidationRun:
    run = session.get(ConsolidationRun, run_id)
    if run is None:
        raise RunNotFound(f"no consolidation run {run_id}")
    return run


def list_runs(session: Session, limit: int = 50) -> list[ConsolidationRun]:
    return list(session.scalars(select(ConsolidationRun).order_by(ConsolidationRun.id.desc()).limit(limit)))


def start_run(session: Session, run_id: int, *, actor: str) -> ConsolidationRun:
    run = get_run(session, run_id)
    if run.state not in {RunState.PLANNED.value, RunState.STOPPED.value}:
        raise RunStateConflict(f"run {run_id} is {run.state}; only a planned or stopped run starts")
    if run.next_wave >= len(run.plan["waves"]):
        raise RunStateConflict(f"run {run_id} has no moves left")
    run.state, run.started_by, run.started_at = RunState.RUNNING.value, actor, utcnow()
    audit.record(session, actor=actor, action="consolidation.start", target_type="consolidation_run", target_id=run.id)
    enqueue(session, "consolidation_wave", f"consolidation:{run.id}", {"run_id": run.id})
    return run


def stop_run(session: Session, run_id: int, *, actor: str) -> ConsolidationRun:
    """The stop button: the wave under way finishes its current move, then the run stops."""
    run = get_run(session, run_id)
    if run.state != RunState.RUNNING.value:
        raise RunStateConflict(f"run {run_id} is {run.state}; only a running run stops")
    run.state, run.stop_requested_by = RunState.STOPPING.value, actor
    audit.record(session, actor=actor, action="consolidation.stop", target_type="consolidation_run", target_id=run.id)
    return run


@dataclass(frozen=True)
class _WaveWork:
    run_id: int
    wave_index: int
    moves: list[dict[str, str]]
    cloud: Cloud


def _should_stop(db: Database, run_id: int) -> bool:
    with db.unit_of_work() as uow:
        return get_run(uow.session, run_id).state == RunState.STOPPING.value


def handle_consolidation_wave(db: Database, item: ClaimedItem) -> None:
    run_id = int(item.payload["run_id"])
    with db.unit_of_work() as uow:
        run = get_run(uow.session, run_id)
        if run.state not in {RunState.RUNNING.value, RunState.STOPPING.value}:
            return
        if run.state == RunState.STOPPING.value:
            run.state, run.finished_at = RunState.STOPPED.value, utcnow()
            return
        waves = run.plan["waves"]
        if run.next_wave >= len(waves):
            run.state, run.finished_at = RunState.DONE.value, utcnow()
            return
        work = _WaveWork(run.id, run.next_wave, list(waves[run.next_wave]), run.cloud)
    provider = _provider(get_runtime().providers, work.cloud)
    done = failed = 0
    errors = []
    for move in work.moves:
        if _should_stop(db, run_id):
            break
        try:
            server = provider.get_server(move["server_id"])
            if server.host != move["to"]:
                provider.live_migrate(move["server_id"], move["to"])
                server = provider.wait_for_server(move["server_id"], {"ACTIVE"}, timeout=600)
            if server.host != move["to"]:
                raise CloudError(f"{move['vm']} is still on {server.host}, not {move['to']}")
            done += 1
        except CloudUnavailable as exc:
            raise RetryLater(str(exc)) from exc
        except CloudError as exc:
            failed += 1
            errors.append(f"{move['vm']}: {exc}")
        with db.unit_of_work() as uow:
            audit.record(
                uow.session,
                actor="system:consolidation",
                action="consolidation.move",
                target_type="consolidation_run",
                target_id=run_id,
                detail={**move, "ok": not errors or not errors[-1].startswith(move["vm"])},
            )
    with db.unit_of_work() as uow:
        run = get_run(uow.session, run_id)
        run.moves_done += done
        run.moves_failed += failed
        if errors:
            run.last_error = "; ".join(errors)[:4000]
        if run.state == RunState.STOPPING.value:
            if done + failed == len(work.moves):
                run.next_wave += 1
            run.state, run.finished_at = RunState.STOPPED.value, utcnow()
            return
        run.next_wave += 1
        if failed:
            # A failed move leaves the plan's later waves on a wrong footing: stop and let an
            # operator re-plan from the live placement.
            run.state, run.finished_at = RunState.FAILED.value, utcnow()
            return
        if run.next_wave >= len(run.plan["waves"]):
            run.state, run.finished_at = RunState.DONE.value, utcnow()
            return
    with db.unit_of_work() as uow:
        enqueue(uow.session, "consolidation_wave", f"consolidation:{run_id}:{work.wave_index + 1}", {"run_id": run_id})


def _give_up(db: Database, item: ClaimedItem, error: str) -> None:
    with db.unit_of_work() as uow:
        run = uow.session.get(ConsolidationRun, int(item.payload["run_id"]))
        if run is not None and run.state in {RunState.RUNNING.value, RunState.STOPPING.value}:
            run.state, run.last_error, run.finished_at = RunState.FAILED.value, error[:4000], utcnow()


handle_consolidation_wave.on_give_up = _give_up  # type: ignore[attr-defined]
