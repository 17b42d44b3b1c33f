"""A department's volumes and public addresses after provisioning (cloudmgr.storage), on the
simulated cloud: every change is decided in the caller's transaction with its quota held, made
by the ``storage`` work item, and recorded (or failed with the reason, the quota given back)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, update

from cloudmgr.cloud import CloudBadRequest
from cloudmgr.cloud.simulated.provider import SimulatedProvider
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Department
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.parts import ManagedAddress, ManagedVolume
from cloudmgr.storage import services as storage
from cloudmgr.storage.errors import (
    StorageConflict,
    StorageForbidden,
    StorageInvalid,
    StorageNotFound,
    StorageProblem,
)
from cloudmgr.workqueue.models import WorkItem
from tests.journey_fixtures import Journey
from tests.storage.helpers import active_server, balance, education


def _provider(j: Journey) -> Any:
    return j.rt.providers.for_cloud("education", "education", None)


def _create(j: Journey, actor: Actor | None = None, **kwargs: Any) -> storage.VolumeInfo:
    values: dict[str, Any] = {"name": "data-a", "size_gb": 10, "cloud_key": "education", "volume_type_name": "fake"}
    values.update(kwargs)
    with j.rt.db.unit_of_work() as uow:
        return storage.create_volume(uow.session, actor or j.staff, **values)


def _get(j: Journey, volume_id: int, actor: Actor | None = None) -> storage.VolumeInfo:
    with j.rt.db.unit_of_work() as uow:
        return storage.get_volume(uow.session, actor or j.staff, volume_id)


def _cloud_volume(j: Journey, volume_id: int) -> Any:
    info = _get(j, volume_id)
    assert info.volume_id
    with j.rt.db.unit_of_work() as uow:
        server = uow.session.get(ManagedServer, info.server_id) if info.server_id else None
        cloud_server = server.server_id if server else None
    return _provider(j).get_volume(info.volume_id), cloud_server


def test_create_attach_extend_detach_delete_with_the_ledger(journey: Journey) -> None:
    j = journey
    server_id = active_server(j)
    used_volumes, _ = balance(j, Resource.VOLUMES)
    used_gb, _ = balance(j, Resource.GIGABYTES)

    made = _create(j, name="日志盘", size_gb=20)
    assert made.state == "pending" and made.server_id is None
    assert made.monthly_price is not None and made.monthly_price >= 0
    assert balance(j, Resource.VOLUMES) == (used_volumes, 1)
    assert balance(j, Resource.GIGABYTES) == (used_gb, 20)
    j.drain()
    assert _get(j, made.id).state == "available"
    cloud_volume, _ = _cloud_volume(j, made.id)
    assert (cloud_volume.size_gb, cloud_volume.status, cloud_volume.name) == (20, "available", "日志盘")
    assert balance(j, Resource.VOLUMES) == (used_volumes + 1, 0)
    assert balance(j, Resource.GIGABYTES) == (used_gb + 20, 0)

    server_name = info_server_name(j, server_id)
    with j.rt.db.unit_of_work() as uow:
        info = storage.get_volume(uow.session, j.staff, made.id)
        assert storage.attach_targets(uow.session, j.staff, info) == [(server_id, server_name)]
        assert storage.attach_volume(uow.session, j.staff, made.id, server_id).state == "attaching"
    j.drain()
    attached = _get(j, made.id)
    assert (attached.state, attached.server_id) == ("attached", server_id)
    cloud_volume, cloud_server = _cloud_volume(j, made.id)
    assert cloud_volume.status == "in-use" and [a.server_id for a in cloud_volume.attachments] == [cloud_server]

    with j.rt.db.unit_of_work() as uow:
        storage.extend_volume(uow.session, j.staff, made.id, 50)
    assert balance(j, Resource.GIGABYTES) == (used_gb + 20, 30)
    j.drain()
    assert (_get(j, made.id).state, _get(j, made.id).size_gb) == ("attached", 50)
    assert _cloud_volume(j, made.id)[0].size_gb == 50
    assert balance(j, Resource.GIGABYTES) == (used_gb + 50, 0)

    with pytest.raises(StorageConflict) as attached_refusal, j.rt.db.unit_of_work() as uow:
        storage.delete_volume(uow.session, j.staff, made.id)
    assert attached_refusal.value.problem is StorageProblem.ATTACHED
    with j.rt.db.unit_of_work() as uow:
        storage.detach_volume(uow.session, j.staff, made.id)
    j.drain()
    detached = _get(j, made.id)
    assert (detached.state, detached.server_id) == ("available", None)
    assert _cloud_volume(j, made.id)[0].attachments == ()

    cloud_id = detached.volume_id
    with j.rt.db.unit_of_work() as uow:
        storage.delete_volume(uow.session, j.staff, made.id)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ManagedVolume, made.id).state == "deleted"
        assert made.id not in {v.id for v in storage.list_volumes(uow.session, j.staff)}
    assert cloud_id not in {v.id for v in _provider(j).list_volumes(education(j)[2])}
    assert balance(j, Resource.VOLUMES) == (used_volumes, 0)
    assert balance(j, Resource.GIGABYTES) == (used_gb, 0)


def info_server_name(j: Journey, server_id: int) -> str:
    with j.rt.db.unit_of_work() as uow:
        return uow.session.get_one(ManagedServer, server_id).name


def test_a_requests_disk_detached_keeps_the_name_it_had_after_its_server(journey: Journey) -> None:
    from tests.servicerequests.test_usable_provisioning import _submit_usable

    j = journey
    request_id = _submit_usable(j, count=1)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        (volume,) = uow.session.scalars(select(ManagedVolume).where(ManagedVolume.request_id == request_id))
        server_name = uow.session.get_one(ManagedServer, volume.server_id).name
        assert volume.name is None  # named after its server while on it
    assert _get(j, volume.id).name == f"{server_name}-data1"
    with j.rt.db.unit_of_work() as uow:
        storage.detach_volume(uow.session, j.staff, volume.id)
    j.drain()
    detached = _get(j, volume.id)
    assert (detached.state, detached.server_id, detached.name) == ("available", None, f"{server_name}-data1")
    assert _provider(j).get_volume(detached.volume_id).name == f"{server_name}-data1"


@pytest.mark.parametrize(
    ("kwargs", "problem", "field"),
    [
        ({"size_gb": 10240}, StorageProblem.SIZE, "size_gb"),
        ({"size_gb": -5}, StorageProblem.SIZE, "size_gb"),
        ({"size_gb": 0}, StorageProblem.SIZE, "size_gb"),
        ({"size_gb": True}, StorageProblem.SIZE, "size_gb"),
        ({"volume_type_name": "gold"}, StorageProblem.VOLUME_TYPE, "volume_type"),
        ({"cloud_key": "health"}, StorageProblem.CLOUD, "cloud"),
        ({"name": "  "}, StorageProblem.NAME, "name"),
        ({"name": "x" * 65}, StorageProblem.NAME, "name"),
        ({"name": "a\x07b"}, StorageProblem.NAME, "name"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    journey: Journey, kwargs: dict[str, Any], problem: StorageProblem, field: str
) -> None:
    with pytest.raises(StorageInvalid) as refused:
        _create(journey, **kwargs)
    assert refused.value.problem is problem and refused.value.field == field
    assert refused.value.message.startswith(f"{field}: ")
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(ManagedVolume)) == 0


def test_quota_exceeded_is_refused_and_nothing_is_made(journey: Journey) -> None:
    j = journey
    department_id, cloud_id, _ = education(j)
    used, reserved = balance(j, Resource.GIGABYTES)
    with j.rt.db.unit_of_work() as uow:
        ledger.set_limits(uow.session, department_id, cloud_id, {Resource.GIGABYTES: used + reserved + 15})
    with pytest.raises(QuotaExceeded) as refused:
        _create(j, size_gb=16)
    assert refused.value.resource == "volume_gb"
    with j.rt.db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(ManagedVolume)) == 0
        assert uow.session.scalar(select(func.count()).select_from(WorkItem).where(WorkItem.kind == "storage")) == 0
    assert balance(j, Resource.GIGABYTES) == (used, reserved)
    # Extending past the limit is refused the same way, the volume left as it was.
    made = _create(j, size_gb=15)
    j.drain()
    with pytest.raises(QuotaExceeded), j.rt.db.unit_of_work() as uow:
        storage.extend_volume(uow.session, j.staff, made.id, 16)
    assert _get(j, made.id).state == "available"
    assert balance(j, Resource.GIGABYTES) == (used + 15, reserved)


def test_another_department_is_refused(journey: Journey) -> None:
    j = journey
    server_id = active_server(j)
    made = _create(j)
    j.drain()
    other = j.other_staff
    assert other.department_id != j.staff.department_id
    with j.rt.db.unit_of_work() as uow:
        session = uow.session
        assert made.id not in {v.id for v in storage.list_volumes(session, other)}
        for attempt in (
            lambda: storage.get_volume(session, other, made.id),
            lambda: storage.attach_volume(session, other, made.id, server_id),
            lambda: storage.extend_volume(session, other, made.id, 20),
            lambda: storage.delete_volume(session, other, made.id),
            lambda: storage.request_public_address(session, other, server_id),
            lambda: storage.release_public_address(session, other, server_id),
        ):
            with pytest.raises(StorageNotFound):
                attempt()
    # Our volume on another department's server: that server is not found either.
    other_department = _other_department(j)
    with j.rt.db.unit_of_work() as uow:
        uow.session.execute(
            update(ManagedServer).where(ManagedServer.id == server_id).values(department_id=other_department)
        )
    with pytest.raises(StorageNotFound) as refused, j.rt.db.unit_of_work() as uow:
        storage.attach_volume(uow.session, j.staff, made.id, server_id)
    assert refused.value.field == "server_id"
    assert _get(j, made.id).state == "available"


def _other_department(j: Journey) -> int:
    with j.rt.db.unit_of_work() as uow:
        return uow.session.scalars(select(Department.id).where(Department.id != j.staff.department_id)).first() or 0


def test_operators_tidy_but_do_not_spend_a_departments_quota(journey: Journey) -> None:
    j = journey
    with pytest.raises(StorageForbidden):
        _create(j, j.operator)
    made = _create(j)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        assert made.id in {v.id for v in storage.list_volumes(uow.session, j.operator)}
        with pytest.raises(StorageForbidden):
            storage.extend_volume(uow.session, j.operator, made.id, 20)
    with j.rt.db.unit_of_work() as uow:
        storage.delete_volume(uow.session, j.operator, made.id)
    j.drain()
    assert _get(j, made.id).state == "deleted"
    with pytest.raises(StorageNotFound), j.rt.db.unit_of_work() as uow:
        storage.get_volume(uow.session, j.finance, made.id)


def test_a_public_address_on_the_internet_zone_and_never_on_the_extranet(journey: Journey) -> None:
    j = journey
    extranet = active_server(j, zone="extranet", prefix="ext")
    with pytest.raises(StorageInvalid) as refused, j.rt.db.unit_of_work() as uow:
        storage.request_public_address(uow.session, j.staff, extranet)
    assert refused.value.problem is StorageProblem.ADDRESS_ZONE and refused.value.field == "zone"
    assert "internet zone" in refused.value.message and "extranet" in refused.value.message

    internet = active_server(j)
    used, _ = balance(j, Resource.FLOATING_IPS)
    with j.rt.db.unit_of_work() as uow:
        assert storage.request_public_address(uow.session, j.staff, internet).state == "pending"
    assert balance(j, Resource.FLOATING_IPS) == (used, 1)
    with pytest.raises(StorageConflict), j.rt.db.unit_of_work() as uow:
        storage.request_public_address(uow.session, j.staff, internet)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        server = uow.session.get_one(ManagedServer, internet)
        row = uow.session.scalars(select(ManagedAddress).where(ManagedAddress.server_id == internet)).one()
        assert row.state == "associated" and server.addresses["public"] == [row.address]
        cloud_server = server.server_id
    floating = {f.address: f for f in _provider(j).list_floating_ips(education(j)[2])}
    assert floating[row.address].server_id == cloud_server
    assert balance(j, Resource.FLOATING_IPS) == (used + 1, 0)

    with j.rt.db.unit_of_work() as uow:
        storage.release_public_address(uow.session, j.staff, internet)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        assert "public" not in uow.session.get_one(ManagedServer, internet).addresses
    assert row.address not in {f.address for f in _provider(j).list_floating_ips(education(j)[2])}
    assert balance(j, Resource.FLOATING_IPS) == (used, 0)
    # Asked again after the release: a new address.
    with j.rt.db.unit_of_work() as uow:
        storage.request_public_address(uow.session, j.staff, internet)
    j.drain()
    assert balance(j, Resource.FLOATING_IPS) == (used + 1, 0)


def test_a_failing_cloud_call_marks_the_volume_failed_and_gives_the_quota_back(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = journey
    used, reserved = balance(j, Resource.GIGABYTES)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise CloudBadRequest("no space left on the backend")

    with monkeypatch.context() as patched:
        patched.setattr(SimulatedProvider, "create_volume", refuse)
        made = _create(j, size_gb=30)
        j.drain()
    failed = _get(j, made.id)
    assert failed.state == "failed" and failed.fault and "no space left on the backend" in failed.fault
    assert balance(j, Resource.GIGABYTES) == (used, reserved)
    # A failed volume can be deleted; nothing of it was counted, nothing is given back.
    with j.rt.db.unit_of_work() as uow:
        storage.delete_volume(uow.session, j.staff, made.id)
    j.drain()
    assert _get(j, made.id).state == "deleted"
    assert balance(j, Resource.GIGABYTES) == (used, reserved)

    # A failed extend leaves the volume as it was, with the reason, and releases the extra GB.
    grown = _create(j, size_gb=10)
    j.drain()
    with monkeypatch.context() as patched:
        patched.setattr(SimulatedProvider, "extend_volume", refuse)
        with j.rt.db.unit_of_work() as uow:
            storage.extend_volume(uow.session, j.staff, grown.id, 40)
        j.drain()
    after = _get(j, grown.id)
    assert (after.state, after.size_gb) == ("available", 10)
    assert after.fault and after.fault.startswith("extend: ")
    assert balance(j, Resource.GIGABYTES) == (used + 10, reserved)


def test_extend_only_grows_and_attach_only_to_an_active_server_of_the_cloud(journey: Journey) -> None:
    j = journey
    server_id = active_server(j)
    made = _create(j, size_gb=10)
    with pytest.raises(StorageConflict) as busy, j.rt.db.unit_of_work() as uow:
        storage.attach_volume(uow.session, j.staff, made.id, server_id)
    assert busy.value.problem is StorageProblem.VOLUME_BUSY
    j.drain()
    for size in (10, 5, 2049):
        with pytest.raises(StorageInvalid) as refused, j.rt.db.unit_of_work() as uow:
            storage.extend_volume(uow.session, j.staff, made.id, size)
        assert refused.value.field == "size_gb"
    with j.rt.db.unit_of_work() as uow:
        uow.session.execute(update(ManagedServer).where(ManagedServer.id == server_id).values(state="stopped"))
    with pytest.raises(StorageConflict) as stopped, j.rt.db.unit_of_work() as uow:
        storage.attach_volume(uow.session, j.staff, made.id, server_id)
    assert stopped.value.problem is StorageProblem.SERVER_NOT_ACTIVE
