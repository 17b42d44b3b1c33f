"""Snapshots of a department's server and the rebuild that restores one, on the simulator (issue
16): the snapshot is one of the department's SNAPSHOTS (held, then used, given back once when
deleted), the rebuilt server's disk holds what the snapshot held, bad input and the wrong state
are refused with the field named, and the department wall holds.  Also the department deleting
its volumes' snapshots and hand-made backups, each giving its quota back exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from cloudmgr.backups import services as backups
from cloudmgr.backups.errors import (
    CopyConflict,
    CopyInvalid,
    CopyNotFound,
    CopyProblem,
    NotYourServer,
    ServerNotFound,
)
from cloudmgr.backups.jobs import handle_delete, run_backup_schedules
from cloudmgr.cloud import CloudError, Image
from cloudmgr.cloud.simulated.provider import SimulatedProvider
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.parts import ManagedVolume
from cloudmgr.servicerequests.states import ServerState
from cloudmgr.workqueue.models import WorkItem
from cloudmgr.workqueue.services import ClaimedItem
from tests.backups.helpers import provision_volume, simulator
from tests.journey_fixtures import Journey
from tests.storage.helpers import active_server, balance, education


def _cloud_server_id(j: Journey, server_row_id: int) -> str:
    with j.rt.db.unit_of_work() as uow:
        server_id = uow.session.get_one(ManagedServer, server_row_id).server_id
    assert server_id
    return server_id


def _snapshot(j: Journey, server_row_id: int, name: str = "before the upgrade") -> int:
    with j.rt.db.unit_of_work() as uow:
        return backups.take_server_snapshot(uow.session, j.staff, server_row_id, name).id


def _record(j: Journey, record_id: int) -> backups.ServerSnapshotRecord:
    with j.rt.db.unit_of_work() as uow:
        record = uow.session.get_one(backups.ServerSnapshotRecord, record_id)
        uow.session.expunge(record)
        return record


def _images_tagged(j: Journey, tag: str) -> list[Image]:
    return [i for i in simulator(j).list_images() if i.tag == tag]


def test_a_snapshot_is_made_once_counted_as_a_snapshot_and_listed(journey: Journey) -> None:
    j = journey
    server_row_id = active_server(j)
    before = balance(j, Resource.SNAPSHOTS)
    gb_before = balance(j, Resource.GIGABYTES)
    record_id = _snapshot(j, server_row_id, "  before the upgrade  ")
    assert balance(j, Resource.SNAPSHOTS) == (before[0], before[1] + 1)
    pending = _record(j, record_id)
    assert pending.state == backups.CopyState.PENDING and pending.name == "before the upgrade"
    # A worker that died after asking the cloud: the next run finds the image by its tag.
    simulator(j).create_snapshot(_cloud_server_id(j, server_row_id), "x", idempotency_tag=pending.tag)
    j.drain()
    ready = _record(j, record_id)
    assert ready.state == backups.CopyState.READY, ready.fault
    assert ready.image_id and ready.size_bytes and ready.size_bytes > 0
    assert [i.id for i in _images_tagged(j, ready.tag)] == [ready.image_id]
    _, _, project_id = education(j)
    assert simulator(j).get_image(ready.image_id).owner_project_id == project_id
    assert balance(j, Resource.SNAPSHOTS) == (before[0] + 1, before[1])
    assert balance(j, Resource.GIGABYTES) == gb_before  # an image is not in Cinder's gigabytes
    with j.rt.db.unit_of_work() as uow:
        listed = backups.list_server_snapshots(uow.session, j.head, server_row_id)
        assert [(s.id, s.name) for s in listed] == [(record_id, "before the upgrade")]


def test_a_restore_rebuilds_the_server_with_the_snapshots_disk(journey: Journey) -> None:
    j = journey
    server_row_id = active_server(j)
    cloud_server = _cloud_server_id(j, server_row_id)
    sim = simulator(j)
    sim.write_server_disk(cloud_server, b"licences issued until Monday")
    monday = sim.server_disk_digest(cloud_server)
    record_id = _snapshot(j, server_row_id)
    j.drain()
    sim.write_server_disk(cloud_server, b"a failed upgrade on Tuesday")
    used = balance(j, Resource.SNAPSHOTS)
    with j.rt.db.unit_of_work() as uow:
        with pytest.raises(CopyInvalid) as refused:
            backups.restore_server_snapshot(uow.session, j.staff, record_id, confirm="yes")
        assert refused.value.field == "confirm" and refused.value.http_status == 400
    with j.rt.db.unit_of_work() as uow:
        name = uow.session.get_one(ManagedServer, server_row_id).name
        restoring = backups.restore_server_snapshot(uow.session, j.staff, record_id, confirm=f" {name} ")
        assert restoring.restore_state == backups.RestoreState.QUEUED
    with j.rt.db.unit_of_work() as uow:
        # One rebuild or snapshot of a server at a time.
        with pytest.raises(CopyConflict) as busy:
            backups.take_server_snapshot(uow.session, j.staff, server_row_id, "again")
        assert busy.value.problem == CopyProblem.SERVER_BUSY and busy.value.http_status == 409
        with pytest.raises(CopyConflict):
            backups.delete_server_snapshot(uow.session, j.staff, record_id)
    j.drain()
    done = _record(j, record_id)
    assert done.restore_state == backups.RestoreState.DONE, done.restore_fault
    assert done.restored_at is not None and done.restore_requested_by == j.staff.username
    assert sim.server_disk_digest(cloud_server) == monday
    rebuilt = sim.get_server(cloud_server)
    assert rebuilt.status == "ACTIVE" and rebuilt.image_id == done.image_id
    with j.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ManagedServer, server_row_id).state == ServerState.ACTIVE
    assert balance(j, Resource.SNAPSHOTS) == used  # a rebuild takes no quota


def test_no_stop_start_delete_or_resize_races_a_restore(journey: Journey) -> None:
    """The restore's rebuild is the cloud's work on the server: the server's own actions wait."""
    from cloudmgr.servicerequests import services as requests_service
    from cloudmgr.servicerequests.errors import InvalidTransition
    from cloudmgr.servicerequests.lifecycle import may_act_on_server, may_resize

    j = journey
    server_row_id = active_server(j)
    record_id = _snapshot(j, server_row_id)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        name = uow.session.get_one(ManagedServer, server_row_id).name
        backups.restore_server_snapshot(uow.session, j.staff, record_id, confirm=name)
    with j.rt.db.unit_of_work() as uow:
        server = uow.session.get_one(ManagedServer, server_row_id)
        assert not may_act_on_server(j.staff, server, "stop") and not may_resize(j.staff, server)
        for action in ("stop", "delete"):
            with pytest.raises(InvalidTransition, match="being restored"):
                requests_service.server_action(uow.session, j.staff, server_row_id, action, confirm=name)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        server = uow.session.get_one(ManagedServer, server_row_id)
        assert may_act_on_server(j.staff, server, "stop")
        requests_service.server_action(uow.session, j.staff, server_row_id, "stop")


