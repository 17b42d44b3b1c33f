"""A department's volume on the lab's Cinder through cloudmgr.storage (issue 16): made, attached to a
server, enlarged, detached and deleted by the storage work items, each step checked with plain
openstacksdk, the ledger checked as it goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.storage import services as storage
from tests.conftest import ONE_DATABASE
from tests.journey_fixtures import LabJourney
from tests.storage.helpers import active_server, balance


def _cloud_ids(j: LabJourney, volume_id: int) -> tuple[str, str | None]:
    """The volume's Cinder id and the Nova id of the server it is attached to (per cloudmgr)."""
    with j.rt.db.unit_of_work() as uow:
        info = storage.get_volume(uow.session, j.staff, volume_id)
        server = uow.session.get(ManagedServer, info.server_id) if info.server_id else None
        assert info.volume_id
        return info.volume_id, server.server_id if server else None


@pytest.mark.lab
@ONE_DATABASE
def test_on_the_lab_a_volume_is_made_attached_enlarged_detached_and_deleted(lab_journey: LabJourney) -> None:
    from tests.conftest import lab_connection

    j = lab_journey
    conn = lab_connection(Path(j.clouds_yaml))
    made_id: str | None = None
    try:
        server_id = active_server(j, zone="extranet", prefix="labvol")
        with j.rt.db.unit_of_work() as uow:
            volume = storage.create_volume(
                uow.session, j.staff, name="lab-data", size_gb=1, cloud_key="education", volume_type_name="fake"
            )
        assert balance(j, Resource.GIGABYTES) == (0, 1)
        j.drain()
        made_id, _ = _cloud_ids(j, volume.id)
        cinder = conn.block_storage.get_volume(made_id)
        assert (cinder.name, cinder.size, cinder.status, cinder.volume_type) == ("lab-data", 1, "available", "fake")
        assert cinder.project_id == j.project_id
        assert balance(j, Resource.VOLUMES) == (1, 0) and balance(j, Resource.GIGABYTES) == (1, 0)

        with j.rt.db.unit_of_work() as uow:
            storage.attach_volume(uow.session, j.staff, volume.id, server_id)
        j.drain()
        _, nova_id = _cloud_ids(j, volume.id)
        cinder = conn.block_storage.get_volume(made_id)
        assert cinder.status == "in-use" and [a["server_id"] for a in cinder.attachments] == [nova_id]

        with j.rt.db.unit_of_work() as uow:
            storage.extend_volume(uow.session, j.staff, volume.id, 2)
        j.drain()
        with j.rt.db.unit_of_work() as uow:
            enlarged = storage.get_volume(uow.session, j.staff, volume.id)
        assert (enlarged.state, enlarged.size_gb) == ("attached", 2), enlarged.fault
        assert conn.block_storage.get_volume(made_id).size == 2
        assert balance(j, Resource.GIGABYTES) == (2, 0)

        with j.rt.db.unit_of_work() as uow:
            storage.detach_volume(uow.session, j.staff, volume.id)
        j.drain()
        cinder = conn.block_storage.get_volume(made_id)
        assert cinder.status == "available" and not cinder.attachments

        with j.rt.db.unit_of_work() as uow:
            storage.delete_volume(uow.session, j.staff, volume.id)
        j.drain()
        with j.rt.db.unit_of_work() as uow:
            assert storage.get_volume(uow.session, j.staff, volume.id).state == "deleted"
        assert conn.block_storage.find_volume(made_id, ignore_missing=True) is None
        assert balance(j, Resource.VOLUMES) == (0, 0) and balance(j, Resource.GIGABYTES) == (0, 0)
    finally:
        for server in j.nova_servers():
            conn.compute.delete_server(server, ignore_missing=True)
            conn.compute.wait_for_delete(server, wait=120)
        for left in conn.block_storage.volumes(details=True, all_projects=True, project_id=j.project_id):
            conn.block_storage.delete_volume(left, ignore_missing=True)
            conn.block_storage.wait_for_delete(left, wait=120)
