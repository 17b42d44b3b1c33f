"""Moves on the simulated clouds: the state machines, resumption and the refusals.

The same moves against the lab OpenStack are in test_lab_moves.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cloud import ServerSpec
from cloudmgr.db import Database, utcnow
from cloudmgr.errors import PermissionDenied
from cloudmgr.inventory.classification import ClassifiedPlacementRefused
from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.metrics import REGISTRY
from cloudmgr.moves import jobs, run_migration, services, stepping
from cloudmgr.moves.errors import DrainRefused, InvalidMoveTransition, MoveInProgress, MoveInvalid
from cloudmgr.moves.models import Move, MoveStep
from cloudmgr.moves.states import STEPS, MoveKind, MoveState
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, Role
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.models import QuotaReservation
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.workqueue.models import WorkItem
from cloudmgr.workqueue.services import claim
from tests.journey_fixtures import Journey
from tests.moves.conftest import provider_of, provision

OPERATOR = "operator"
AS_OPERATOR = Actor(username=OPERATOR, role=Role.OPERATOR)


def _move(j: Journey, move_id: int) -> Move:
    with j.rt.db.unit_of_work() as uow:
        move = services.get_move(uow.session, move_id)
        _ = [s.name for s in move.steps], [e.action for e in move.events], list(move.children)
        return move


def _steps(j: Journey, move_id: int) -> dict[str, MoveStep]:
    with j.rt.db.unit_of_work() as uow:
        return {s.name: s for s in uow.session.scalars(select(MoveStep).where(MoveStep.move_id == move_id))}


def _audit(j: Journey, action: str) -> list[AuditEvent]:
    with j.rt.db.unit_of_work() as uow:
        return list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---- live and cold migration ----------------------------------------------------------


def test_live_migration_is_stored_before_it_runs_and_moves_the_server(journey: Journey) -> None:
    (server,) = provision(journey)
    provider = provider_of(journey, "education")
    before = provider.get_server(server.server_id or "")
    done_before = _metric("cloudmgr_moves_total", kind="live", outcome="done")
    move_id = services.start_migration(
        journey.rt.db,
        journey.rt.providers,
        kind="live",
        cloud_key="education",
        server_id=before.id,
        actor=AS_OPERATOR,
        reason="host firmware update",
    )
    stored = _move(journey, move_id)
    assert (stored.state, stored.created_by, stored.reason) == ("requested", OPERATOR, "host firmware update")
    assert stored.source_host == before.host and stored.managed_server_id == server.id
    assert provider.get_server(before.id).host == before.host  # nothing happened before the worker ran
    journey.drain()
    moved = _move(journey, move_id)
    assert moved.state == "done" and moved.finished_at is not None
    after = provider.get_server(before.id)
    assert after.host != before.host and moved.resources["host"] == after.host
    assert [e.action for e in moved.events] == ["create", "start", "finish"]
    step = _steps(journey, move_id)["migrate"]
    assert step.state == "done" and step.attempts == 1 and step.seconds is not None
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.scalar(select(ManagedServer.host).where(ManagedServer.id == server.id)) == after.host
    assert _audit(journey, "move.create") and _audit(journey, "move.finish")
    assert _metric("cloudmgr_moves_total", kind="live", outcome="done") == done_before + 1
    assert _metric("cloudmgr_move_step_seconds_count", kind="live", step="migrate") >= 1


def _migration_requests_are_checked_before_anything_is_stored(journey: Journey) -> None:
    (server,) = provision(journey)
    provider = provider_of(journey, "education")
    cloud_server = provider.get_server(server.server_id or "")
    db, registry = journey.rt.db, journey.rt.providers

    def start(**overrides: object) -> int:
        args: dict[str, object] = {
            "kind": "live",
            "cloud_key": "education",
            "server_id": cloud_server.id,
            "actor": AS_OPERATOR,
            "reason": "maintenance",
        }
        args.update(overrides)
        return services.start_migration(db, registry, **args)  # type: ignore[arg-type]

    with pytest.raises(MoveInvalid, match="reason"):
        start(reason="  ")
    with pytest.raises(MoveInvalid, match="no server"):
        start(server_id="no-such-server")
    with pytest.raises(MoveInvalid, match="no cloud"):
        start(cloud_key="atlantis")
    with pytest.raises(MoveInvalid, match="already runs on"):
        start(target_host=cloud_server.host)
    with pytest.raises(MoveInvalid, match="no compute host"):
        start(target_host="sim-host-9")
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.scalar(select(Move).where(Move.server_id == cloud_server.id)) is None
    provider.stop_server(cloud_server.id)
    with pytest.raises(MoveInvalid, match="SHUTOFF"):
        start()
    provider.start_server(cloud_server.id)
    move_id = start()
    with pytest.raises(MoveInProgress):
        start(kind="cold")
    # The work queue gives up on it (the cloud stayed unreachable): the move fails, with why.
    from cloudmgr.workqueue.services import ClaimedItem

    item = ClaimedItem(0, "move", services.work_key(move_id), {"move_id": move_id}, 20, 20, "worker")
    jobs.handle_move.on_give_up(db, item, "cloud education unreachable")  # type: ignore[attr-defined]
    assert _move(journey, move_id).state_reason == "gave up: cloud education unreachable"


def _cold_migration_waits_for_confirmation_then_confirms(journey: Journey) -> None:
    (server,) = provision(journey)
    provider = provider_of(journey, "education")
    before = provider.get_server(server.server_id or "")
    move_id = services.start_migration(
        journey.rt.db, journey.rt.providers, kind="cold", cloud_key="education", server_id=before.id,
        actor=AS_OPERATOR, reason="rebalance",
    )  # fmt: skip
    journey.drain()
    assert _move(journey, move_id).state == "awaiting_confirm"
    assert provider.get_server(before.id).status == "VERIFY_RESIZE"
    with journey.rt.db.unit_of_work() as uow, pytest.raises(MoveInvalid, match="only cold"):
        live = Move(kind="live", state="running", cloud_id=_move(journey, move_id).cloud_id, reason="x", created_by="t")
        uow.session.add(live)
        uow.session.flush()
        services.confirm(uow.session, live.id, actor=AS_OPERATOR)
    with journey.rt.db.unit_of_work() as uow:
        services.confirm(uow.session, move_id, actor=Actor(username="ops2", role=Role.OPERATOR), reason="looks fine")
    with journey.rt.db.unit_of_work() as uow, pytest.raises(InvalidMoveTransition):
        services.confirm(uow.session, move_id, actor=Actor(username="ops2", role=Role.OPERATOR))
    journey.drain()
    move = _move(journey, move_id)
    after = provider.get_server(before.id)
    assert move.state == "done" and after.status == "ACTIVE" and after.host != before.host
    confirm_event = next(e for e in move.events if e.action == "confirm")
    assert (confirm_event.actor, confirm_event.reason) == ("ops2", "looks fine")


def _cold_migration_revert_goes_back_and_auto_confirm_needs_nobody(journey: Journey) -> None:
    first, second = provision(journey, 2)
    provider = provider_of(journey, "education")
    db, registry = journey.rt.db, journey.rt.providers
    source = provider.get_server(first.server_id or "").host
    reverted = services.start_migration(
        db, registry, kind="cold", cloud_key="education", server_id=first.server_id or "", actor=AS_OPERATOR, reason="t"
    )
    journey.drain()
    with db.unit_of_work() as uow:
        services.revert(uow.session, reverted, actor=AS_OPERATOR, reason="app misbehaves")
    journey.drain()
    assert _move(journey, reverted).state == "reverted"
    assert provider.get_server(first.server_id or "").host == source
    assert _steps(journey, reverted)["revert"].state == "done"
    auto = services.start_migration(
        db, registry, kind="cold", cloud_key="education", server_id=second.server_id or "", actor=AS_OPERATOR,
        reason="t", auto_confirm=True,
    )  # fmt: skip
    journey.drain()
    move = _move(journey, auto)
    assert move.state == "done"
    assert [e.action for e in move.events] == ["create", "start", "migrated", "confirm", "finish"]
    assert provider.get_server(second.server_id or "").status == "ACTIVE"


def test_a_worker_killed_between_migrated_and_confirm_leaves_the_move_to_the_next_after_its_lease(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler SIGKILLed during a cold migration with auto_confirm, as
    tests/production/test_crash_safety.py does: the item's lease, renewed after each step, is
    the configured one (it was the work queue's two-minute default, whatever the setting), and
    a worker that dies between "migrated" and "confirm" leaves the confirmation to the worker
    that takes the item over (the move used to stay awaiting_confirm for good)."""
    monkeypatch.setattr(journey.rt, "settings", journey.rt.settings.with_overrides(work_lease_seconds=7))
    (server,) = provision(journey)
    provider = provider_of(journey, "education")
    db = journey.rt.db
    before = provider.get_server(server.server_id or "")
    move_id = services.start_migration(
        db, journey.rt.providers, kind="cold", cloud_key="education", server_id=before.id, actor=AS_OPERATOR,
        reason="rebalance", auto_confirm=True,
    )  # fmt: skip

    class Killed(BaseException):
        pass

    real_transition = stepping.transition

    def dies_after_migrated(
        db: Database,
        move_id: int,
        target: MoveState,
        *,
        action: str,
        reason: str | None = None,
        actor: Actor = jobs.SYSTEM,
    ) -> None:
        real_transition(db, move_id, target, action=action, reason=reason, actor=actor)
        if target == MoveState.AWAITING_CONFIRM:
            raise Killed

    monkeypatch.setattr(run_migration, "transition", dies_after_migrated)
    item = claim(db, owner="worker-1", lease=timedelta(seconds=1), kinds={"move"})
    assert item is not None
    with db.unit_of_work() as uow:
        claimed_until = uow.session.get_one(WorkItem, item.id).lease_expires_at
    with pytest.raises(Killed):
        jobs.handle_move(db, item)
    monkeypatch.setattr(run_migration, "transition", real_transition)
    assert _move(journey, move_id).state == "awaiting_confirm"
    with db.unit_of_work() as uow:
        work = uow.session.get_one(WorkItem, item.id)
        assert work.lease_owner == "worker-1" and claimed_until is not None and work.lease_expires_at is not None
        assert claimed_until < work.lease_expires_at <= utcnow() + timedelta(seconds=7)
        work.lease_expires_at = utcnow() - timedelta(seconds=1)  # the dead worker's lease runs out
    journey.drain()
    move = _move(journey, move_id)
    assert move.state == "done", move.state_reason
    assert [e.action for e in move.events] == ["create", "start", "migrated", "confirm", "finish"]
    after = provider.get_server(before.id)
    assert after.status == "ACTIVE" and after.host != before.host
    with db.unit_of_work() as uow:
        assert uow.session.get_one(ManagedServer, server.id).host == after.host


