"""Snapshots, backups, restores and backup schedules of a department's volume on the simulator
(issue 16): the restored volume holds the same data (the simulator's content digest), quota is
reserved and refused, the department wall holds, a schedule queues one backup per period and
prunes beyond keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from cloudmgr.backups import services as backups
from cloudmgr.backups.errors import NotYourVolume, ScheduleInvalid, VolumeNotFound
from cloudmgr.backups.jobs import run_backup_schedules
from cloudmgr.cloud import Volume
from cloudmgr.cloud.simulated.provider import SimulatedProvider
from cloudmgr.db import utcnow
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.parts import ManagedVolume, VolumeState
from cloudmgr.workqueue.models import WorkItem
from tests.backups.helpers import cloud_volume_id, provision_volume, simulator
from tests.journey_fixtures import Journey

DATA = b"department records \x00\x01\x02" * 100


def _balance(j: Journey, volume_row_id: int) -> dict[Resource, ledger.ResourceBalance]:
    with j.rt.db.unit_of_work() as uow:
        volume = uow.session.get_one(ManagedVolume, volume_row_id)
        return dict(ledger.balance(uow.session, volume.department_id, volume.cloud_id).resources)


def _written(j: Journey) -> tuple[int, str]:
    volume_row_id = provision_volume(j)
    provider = simulator(j)
    source = cloud_volume_id(j, volume_row_id)
    provider.write_volume_data(source, 4096, DATA)
    return volume_row_id, provider.volume_content_digest(source)


def test_a_snapshot_restored_to_a_new_volume_holds_the_same_data(journey: Journey) -> None:
    j = journey
    volume_row_id, digest = _written(j)
    before = _balance(j, volume_row_id)
    with j.rt.db.unit_of_work() as uow:
        snapshot_id = backups.take_snapshot(uow.session, j.staff, volume_row_id).id
    held = _balance(j, volume_row_id)
    assert held[Resource.SNAPSHOTS].reserved == before[Resource.SNAPSHOTS].reserved + 1
    assert held[Resource.GIGABYTES].reserved == before[Resource.GIGABYTES].reserved + 10
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        snapshot = backups.get_snapshot(uow.session, j.staff, snapshot_id)
        assert snapshot.state == backups.CopyState.READY and snapshot.snapshot_id
        new_volume_id = backups.restore_snapshot(uow.session, j.head, snapshot_id).id
    after_snapshot = _balance(j, volume_row_id)
    assert after_snapshot[Resource.SNAPSHOTS].used == before[Resource.SNAPSHOTS].used + 1
    assert after_snapshot[Resource.VOLUMES].reserved == before[Resource.VOLUMES].reserved + 1
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        restored = uow.session.get_one(ManagedVolume, new_volume_id)
        assert restored.state == VolumeState.AVAILABLE, restored.fault
        assert restored.server_id is None and restored.quota_counted and restored.volume_id
        restored_cloud_id = restored.volume_id
    assert simulator(j).volume_content_digest(restored_cloud_id) == digest
    assert simulator(j).get_volume(restored_cloud_id).snapshot_id == snapshot.snapshot_id
    done = _balance(j, volume_row_id)
    assert done[Resource.VOLUMES].used == before[Resource.VOLUMES].used + 1
    assert done[Resource.GIGABYTES].used == before[Resource.GIGABYTES].used + 20  # the snapshot and the volume
    assert done[Resource.VOLUMES].reserved == before[Resource.VOLUMES].reserved


def test_a_backup_restored_to_a_new_volume_holds_the_same_data(journey: Journey) -> None:
    j = journey
    volume_row_id, digest = _written(j)
    with j.rt.db.unit_of_work() as uow:
        backup_id = backups.back_up_now(uow.session, j.staff, volume_row_id).id
    j.drain()
    # The volume changes after its backup: the restore brings back the backup's data.
    simulator(j).write_volume_data(cloud_volume_id(j, volume_row_id), 0, b"later")
    with j.rt.db.unit_of_work() as uow:
        listed = backups.list_backups(uow.session, j.staff, volume_row_id)
        assert [(b.id, b.state, b.schedule_id) for b in listed] == [(backup_id, backups.CopyState.READY, None)]
        new_volume_id = backups.restore_backup(uow.session, j.staff, backup_id).id
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        restored = uow.session.get_one(ManagedVolume, new_volume_id)
        assert restored.state == VolumeState.AVAILABLE, restored.fault
        assert restored.volume_id
    assert simulator(j).volume_content_digest(restored.volume_id) == digest
    assert simulator(j).volume_content_digest(cloud_volume_id(j, volume_row_id)) != digest
    assert _balance(j, volume_row_id)[Resource.BACKUPS].used == 1


def test_a_work_item_run_twice_makes_one_snapshot(journey: Journey) -> None:
    j = journey
    volume_row_id = provision_volume(j)
    with j.rt.db.unit_of_work() as uow:
        tag = backups.take_snapshot(uow.session, j.staff, volume_row_id).tag
    # A worker that died after asking the cloud: the next run finds the snapshot by its tag.
    simulator(j).create_volume_snapshot(cloud_volume_id(j, volume_row_id), tag, tag)
    j.drain()
    snapshots = simulator(j).list_volume_snapshots(_project(j, volume_row_id))
    assert [s.tag for s in snapshots] == [tag]


def _project(j: Journey, volume_row_id: int) -> str:
    project = simulator(j).get_volume(cloud_volume_id(j, volume_row_id)).project_id
    assert project
    return project


def test_quota_exceeded_is_refused_and_nothing_is_recorded(journey: Journey) -> None:
    j = journey
    volume_row_id = provision_volume(j)
    with j.rt.db.unit_of_work() as uow:
        volume = uow.session.get_one(ManagedVolume, volume_row_id)
        ledger.set_limits(uow.session, volume.department_id, volume.cloud_id, {Resource.BACKUPS: 0})
    with pytest.raises(QuotaExceeded) as refused, j.rt.db.unit_of_work() as uow:
        backups.back_up_now(uow.session, j.staff, volume_row_id)
    assert refused.value.http_status == 409
    with j.rt.db.unit_of_work() as uow:
        assert backups.list_backups(uow.session, j.staff, volume_row_id) == []


def test_another_department_does_not_see_the_volume_and_finance_only_reads(journey: Journey) -> None:
    j = journey
    volume_row_id = provision_volume(j)
    with j.rt.db.unit_of_work() as uow:
        with pytest.raises(VolumeNotFound):
            backups.take_snapshot(uow.session, j.other_staff, volume_row_id)
        with pytest.raises(VolumeNotFound):
            backups.list_backups(uow.session, j.other_staff, volume_row_id)
        with pytest.raises(NotYourVolume):
            backups.back_up_now(uow.session, j.finance, volume_row_id)
        assert backups.list_backups(uow.session, j.finance, volume_row_id) == []
        # An operator acts on any department's volume.
        backups.take_snapshot(uow.session, j.operator, volume_row_id)


def test_slots_and_periods_are_in_the_provinces_time() -> None:
    # 2026-12-06 is a Sunday; 02:00 UTC+8 is 18:00 UTC the day before.
    at = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)  # 01:00 on the 7th (Monday) in UTC+8
    daily = backups.next_slot(backups.Frequency.DAILY, None, 2, at)
    assert daily == datetime(2026, 12, 6, 18, 0, tzinfo=UTC)
    assert backups.period_of(backups.Frequency.DAILY, daily) == "20261207"
    weekly = backups.next_slot(backups.Frequency.WEEKLY, 2, 2, at)  # Wednesday 02:00
    assert weekly == datetime(2026, 12, 8, 18, 0, tzinfo=UTC)
    assert backups.period_of(backups.Frequency.WEEKLY, weekly) == "2026W50"
    assert backups.next_slot(backups.Frequency.DAILY, None, 2, daily) == daily + timedelta(days=1)


@pytest.mark.parametrize(
    ("form", "field"),
    [
        (backups.ScheduleForm("hourly", 2, 3), "frequency"),
        (backups.ScheduleForm("daily", 24, 3), "hour"),
        (backups.ScheduleForm("daily", 2, 0), "keep"),
        (backups.ScheduleForm("daily", 2, 31), "keep"),
        (backups.ScheduleForm("weekly", 2, 3), "weekday"),
        (backups.ScheduleForm("weekly", 2, 3, weekday=7), "weekday"),
    ],
)
def test_a_schedule_out_of_range_is_refused(journey: Journey, form: backups.ScheduleForm, field: str) -> None:
    j = journey
    volume_row_id = provision_volume(j)
    with pytest.raises(ScheduleInvalid) as refused, j.rt.db.unit_of_work() as uow:
        backups.set_schedule(uow.session, j.staff, volume_row_id, form)
    assert refused.value.field == field


def test_a_schedule_backs_up_once_per_period_and_keeps_n(journey: Journey) -> None:
    j = journey
    volume_row_id = provision_volume(j)
    start = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # 20:00 in UTC+8
    with j.rt.db.unit_of_work() as uow:
        schedule = backups.set_schedule(
            uow.session, j.staff, volume_row_id, backups.ScheduleForm("daily", 2, 2), now=start
        )
        schedule_id = schedule.id
        assert schedule.next_run_at == datetime(2026, 12, 6, 18, 0, tzinfo=UTC)
    assert run_backup_schedules(j.rt.db, now=start + timedelta(hours=5)).queued == []  # not due
    tags = []
    for day in range(4):
        due = datetime(2026, 12, 6, 18, 30, tzinfo=UTC) + timedelta(days=day)
        first = run_backup_schedules(j.rt.db, now=due)
        assert len(first.queued) == 1
        assert run_backup_schedules(j.rt.db, now=due + timedelta(minutes=5)).queued == []  # the same period
        j.drain()
        with j.rt.db.unit_of_work() as uow:
            tags.append(uow.session.get_one(backups.VolumeBackupRecord, first.queued[0]).tag)
    assert tags == [f"cm-bk-{schedule_id}-202612{d:02d}" for d in range(7, 11)]
    # Pruning ran after each day: the two newest are kept, the older ones deleted on the cloud too.
    run_backup_schedules(j.rt.db, now=datetime(2026, 12, 9, 19, 0, tzinfo=UTC))
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        listed = backups.list_backups(uow.session, j.staff, volume_row_id)
        assert [b.tag for b in listed] == tags[:1:-1]
        assert all(b.state == backups.CopyState.READY for b in listed)
    on_cloud = {b.tag for b in simulator(j).list_volume_backups(_project(j, volume_row_id))}
    assert on_cloud == set(tags[2:])
    balance = _balance(j, volume_row_id)[Resource.BACKUPS]
    assert (balance.used, balance.reserved) == (2, 0)


def test_a_schedule_refused_by_quota_skips_its_period_and_goes_on(journey: Journey) -> None:
    j = journey
    volume_row_id = provision_volume(j)
    start = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    with j.rt.db.unit_of_work() as uow:
        backups.set_schedule(
            uow.session, j.staff, volume_row_id, backups.ScheduleForm("weekly", 3, 1, weekday=0), now=start
        )
        volume = uow.session.get_one(ManagedVolume, volume_row_id)
        ledger.set_limits(uow.session, volume.department_id, volume.cloud_id, {Resource.BACKUPS: 0})
    due = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)  # Monday 08:00 in UTC+8
    run = run_backup_schedules(j.rt.db, now=due)
    assert run.queued == [] and len(run.skipped) == 1 and "backups" in run.skipped[0]
    with j.rt.db.unit_of_work() as uow:
        schedule = backups.get_schedule(uow.session, j.staff, volume_row_id)
        assert schedule is not None and schedule.next_run_at == datetime(2026, 12, 13, 19, 0, tzinfo=UTC)
        assert (
            uow.session.scalar(
                select(backups.VolumeBackupRecord.id).where(backups.VolumeBackupRecord.volume_row_id == volume_row_id)
            )
            is None
        )
    assert run_backup_schedules(j.rt.db, now=due).skipped == []  # not due again until next Monday


def test_a_worker_dying_after_the_restore_began_is_taken_over_without_a_second_volume(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = journey
    volume_row_id, digest = _written(j)
    with j.rt.db.unit_of_work() as uow:
        backup_id = backups.back_up_now(uow.session, j.staff, volume_row_id).id
    j.drain()
    project = _project(j, volume_row_id)
    volumes_before = len(simulator(j).list_volumes(project))
    real_restore = SimulatedProvider.restore_volume_backup
    calls: list[str] = []

    def dies_once(
        self: SimulatedProvider, backup: str, *, volume_id: str | None = None, name: str | None = None
    ) -> Volume:
        restored = real_restore(self, backup, volume_id=volume_id, name=name)
        calls.append(restored.id)
        if len(calls) == 1:
            raise RuntimeError("worker killed after asking for the restore")
        return restored

    monkeypatch.setattr(SimulatedProvider, "restore_volume_backup", dies_once)
    with j.rt.db.unit_of_work() as uow:
        new_volume_id = backups.restore_backup(uow.session, j.staff, backup_id).id
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ManagedVolume, new_volume_id).state == VolumeState.CREATING
        # The item waits for its backoff: let it run now, as another worker would later.
        uow.session.execute(update(WorkItem).values(run_after=utcnow() - timedelta(seconds=1)))
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        restored = uow.session.get_one(ManagedVolume, new_volume_id)
        assert restored.state == VolumeState.AVAILABLE, restored.fault
    assert len(simulator(j).list_volumes(project)) == volumes_before + 1
    assert restored.volume_id and simulator(j).volume_content_digest(restored.volume_id) == digest
    assert _balance(j, volume_row_id)[Resource.VOLUMES].reserved == 0
