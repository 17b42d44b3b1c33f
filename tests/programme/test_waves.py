"""Migration waves on the simulated cloud: the state machine, the check (quota and capacity), start."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from cloudmgr.audit.models import AuditEvent
from cloudmgr.inventory.errors import ClassifiedPlacementRefused
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, Role
from cloudmgr.programme import services as waves
from cloudmgr.programme.errors import (
    WaveDoesNotFit,
    WaveInvalid,
    WaveMemberRefused,
    WaveStateConflict,
)
from cloudmgr.programme.models import MigrationWave, MigrationWaveMember
from cloudmgr.quotas.models import QuotaLedgerRow
from cloudmgr.workqueue.models import WorkItem
from tests.programme.conftest import Env, Inventory, MakeSystems

OPERATOR = "operator"
AS_OPERATOR = Actor(username=OPERATOR, role=Role.OPERATOR)


def _wave(journey: Env, name: str = "教育厅第一批", *, zone: str = "extranet", cloud: str = "education") -> int:
    with journey.rt.db.unit_of_work() as uow:
        return waves.create_wave(
            uow.session,
            name=name,
            cloud_key=cloud,
            zone=zone,
            window_start=date(2026, 12, 5),
            window_end=date(2026, 12, 6),
            actor=AS_OPERATOR,
        ).id


def _add(journey: Env, wave_id: int, refs: list[int | str]) -> None:
    with journey.rt.db.unit_of_work() as uow:
        waves.add_systems(uow.session, wave_id, refs, actor=AS_OPERATOR)


def _wave_row(journey: Env, wave_id: int) -> MigrationWave:
    with journey.rt.db.unit_of_work() as uow:
        return waves.get_wave(uow.session, wave_id)


def test_a_wave_goes_from_draft_through_check_and_start_to_done(
    journey: Env, inventory: Inventory, make_systems: MakeSystems
) -> None:
    hard = inventory.system("edu-hard", complexity=80)
    easy = inventory.system("edu-easy", complexity=5)
    wave_id = _wave(journey)
    _add(journey, wave_id, [hard, "edu-easy"])
    assert inventory.state(hard) == inventory.state(easy) == "planned"

    result = waves.check_wave(journey.rt.db, journey.rt.providers, wave_id, actor=AS_OPERATOR)
    assert result["fits"], result
    assert result["capacity"]["hosts"] == 2 and result["capacity"]["hosts_needed"] == 1
    assert result["capacity"]["hosts_free"] == 2
    assert {q["department"] for q in result["quota"]} == {"prov-education"}
    wave = _wave_row(journey, wave_id)
    assert (wave.state, wave.checked_by) == ("checked", OPERATOR)

    with journey.rt.db.unit_of_work() as uow:
        waves.start_wave(uow.session, wave_id, actor=AS_OPERATOR)
    wave = _wave_row(journey, wave_id)
    assert (wave.state, wave.started_by) == ("running", OPERATOR) and wave.started_at is not None
    assert inventory.state(hard) == inventory.state(easy) == "migrating"
    late = inventory.system("edu-late")
    with journey.rt.db.unit_of_work() as uow:
        items = uow.session.scalars(
            select(WorkItem).where(WorkItem.kind == "runbook.migrate_system").order_by(WorkItem.id)
        ).all()
        assert [i.payload for i in items] == [
            {"system_id": easy, "wave_id": wave_id},  # easy first
            {"system_id": hard, "wave_id": wave_id},
        ]
        # a running wave is fixed
        with pytest.raises(WaveStateConflict):
            waves.add_systems(uow.session, wave_id, [late], actor=AS_OPERATOR)
    with pytest.raises(WaveStateConflict, match="already running"), journey.rt.db.unit_of_work() as uow:
        waves.start_wave(uow.session, wave_id, actor=AS_OPERATOR)

    inventory.set_state(easy, "on_cloud")
    with journey.rt.db.unit_of_work() as uow:
        assert waves.finish_waves(uow.session) == []  # one still migrating
    inventory.set_state(hard, "rolled_back")
    with journey.rt.db.unit_of_work() as uow:
        assert waves.finish_waves(uow.session) == [wave_id]
        actions = uow.session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.target_type == "migration_wave", AuditEvent.target_id == str(wave_id)
            )
        ).all()
        assert actions == ["wave.create", "wave.add_systems", "wave.check", "wave.start", "wave.done"]
    assert _wave_row(journey, wave_id).state == "done"
    # the rolled-back system is free to join another wave
    second = _wave(journey, "第二批")
    _add(journey, second, [hard])
    assert inventory.state(hard) == "planned"


def test_the_check_refuses_a_wave_over_a_departments_quota(journey: Env, make_systems: MakeSystems) -> None:
    ids = make_systems("edu-q", 3, vcpus=2, ram_mb=4096, cpu_p95_pct=100, ram_p95_pct=100)  # m1.medium each
    wave_id = _wave(journey)
    _add(journey, wave_id, list(ids))
    with journey.rt.db.unit_of_work() as uow:
        dept_id = uow.session.scalars(select(Department.id).where(Department.key == "prov-education")).one()
        cloud_id = uow.session.scalars(select(Cloud.id).where(Cloud.key == "education")).one()
        uow.session.execute(
            update(QuotaLedgerRow)
            .where(
                QuotaLedgerRow.department_id == dept_id,
                QuotaLedgerRow.cloud_id == cloud_id,
                QuotaLedgerRow.resource == "cores",
            )
            .values(limit=4)
        )
    result = waves.check_wave(journey.rt.db, journey.rt.providers, wave_id, actor=AS_OPERATOR)
    assert not result["fits"]
    (line,) = result["quota"]
    assert line["needs"] == {"cores": 6, "ram_mb": 3 * 4096, "instances": 3}
    assert line["shortfall"] == {"cores": 2}
    assert result["unplaced"] == []  # capacity is fine
    wave = _wave_row(journey, wave_id)
    assert wave.state == "draft" and "prov-education is short of 2 vCPU cores" in (wave.state_reason or "")
    with pytest.raises(WaveDoesNotFit, match="short of 2 vCPU cores"), journey.rt.db.unit_of_work() as uow:
        waves.start_wave(uow.session, wave_id, actor=AS_OPERATOR)
    assert all(s == "planned" for s in map(Inventory(journey.rt).state, ids))


def test_the_check_refuses_a_wave_the_clouds_hosts_cannot_hold(journey: Env, make_systems: MakeSystems) -> None:
    # five m1.large (4 vCPUs, 8 GB): 20 vCPUs; the simulated education cloud has 2 hosts of 8
    ids = make_systems("edu-big", 5, vcpus=4, ram_mb=8192, cpu_p95_pct=100, ram_p95_pct=100)
    wave_id = _wave(journey)
    _add(journey, wave_id, list(ids))
    result = waves.check_wave(journey.rt.db, journey.rt.providers, wave_id, actor=AS_OPERATOR)
    assert not result["fits"]
    assert all(q["ok"] for q in result["quota"])  # 20 cores of the 24 allowed
    assert result["capacity"]["hosts_used"] == 2 and result["capacity"]["hosts_needed"] == 3
    (unplaced,) = result["unplaced"]
    assert "no host has room left once the rest of the wave is placed" in unplaced["reason"]
    assert {s["flavor"] for s in result["systems"]} == {"m1.large"}
    with pytest.raises(WaveDoesNotFit), journey.rt.db.unit_of_work() as uow:
        waves.start_wave(uow.session, wave_id, actor=AS_OPERATOR)


def test_systems_are_right_sized_by_their_measured_p95(journey: Env, inventory: Inventory) -> None:
    idle = inventory.system("edu-idle", vcpus=8, ram_mb=16384, cpu_p95_pct=10, ram_p95_pct=10)
    wave_id = _wave(journey)
    _add(journey, wave_id, [idle])
    result = waves.check_wave(journey.rt.db, journey.rt.providers, wave_id, actor=AS_OPERATOR)
    (system,) = result["systems"]
    assert system["right_sized"] == {"vcpus": 1, "ram_mb": 2048}
    assert system["flavor"] == "m1.small" and result["fits"]


def test_a_classified_system_is_refused_and_the_refusal_audited(journey: Env, inventory: Inventory) -> None:
    secret = inventory.system("edu-secret", classification="classified", network="extranet")
    wave_id = _wave(journey)
    with pytest.raises(ClassifiedPlacementRefused), journey.rt.db.unit_of_work() as uow:
        waves.add_systems(uow.session, wave_id, [secret], actor=AS_OPERATOR)
    with journey.rt.db.unit_of_work() as uow:
        refusals = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "legacy_system.placement_refused")
        ).all()
        assert [(e.target_id, e.detail["entry_point"], e.actor) for e in refusals] == [(str(secret), "wave", OPERATOR)]
        assert uow.session.scalars(select(MigrationWaveMember)).all() == []
    assert inventory.state(secret) == "legacy"


def test_membership_rules(journey: Env, inventory: Inventory) -> None:
    internet = inventory.system("edu-web", network="internet")
    a = inventory.system("edu-a")
    b = inventory.system("edu-b")
    first, second = _wave(journey), _wave(journey, "另一批")
    with pytest.raises(WaveMemberRefused, match="internet network"), journey.rt.db.unit_of_work() as uow:
        waves.add_systems(uow.session, first, [internet], actor=AS_OPERATOR)
    _add(journey, first, [a])
    with pytest.raises(WaveMemberRefused, match="already in wave"), journey.rt.db.unit_of_work() as uow:
        waves.add_systems(uow.session, second, [a], actor=AS_OPERATOR)
    # all or nothing: b is not added when a is refused in the same call
    with pytest.raises(WaveMemberRefused), journey.rt.db.unit_of_work() as uow:
        waves.add_systems(uow.session, second, [b, a], actor=AS_OPERATOR)
    assert inventory.state(b) == "legacy"
    with pytest.raises(WaveMemberRefused, match="no legacy system"), journey.rt.db.unit_of_work() as uow:
        waves.add_systems(uow.session, second, ["no-such-host"], actor=AS_OPERATOR)
    # the database itself keeps a system in one open wave
    with pytest.raises(IntegrityError), journey.rt.db.unit_of_work() as uow:
        uow.session.add(MigrationWaveMember(wave_id=second, system_id=a, position=1, active=True, added_by="x"))
        uow.session.flush()

    # checked, then changed: back to draft; start needs a fresh check
    assert waves.check_wave(journey.rt.db, journey.rt.providers, first, actor=AS_OPERATOR)["fits"]
    _add(journey, first, [b])
    assert _wave_row(journey, first).state == "draft"
    with pytest.raises(WaveStateConflict, match="must be checked"), journey.rt.db.unit_of_work() as uow:
        waves.start_wave(uow.session, first, actor=AS_OPERATOR)
    with journey.rt.db.unit_of_work() as uow:
        waves.remove_system(uow.session, first, b, actor=AS_OPERATOR)
    assert inventory.state(b) == "legacy"

    with journey.rt.db.unit_of_work() as uow:
        waves.cancel_wave(uow.session, first, actor=AS_OPERATOR, reason="窗口取消")
    assert inventory.state(a) == "legacy"
    assert _wave_row(journey, first).state == "cancelled"
    _add(journey, second, [a])  # free again
    with pytest.raises(WaveStateConflict), journey.rt.db.unit_of_work() as uow:
        waves.cancel_wave(uow.session, first, actor=AS_OPERATOR)


def test_wave_fields_are_validated(journey: Env) -> None:
    with journey.rt.db.unit_of_work() as uow, pytest.raises(WaveInvalid) as refused:
        waves.create_wave(
            uow.session,
            name=" ",
            cloud_key="nowhere",
            zone="intranet",
            window_start=date(2026, 12, 6),
            window_end=date(2026, 12, 5),
            actor=AS_OPERATOR,
        )
    message = refused.value.message
    for part in ("name", "internet or extranet", "before it starts", "no cloud 'nowhere'"):
        assert part in message