# ---- host drain -----------------------------------------------------------------------


def _onto(provider: object, server_id: str, host: str) -> None:
    from cloudmgr.cloud import CloudProvider

    assert isinstance(provider, CloudProvider)
    if provider.get_server(server_id).host != host:
        provider.live_migrate(server_id, host)


def test_drain_moves_every_server_off_the_host_and_disables_it_meanwhile(journey: Journey) -> None:
    servers = provision(journey, 3)
    provider = provider_of(journey, "education")
    for s in servers:
        _onto(provider, s.server_id or "", "sim-host-1")
    provider.stop_server(servers[2].server_id or "")  # a stopped server is cold-migrated instead
    seen: list[str] = []

    def watch(move_id: int, step: str, phase: str) -> None:
        if step == "migrate_servers" and phase == "started":
            seen.append({h.host: h.status for h in provider.list_hypervisors()}["sim-host-1"])

    stepping.CRASH_HOOK = watch
    try:
        move_id = services.start_drain(
            journey.rt.db, journey.rt.providers, cloud_key="education", host="sim-host-1", actor=AS_OPERATOR,
            reason="replace a DIMM",
        )  # fmt: skip
        journey.drain()
    finally:
        stepping.CRASH_HOOK = None
    move = _move(journey, move_id)
    assert move.state == "done", move.state_reason
    assert seen == ["disabled"]
    assert provider.list_servers_on_host("sim-host-1") == []
    assert {h.host: h.status for h in provider.list_hypervisors()}["sim-host-1"] == "enabled"
    assert sorted(c.kind for c in move.children) == ["cold", "live", "live"]
    assert all(c.state == "done" for c in move.children)
    outcome = _steps(journey, move_id)["migrate_servers"].result
    assert outcome["moved"] == 3 and outcome["failed"] == 0 and outcome["left_on_host"] == []
    assert {o["server"] for o in outcome["servers"]} == {s.name for s in servers}
    assert provider.get_server(servers[2].server_id or "").status == "SHUTOFF"