def test_a_restore_that_the_cloud_refuses_says_why(journey: Journey, monkeypatch: pytest.MonkeyPatch) -> None:
    j = journey
    server_row_id = active_server(j)
    record_id = _snapshot(j, server_row_id)
    j.drain()
    # The image went behind cloudmgr's back: Nova refuses the rebuild as a bad request.
    simulator(j).delete_image(_record(j, record_id).image_id or "")
    with j.rt.db.unit_of_work() as uow:
        name = uow.session.get_one(ManagedServer, server_row_id).name
        backups.restore_server_snapshot(uow.session, j.staff, record_id, confirm=name)
    j.drain()
    failed = _record(j, record_id)
    assert failed.restore_state == backups.RestoreState.FAILED
    assert failed.restore_fault and "image" in failed.restore_fault.lower()
    assert failed.state == backups.CopyState.READY


@pytest.mark.parametrize(
    ("name", "field"),
    [("", "name"), ("   ", "name"), ("x" * 65, "name"), ("tab\there", "name")],
)
def test_a_bad_name_is_refused_and_nothing_is_held(journey: Journey, name: str, field: str) -> None:
    j = journey
    server_row_id = active_server(j)
    before = balance(j, Resource.SNAPSHOTS)
    with pytest.raises(CopyInvalid) as refused, j.rt.db.unit_of_work() as uow:
        backups.take_server_snapshot(uow.session, j.staff, server_row_id, name)
    assert refused.value.field == field and refused.value.http_status == 400
    assert balance(j, Resource.SNAPSHOTS) == before


def test_a_server_in_the_wrong_state_is_refused(journey: Journey) -> None:
    j = journey
    server_row_id = active_server(j)
    record_id = _snapshot(j, server_row_id)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        server = uow.session.get_one(ManagedServer, server_row_id)
        server.state = ServerState.DELETING
        name = server.name
    with j.rt.db.unit_of_work() as uow:
        with pytest.raises(CopyConflict) as refused:
            backups.take_server_snapshot(uow.session, j.staff, server_row_id, "late")
        assert refused.value.problem == CopyProblem.SERVER_NOT_READY and refused.value.field == "server_id"
        with pytest.raises(CopyConflict):
            backups.restore_server_snapshot(uow.session, j.staff, record_id, confirm=name)


