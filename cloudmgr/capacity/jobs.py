"""Running a consolidation run: the ``consolidation_wave`` work handler, one wave per item.

Each move is read and made on the cloud outside any unit of work; what it did is recorded
in its own short one.  A wave that ends well queues the next wave's item; a stop request is
looked at before every move.  After the last wave the hosts the plan empties are checked
against Placement (see :mod:`cloudmgr.capacity.consolidation`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from cloudmgr.audit import services as audit
from cloudmgr.capacity.consolidation import (
    COLD_MIGRATION_STATUSES,
    LIVE_MIGRATION_STATUSES,
    allocations_left,
    get_run,
    provider_of,
)
from cloudmgr.capacity.models import ConsolidationRun, RunState
from cloudmgr.cloud import CloudError, CloudNotFound, CloudProvider, CloudUnavailable
from cloudmgr.db import Database, utcnow
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.workqueue.services import ClaimedItem, RetryLater, enqueue

SYSTEM = Actor.system("consolidation")
WORK_KIND = "consolidation_wave"
#: How long a wave waits for Placement to drop the allocations left by its live migrations.
MIGRATION_ALLOCATION_GRACE_SECONDS = 60.0


def execute_move(provider: CloudProvider, move: Mapping[str, str], *, timeout: float = 600.0) -> None:
    """Carry out one planned move, or raise CloudError.  A move already done is not done
    again; a server that is no longer where, or as, the plan found it is not moved (its
    kind of migration, or its room on the target, may no longer hold: re-plan)."""
    kind = move.get("kind", "live")  # runs planned before cold moves existed hold live moves only
    server_id, vm, source, target = move["server_id"], move["vm"], move["from"], move["to"]
    server = provider.get_server(server_id)
    if kind == "cold" and server.status == "VERIFY_RESIZE" and server.host == target and server.task_state is None:
        # A resumed wave: the cold migration landed and only its confirmation is missing.
        provider.confirm_migration(server_id)
        provider.wait_for_server(server_id, COLD_MIGRATION_STATUSES, timeout=timeout)
        return
    if server.host == target and server.task_state is None and server.status != "VERIFY_RESIZE":
        return  # already done
    if server.host != source:
        raise CloudError(f"{vm} is on {server.host}, not on {source} as planned; re-plan")
    allowed = LIVE_MIGRATION_STATUSES if kind == "live" else COLD_MIGRATION_STATUSES
    if server.status not in allowed or server.task_state is not None:
        raise CloudError(f"{vm} is {server.status} now, planned for a {kind} migration; re-plan")
    if kind == "live":
        provider.live_migrate(server_id, target)
        server = provider.wait_for_server(server_id, {server.status}, timeout=timeout)
    else:
        provider.cold_migrate(server_id, target)
        # Nova puts the server back to SHUTOFF on its host when the move fails.
        server = provider.wait_for_server(server_id, {"VERIFY_RESIZE", *COLD_MIGRATION_STATUSES}, timeout=timeout)
        if server.status == "VERIFY_RESIZE" and server.host == target:
            provider.confirm_migration(server_id)
            server = provider.wait_for_server(server_id, COLD_MIGRATION_STATUSES, timeout=timeout)
    if server.host != target:
        raise CloudError(f"{vm} is still on {server.host}, not {target}")


@dataclass(frozen=True)
class _WaveWork:
    run_id: int
    wave_index: int
    wave_count: int
    moves: list[dict[str, str]]
    emptied: list[str]
    cloud: Cloud

    @property
    def is_last(self) -> bool:
        return self.wave_index + 1 >= self.wave_count


@dataclass
class _WaveOutcome:
    done: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    left: dict[str, list[str]] | None = None  # set once the last wave went through


def handle_consolidation_wave(db: Database, item: ClaimedItem) -> None:
    from cloudmgr.runtime import get_runtime

    run_id = int(item.payload["run_id"])
    work = _take_wave(db, run_id)
    if work is None:
        return
    provider = provider_of(get_runtime().providers, work.cloud)
    outcome = _run_moves(db, provider, work)
    if not outcome.failed and outcome.done == len(work.moves) and work.is_last:
        _confirm_emptied(provider, work, outcome)
    if _record_wave(db, work, outcome):
        with db.unit_of_work() as uow:
            enqueue(uow.session, WORK_KIND, f"consolidation:{run_id}:{work.wave_index + 1}", {"run_id": run_id})


def _take_wave(db: Database, run_id: int) -> _WaveWork | None:
    """The wave to run now, or None when the run has nothing left to do (it is ended here)."""
    with db.unit_of_work() as uow:
        run = get_run(uow.session, run_id)
        if run.state not in {RunState.RUNNING.value, RunState.STOPPING.value}:
            return None
        if run.state == RunState.STOPPING.value:
            run.state, run.finished_at = RunState.STOPPED.value, utcnow()
            return None
        waves = run.plan["waves"]
        if run.next_wave >= len(waves):
            run.state, run.finished_at = RunState.DONE.value, utcnow()
            return None
        return _WaveWork(
            run.id, run.next_wave, len(waves), list(waves[run.next_wave]), list(run.plan.get("emptied", [])), run.cloud
        )


def _should_stop(db: Database, run_id: int) -> bool:
    with db.unit_of_work() as uow:
        return get_run(uow.session, run_id).state == RunState.STOPPING.value


def _run_moves(db: Database, provider: CloudProvider, work: _WaveWork) -> _WaveOutcome:
    outcome = _WaveOutcome()
    for move in work.moves:
        if _should_stop(db, work.run_id):
            break
        try:
            execute_move(provider, move)
            outcome.done += 1
            ok = True
        except CloudUnavailable as exc:
            raise RetryLater(str(exc)) from exc
        except CloudError as exc:
            outcome.failed += 1
            ok = False
            outcome.errors.append(f"{move['vm']}: {exc}")
        with db.unit_of_work() as uow:
            audit.record(
                uow.session,
                actor=SYSTEM.username,
                action="consolidation.move",
                target_type="consolidation_run",
                target_id=work.run_id,
                detail={**move, "ok": ok},
            )
    return outcome


def _holds_a_server(provider: CloudProvider, left: Mapping[str, list[str]]) -> bool:
    for consumers in left.values():
        for consumer in consumers:
            if consumer == "(usages)":  # usages without a consumer Placement names: not a migration's
                return True
            try:
                provider.get_server(consumer)
            except CloudNotFound:
                continue  # a migration's allocation (or a server deleted since)
            return True
    return False


def _confirm_emptied(provider: CloudProvider, work: _WaveWork, outcome: _WaveOutcome) -> None:
    """Ask Placement (outside any transaction) whether the hosts the plan empties really
    hold nothing any more; a host it cannot confirm counts as not emptied."""
    try:
        outcome.left = allocations_left(provider, work.emptied)
        # Nova drops a live migration's allocation on its source (held by the migration's
        # uuid, not the server's) a moment after the server is ACTIVE on its target: only
        # consumers that are no server are waited for, a server on the host fails at once.
        deadline = time.monotonic() + MIGRATION_ALLOCATION_GRACE_SECONDS
        while outcome.left and time.monotonic() < deadline and not _holds_a_server(provider, outcome.left):
            time.sleep(2.0)
            outcome.left = allocations_left(provider, work.emptied)
    except CloudError as exc:
        outcome.left = {host: ["(unconfirmed)"] for host in work.emptied}
        outcome.errors.append(f"could not confirm with Placement that {', '.join(work.emptied)} are empty: {exc}")
    else:
        if outcome.left:
            outcome.errors.append(
                "still holding allocations in Placement: "
                + "; ".join(f"{host} ({', '.join(consumers)})" for host, consumers in sorted(outcome.left.items()))
            )


def _record_wave(db: Database, work: _WaveWork, outcome: _WaveOutcome) -> bool:
    """Store what the wave did and where the run stands; True when the next wave is due."""
    with db.unit_of_work() as uow:
        run = get_run(uow.session, work.run_id)
        run.moves_done += outcome.done
        run.moves_failed += outcome.failed
        if outcome.errors:
            run.last_error = "; ".join(outcome.errors)[:4000]
        if run.state == RunState.STOPPING.value:
            if outcome.done + outcome.failed == len(work.moves):
                run.next_wave += 1
            run.state, run.finished_at = RunState.STOPPED.value, utcnow()
            return False
        run.next_wave += 1
        if outcome.failed:
            # A failed move leaves the plan's later waves on a wrong footing: stop and let an
            # operator re-plan from the live placement.
            run.state, run.finished_at = RunState.FAILED.value, utcnow()
            return False
        if run.next_wave >= len(run.plan["waves"]):
            _finish(run, work, outcome.left)
            return False
        return True


def _finish(run: ConsolidationRun, work: _WaveWork, left: dict[str, list[str]] | None) -> None:
    if left is not None:
        # A new dict, so the JSON column sees the change.
        run.plan = {
            **run.plan,
            "verified_emptied": [host for host in work.emptied if host not in left],
            "not_emptied": left,
        }
    # Done means the hosts are empty in Placement; a host still holding something fails the run.
    run.state, run.finished_at = (RunState.FAILED if left else RunState.DONE).value, utcnow()


def _give_up(db: Database, item: ClaimedItem, error: str) -> None:
    with db.unit_of_work() as uow:
        run = uow.session.get(ConsolidationRun, int(item.payload["run_id"]))
        if run is not None and run.state in {RunState.RUNNING.value, RunState.STOPPING.value}:
            run.state, run.last_error, run.finished_at = RunState.FAILED.value, error[:4000], utcnow()


handle_consolidation_wave.on_give_up = _give_up  # type: ignore[attr-defined]