def test_drain_is_refused_up_front_when_the_other_hosts_lack_room(journey: Journey) -> None:
    servers = provision(journey, 2, flavor="m1.small")
    provider = provider_of(journey, "education")
    for s in servers:
        _onto(provider, s.server_id or "", "sim-host-1")
    with journey.rt.db.unit_of_work() as uow:
        dept = uow.session.scalar(select(Department).where(Department.key == "prov-education"))
        assert dept is not None
    # Fill sim-host-2 (8 vCPU, 16 GB) with servers of another project so nothing else fits.
    project = provider.ensure_project("dept-filler", "filler--education")
    flavors = {f.name: f.id for f in provider.list_flavors()}
    image = provider.list_images()[0].id
    for n in range(2):
        filler = provider.create_server(
            project.id, ServerSpec(f"filler-{n}", flavors["m1.large"], image, None, f"filler-{n}")
        )
        _onto(provider, filler.id, "sim-host-2")
    with pytest.raises(DrainRefused) as refused:
        services.start_drain(
            journey.rt.db, journey.rt.providers, cloud_key="education", host="sim-host-1", actor=AS_OPERATOR,
            reason="maintenance",
        )  # fmt: skip
    message = refused.value.message
    assert "sim-host-1 cannot be drained" in message and "sim-host-2" in message
    assert "vCPU" in message and all(s.name in message for s in servers)
    (event,) = _audit(journey, "move.drain_refused")
    assert event.actor == OPERATOR and event.target_id == "sim-host-1" and event.detail["shortfall"]["VCPU"] > 0
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.scalar(select(Move)) is None
    assert {h.status for h in provider.list_hypervisors()} == {"enabled"}
    with pytest.raises(MoveInvalid, match="no compute host"):
        services.start_drain(
            journey.rt.db, journey.rt.providers, cloud_key="education", host="nowhere", actor=AS_OPERATOR, reason="x"
        )