def test_a_stopped_server_is_snapshotted_and_restored_stopped(journey: Journey) -> None:
    j = journey
    server_row_id = active_server(j)
    cloud_server = _cloud_server_id(j, server_row_id)
    simulator(j).stop_server(cloud_server)
    with j.rt.db.unit_of_work() as uow:
        server = uow.session.get_one(ManagedServer, server_row_id)
        server.state = ServerState.STOPPED
        name = server.name
    record_id = _snapshot(j, server_row_id)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        backups.restore_server_snapshot(uow.session, j.head, record_id, confirm=name)
    j.drain()
    assert _record(j, record_id).restore_state == backups.RestoreState.DONE
    assert simulator(j).get_server(cloud_server).status == "SHUTOFF"


def test_the_snapshot_quota_is_shared_with_volume_snapshots(journey: Journey) -> None:
    j = journey
    server_row_id = active_server(j)
    department_id, cloud_id, _ = education(j)
    used, reserved = balance(j, Resource.SNAPSHOTS)
    with j.rt.db.unit_of_work() as uow:
        ledger.set_limits(uow.session, department_id, cloud_id, {Resource.SNAPSHOTS: used + reserved})
    with pytest.raises(QuotaExceeded) as refused, j.rt.db.unit_of_work() as uow:
        backups.take_server_snapshot(uow.session, j.staff, server_row_id, "one too many")
    assert refused.value.http_status == 409 and refused.value.resource == "snapshots"
    with j.rt.db.unit_of_work() as uow:
        assert backups.list_server_snapshots(uow.session, j.staff, server_row_id) == []


def test_the_department_wall(journey: Journey) -> None:
    j = journey
    server_row_id = active_server(j)
    record_id = _snapshot(j, server_row_id)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        name = uow.session.get_one(ManagedServer, server_row_id).name
        with pytest.raises(ServerNotFound):
            backups.take_server_snapshot(uow.session, j.other_staff, server_row_id, "theirs")
        with pytest.raises(ServerNotFound):
            backups.list_server_snapshots(uow.session, j.other_staff, server_row_id)
        with pytest.raises(CopyNotFound):
            backups.restore_server_snapshot(uow.session, j.other_staff, record_id, confirm=name)
        with pytest.raises(CopyNotFound):
            backups.delete_server_snapshot(uow.session, j.other_staff, record_id)
        with pytest.raises(NotYourServer):
            backups.take_server_snapshot(uow.session, j.finance, server_row_id, "finance")
        with pytest.raises(NotYourServer):
            backups.delete_server_snapshot(uow.session, j.finance, record_id)
        assert [s.id for s in backups.list_server_snapshots(uow.session, j.finance, server_row_id)] == [record_id]
        # An operator acts on any department's server, as on its volumes.
        backups.take_server_snapshot(uow.session, j.operator, server_row_id, "by the operator")
    assert _record(j, record_id).state == backups.CopyState.READY


def test_a_deleted_server_snapshot_gives_its_snapshot_back_once(journey: Journey) -> None:
    j = journey
    server_row_id = active_server(j)
    before = balance(j, Resource.SNAPSHOTS)
    record_id = _snapshot(j, server_row_id)
    j.drain()
    image_id = _record(j, record_id).image_id
    assert balance(j, Resource.SNAPSHOTS)[0] == before[0] + 1
    with j.rt.db.unit_of_work() as uow:
        assert backups.delete_server_snapshot(uow.session, j.staff, record_id).state == backups.CopyState.DELETING
    with j.rt.db.unit_of_work() as uow:
        # Asked again while it is being deleted: nothing more is queued.
        backups.delete_server_snapshot(uow.session, j.head, record_id)
        items = uow.session.scalars(select(WorkItem).where(WorkItem.key == f"delete-server-snapshot:{record_id}"))
        (item,) = items.all()
        claimed = ClaimedItem(item.id, item.kind, item.key, dict(item.payload), 0, 8, "test")
    j.drain()
    assert _record(j, record_id).state == backups.CopyState.DELETED
    with pytest.raises(CloudError):
        simulator(j).get_image(image_id or "")
    assert balance(j, Resource.SNAPSHOTS) == before
    # The same item run again (a worker taken over) gives nothing back a second time.
    handle_delete(j.rt.db, claimed)
    assert balance(j, Resource.SNAPSHOTS) == before
    with j.rt.db.unit_of_work() as uow:
        with pytest.raises(CopyNotFound):
            backups.delete_server_snapshot(uow.session, j.staff, record_id)
        assert backups.list_server_snapshots(uow.session, j.staff, server_row_id) == []