# ---- cross-cloud move -----------------------------------------------------------------


def _balance(j: Journey, cloud: str) -> dict[Resource, tuple[int, int]]:
    with j.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == cloud))
        assert cloud_id is not None and j.staff.department_id is not None
        bal = ledger.balance(uow.session, j.staff.department_id, cloud_id)
        return {r: (b.reserved, b.used) for r, b in bal.resources.items()}


def _start_cross(j: Journey, server: ManagedServer, target: str = "province-base") -> int:
    return services.start_cross_cloud_move(
        j.rt.db,
        j.rt.providers,
        cloud_key="education",
        server_id=server.server_id or "",
        target_cloud_key=target,
        actor=AS_OPERATOR,
        reason="the education cloud's hall is being closed",
    )


def _assert_moved_once(j: Journey, move_id: int, server: ManagedServer) -> None:
    source, target = provider_of(j, "education"), provider_of(j, "province-base")
    move = _move(j, move_id)
    assert move.state == "done", (move.state, move.state_reason)
    assert [s.state for s in move.steps] == ["done"] * len(STEPS[MoveKind.CROSS_CLOUD])
    with j.rt.db.unit_of_work() as uow:
        link_project = move.target_project_id
        managed = uow.session.get(ManagedServer, server.id)
        assert managed is not None
        assert (
            managed.server_id == move.resources["target_server_id"] and managed.idempotency_key == move.idempotency_key
        )
    in_target = [s for s in target.iter_servers(link_project) if s.name == server.name]
    assert [s.id for s in in_target] == [move.resources["target_server_id"]]
    assert in_target[0].status == "ACTIVE" and in_target[0].metadata["cloudmgr_move"] == str(move_id)
    assert [s for s in source.iter_servers() if s.name == server.name] == []
    key = move.idempotency_key or "-"
    assert [i.name for p in (source, target) for i in p.list_images() if key in i.name] == []
    assert {i.name for i in source.list_images()} == {"cirros-lab"}
    assert not (j.rt.settings.instance_path / "moves" / str(move_id)).exists()


def test_cross_cloud_move_boots_in_the_target_and_moves_the_quota(journey: Journey) -> None:
    (server,) = provision(journey)
    source_before, target_before = _balance(journey, "education"), _balance(journey, "province-base")
    move_id = _start_cross(journey, server)
    reserved = _balance(journey, "province-base")
    assert reserved[Resource.INSTANCES] == (
        target_before[Resource.INSTANCES][0] + 1,
        target_before[Resource.INSTANCES][1],
    )
    journey.drain()
    _assert_moved_once(journey, move_id, server)
    source_after, target_after = _balance(journey, "education"), _balance(journey, "province-base")
    assert source_after[Resource.INSTANCES][1] == source_before[Resource.INSTANCES][1] - 1
    assert source_after[Resource.CORES][1] == source_before[Resource.CORES][1] - server.vcpus
    assert target_after[Resource.INSTANCES] == (0, target_before[Resource.INSTANCES][1] + 1)
    assert target_after[Resource.RAM_MB][1] == target_before[Resource.RAM_MB][1] + server.ram_mb
    move = _move(journey, move_id)
    with journey.rt.db.unit_of_work() as uow:
        reservation = uow.session.get(QuotaReservation, move.reservation_id)
        assert reservation is not None and reservation.state == "consumed"
    assert _steps(journey, move_id)["snapshot"].result["snapshot_image_id"]
    assert _audit(journey, "server.moved")


@pytest.fixture
def crash_everywhere() -> Iterator[list[tuple[str, str]]]:
    """A crash hook that kills the run once at every step boundary."""
    crashed: list[tuple[str, str]] = []

    class Killed(BaseException):
        pass

    def hook(move_id: int, step: str, phase: str) -> None:
        if (step, phase) not in crashed:
            crashed.append((step, phase))
            raise Killed(f"{step}/{phase}")

    stepping.CRASH_HOOK = hook
    yield crashed
    stepping.CRASH_HOOK = None


def test_cross_cloud_move_resumes_after_a_crash_at_every_step(
    journey: Journey, crash_everywhere: list[tuple[str, str]]
) -> None:
    (server,) = provision(journey)
    move_id = _start_cross(journey, server)
    runs = 0
    while _move(journey, move_id).state not in ("done", "failed"):
        runs += 1
        assert runs < 100
        try:
            jobs.run_move(journey.rt.db, journey.rt.providers, move_id)
        except BaseException as exc:  # the simulated kill
            assert type(exc).__name__ == "Killed"
    steps = STEPS[MoveKind.CROSS_CLOUD]
    assert crash_everywhere == [(s, p) for s in steps for p in ("started", "acted", "done")]
    _assert_moved_once(journey, move_id, server)
    assert all(s.attempts == 3 for s in _steps(journey, move_id).values())
    assert _balance(journey, "province-base")[Resource.INSTANCES][0] == 0


def _cross_cloud_move_refusals(journey: Journey) -> None:
    first, second = provision(journey, 2)
    db, registry = journey.rt.db, journey.rt.providers
    with pytest.raises(MoveInvalid, match="no project on cloud"):
        _start_cross(journey, first, target="sjz-gov")
    with pytest.raises(MoveInvalid, match="already in"):
        _start_cross(journey, first, target="education")
    # The target quota is reserved at the start: a full target refuses the move.
    with db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == "province-base"))
        assert cloud_id is not None and journey.staff.department_id is not None
        free = ledger.balance(uow.session, journey.staff.department_id, cloud_id).resources[Resource.INSTANCES].free
        blocker = ledger.reserve(
            uow.session,
            department_id=journey.staff.department_id,
            cloud_id=cloud_id,
            amounts={Resource.INSTANCES: free},
            owner="test",
        ).id
    with pytest.raises(QuotaExceeded):
        _start_cross(journey, first)
    with db.unit_of_work() as uow:
        ledger.release(uow.session, blocker, reason="test over")
    with db.unit_of_work() as uow:
        assert uow.session.scalar(select(Move)) is None
    # A server of a classified legacy system never moves: refused and audited.
    with db.unit_of_work() as uow:
        dept_id = journey.staff.department_id
        room = ServerRoom(code="edu-room-1", name_zh="机房", name_en="Room", department_id=dept_id)
        uow.session.add(room)
        uow.session.flush()
        uow.session.add(
            LegacySystem(
                hostname="edu-exam-db", department_id=dept_id, server_room_id=room.id, application_system="考试",
                classification="classified", network="intranet", os_family="linux", os_name="CentOS",
                os_version="7", vcpus=1, ram_mb=2048, disk_gb=20, data_gb=0, cpu_p95_pct=10, ram_p95_pct=10,
                owner_name="王", owner_contact="0311", cloud_server_id=second.server_id, state="intranet",
            )
        )  # fmt: skip
    with pytest.raises(ClassifiedPlacementRefused):
        services.start_cross_cloud_move(
            db, registry, cloud_key="education", server_id=second.server_id or "", target_cloud_key="province-base",
            actor=Actor(username="zhao", role=Role.OPERATOR), reason="consolidate",
        )  # fmt: skip
    (refusal,) = _audit(journey, "legacy_system.placement_refused")
    assert refusal.actor == "zhao" and refusal.detail["entry_point"] == "move.cross_cloud"
    with db.unit_of_work() as uow:
        assert uow.session.scalar(select(Move)) is None