def test_a_failed_server_snapshot_is_deleted_without_giving_back_twice(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = journey
    server_row_id = active_server(j)
    before = balance(j, Resource.SNAPSHOTS)

    def refused(self: SimulatedProvider, *args: object, **kwargs: object) -> Image:
        raise CloudError("createImage refused: the hypervisor could not quiesce the guest")

    monkeypatch.setattr(SimulatedProvider, "create_snapshot", refused)
    record_id = _snapshot(j, server_row_id)
    j.drain()
    failed = _record(j, record_id)
    assert failed.state == backups.CopyState.FAILED and "quiesce" in (failed.fault or "")
    assert balance(j, Resource.SNAPSHOTS) == before  # the hold went back
    monkeypatch.undo()
    with j.rt.db.unit_of_work() as uow:
        backups.delete_server_snapshot(uow.session, j.staff, record_id)
    j.drain()
    assert _record(j, record_id).state == backups.CopyState.DELETED
    assert balance(j, Resource.SNAPSHOTS) == before


def test_a_snapshot_the_cloud_will_not_delete_is_back_with_the_reason(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = journey
    server_row_id = active_server(j)
    record_id = _snapshot(j, server_row_id)
    j.drain()
    used = balance(j, Resource.SNAPSHOTS)

    def protected(self: SimulatedProvider, image_id: str) -> None:
        raise CloudError("delete image refused", "Image is protected")

    monkeypatch.setattr(SimulatedProvider, "delete_image", protected)
    with j.rt.db.unit_of_work() as uow:
        backups.delete_server_snapshot(uow.session, j.staff, record_id)
    j.drain()
    back = _record(j, record_id)
    assert back.state == backups.CopyState.READY and "protected" in (back.fault or "")
    assert balance(j, Resource.SNAPSHOTS) == used


# --- the department deletes its volumes' snapshots and hand-made backups -----------------------


def _volume_balance(j: Journey, volume_row_id: int, resource: Resource) -> tuple[int, int]:
    with j.rt.db.unit_of_work() as uow:
        volume = uow.session.get_one(ManagedVolume, volume_row_id)
        row = ledger.balance(uow.session, volume.department_id, volume.cloud_id).resources[resource]
        return row.used, row.reserved


def test_a_deleted_volume_snapshot_gives_back_its_snapshot_and_gb_once(journey: Journey) -> None:
    j = journey
    volume_row_id = provision_volume(j)
    snapshots, gigabytes = (_volume_balance(j, volume_row_id, r) for r in (Resource.SNAPSHOTS, Resource.GIGABYTES))
    with j.rt.db.unit_of_work() as uow:
        snapshot_id = backups.take_snapshot(uow.session, j.staff, volume_row_id).id
    j.drain()
    assert _volume_balance(j, volume_row_id, Resource.GIGABYTES)[0] == gigabytes[0] + 10
    with j.rt.db.unit_of_work() as uow:
        cloud_snapshot = backups.get_snapshot(uow.session, j.staff, snapshot_id).snapshot_id
        # Not while a new volume is being made from it.
        backups.restore_snapshot(uow.session, j.staff, snapshot_id)
    with j.rt.db.unit_of_work() as uow:
        with pytest.raises(CopyConflict) as in_use:
            backups.delete_volume_snapshot(uow.session, j.staff, snapshot_id)
        assert in_use.value.problem == CopyProblem.COPY_IN_USE
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        backups.delete_volume_snapshot(uow.session, j.staff, snapshot_id)
        backups.delete_volume_snapshot(uow.session, j.staff, snapshot_id)  # again: nothing more
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        assert backups.list_snapshots(uow.session, j.staff, volume_row_id) == []
    with pytest.raises(CloudError):
        simulator(j).get_volume_snapshot(cloud_snapshot or "")
    assert _volume_balance(j, volume_row_id, Resource.SNAPSHOTS) == snapshots
    # The restored volume stays (10 GB more than before), the snapshot's 10 GB went back.
    assert _volume_balance(j, volume_row_id, Resource.GIGABYTES) == (gigabytes[0] + 10, gigabytes[1])


def test_a_pending_copy_is_not_deleted(journey: Journey) -> None:
    j = journey
    volume_row_id = provision_volume(j)
    with j.rt.db.unit_of_work() as uow:
        snapshot_id = backups.take_snapshot(uow.session, j.staff, volume_row_id).id
        backup_id = backups.back_up_now(uow.session, j.staff, volume_row_id).id
    with j.rt.db.unit_of_work() as uow:
        with pytest.raises(CopyConflict) as pending:
            backups.delete_volume_snapshot(uow.session, j.staff, snapshot_id)
        assert pending.value.problem == CopyProblem.COPY_BUSY
        with pytest.raises(CopyConflict):
            backups.delete_backup(uow.session, j.staff, backup_id)


def test_a_hand_made_backup_is_deleted_and_a_scheduled_one_is_its_schedules(journey: Journey) -> None:
    j = journey
    volume_row_id = provision_volume(j)
    backups_before = _volume_balance(j, volume_row_id, Resource.BACKUPS)
    with j.rt.db.unit_of_work() as uow:
        manual_id = backups.back_up_now(uow.session, j.staff, volume_row_id).id
        backups.set_schedule(
            uow.session,
            j.staff,
            volume_row_id,
            backups.ScheduleForm("daily", 2, 3),
            now=datetime(2026, 12, 6, 12, 0, tzinfo=UTC),
        )
    run = run_backup_schedules(j.rt.db, now=datetime(2026, 12, 6, 18, 30, tzinfo=UTC))
    (scheduled_id,) = run.queued
    j.drain()
    assert _volume_balance(j, volume_row_id, Resource.BACKUPS) == (backups_before[0] + 2, backups_before[1])
    with j.rt.db.unit_of_work() as uow:
        with pytest.raises(CopyConflict) as scheduled:
            backups.delete_backup(uow.session, j.staff, scheduled_id)
        assert scheduled.value.problem == CopyProblem.SCHEDULED_BACKUP
        cloud_backup = backups.get_backup(uow.session, j.staff, manual_id).backup_id
        backups.delete_backup(uow.session, j.staff, manual_id)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        assert [b.id for b in backups.list_backups(uow.session, j.staff, volume_row_id)] == [scheduled_id]
    with pytest.raises(CloudError):
        simulator(j).get_volume_backup(cloud_backup or "")
    assert _volume_balance(j, volume_row_id, Resource.BACKUPS) == (backups_before[0] + 1, backups_before[1])
    # Once the schedule is gone its backups are kept as if made by hand, and may be deleted.
    with j.rt.db.unit_of_work() as uow:
        backups.delete_schedule(uow.session, j.staff, volume_row_id)
    with j.rt.db.unit_of_work() as uow:
        backups.delete_backup(uow.session, j.head, scheduled_id)
    j.drain()
    assert _volume_balance(j, volume_row_id, Resource.BACKUPS) == backups_before


def test_a_failed_backup_is_deleted_without_giving_anything_back(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = journey
    volume_row_id = provision_volume(j)
    before = _volume_balance(j, volume_row_id, Resource.BACKUPS)

    def refused(self: SimulatedProvider, *args: object, **kwargs: object) -> None:
        raise CloudError("create backup refused", "the backup service is misconfigured")

    monkeypatch.setattr(SimulatedProvider, "create_volume_backup", refused)
    with j.rt.db.unit_of_work() as uow:
        backup_id = backups.back_up_now(uow.session, j.staff, volume_row_id).id
    j.drain()
    monkeypatch.undo()
    with j.rt.db.unit_of_work() as uow:
        assert backups.get_backup(uow.session, j.staff, backup_id).state == backups.CopyState.FAILED
        backups.delete_backup(uow.session, j.staff, backup_id)
    j.drain()
    assert _volume_balance(j, volume_row_id, Resource.BACKUPS) == before


def test_another_department_deletes_nothing(journey: Journey) -> None:
    j = journey
    volume_row_id = provision_volume(j)
    with j.rt.db.unit_of_work() as uow:
        snapshot_id = backups.take_snapshot(uow.session, j.staff, volume_row_id).id
        backup_id = backups.back_up_now(uow.session, j.staff, volume_row_id).id
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        with pytest.raises(CopyNotFound):
            backups.delete_volume_snapshot(uow.session, j.other_staff, snapshot_id)
        with pytest.raises(CopyNotFound):
            backups.delete_backup(uow.session, j.other_staff, backup_id)
    with j.rt.db.unit_of_work() as uow:
        assert backups.get_snapshot(uow.session, j.staff, snapshot_id).state == backups.CopyState.READY
        assert backups.get_backup(uow.session, j.staff, backup_id).state == backups.CopyState.READY