def _a_failed_step_fails_the_move_with_its_reason_and_resume_retries_it(journey: Journey) -> None:
    (server,) = provision(journey)
    move_id = _start_cross(journey, server)
    provider_of(journey, "education").delete_server(server.server_id or "")  # gone behind cloudmgr's back
    journey.drain()
    move = _move(journey, move_id)
    assert move.state == "failed" and move.state_reason and move.state_reason.startswith("stop_source:")
    step = _steps(journey, move_id)["stop_source"]
    assert step.state == "failed" and step.error
    with journey.rt.db.unit_of_work() as uow:
        services.resume(uow.session, move_id, actor=AS_OPERATOR, reason="try again")
    assert _steps(journey, move_id)["stop_source"].state == "pending"
    journey.drain()
    assert _move(journey, move_id).state == "failed"
    assert _steps(journey, move_id)["stop_source"].attempts == 2
    with journey.rt.db.unit_of_work() as uow, pytest.raises(MoveInvalid, match="only cold"):
        services.confirm(uow.session, move_id, actor=AS_OPERATOR)


# One test per simulated organisation where that saves its set-up (a few seconds each).


def test_cold_migration_confirm_revert_and_auto_confirm(journey: Journey) -> None:
    _cold_migration_waits_for_confirmation_then_confirms(journey)
    _cold_migration_revert_goes_back_and_auto_confirm_needs_nobody(journey)


def test_refusals_and_a_failed_step(journey: Journey) -> None:
    _cross_cloud_move_refusals(journey)
    _a_failed_step_fails_the_move_with_its_reason_and_resume_retries_it(journey)
    _migration_requests_are_checked_before_anything_is_stored(journey)


def test_attack_only_an_operator_moves_a_server(journey: Journey) -> None:
    """The moves services decide who moves servers: a department head (even of the server's
    own department) or finance is refused before the cloud is read, and nothing is stored."""
    (server,) = provision(journey)
    db, registry = journey.rt.db, journey.rt.providers
    for actor in (journey.head, journey.finance):
        assert not services.may_move_servers(actor)
        with pytest.raises(PermissionDenied):
            services.start_migration(
                db, registry, kind="live", cloud_key="education", server_id=server.server_id or "", actor=actor,
                reason="mine",
            )  # fmt: skip
        with pytest.raises(PermissionDenied):
            services.start_drain(db, registry, cloud_key="education", host="sim-host-1", actor=actor, reason="x")
        with pytest.raises(PermissionDenied):
            services.start_cross_cloud_move(
                db, registry, cloud_key="education", server_id=server.server_id or "",
                target_cloud_key="province-base", actor=actor, reason="x",
            )  # fmt: skip
        for action in (services.confirm, services.revert, services.resume):
            with pytest.raises(PermissionDenied), db.unit_of_work() as uow:
                action(uow.session, 1, actor=actor)
    assert services.may_move_servers(AS_OPERATOR)
    with db.unit_of_work() as uow:
        assert uow.session.scalars(select(Move)).all() == []
