"""A department's server on the lab's Nova through cloudmgr.backups (issue 16): a snapshot taken by
the work item is a Glance image of the department's project carrying its tag, the server is rebuilt
from it (Nova reports the snapshot as the server's image and the server back ACTIVE), and deleting
the snapshot removes the image and gives the department's snapshot back.  Each step is checked
with plain openstacksdk; the test removes the images it made (the journey removes the rest)."""

from __future__ import annotations

from pathlib import Path

import openstack.exceptions
import pytest

from cloudmgr.backups import services as backups
from cloudmgr.backups.models import ServerSnapshotRecord
from cloudmgr.cloud import IMAGE_TAG_PROPERTY
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer
from tests.conftest import ONE_DATABASE
from tests.journey_fixtures import LabJourney
from tests.storage.helpers import active_server, balance


@pytest.mark.lab
@ONE_DATABASE
def test_on_the_lab_a_server_is_snapshotted_restored_and_its_snapshot_deleted(lab_journey: LabJourney) -> None:
    from tests.conftest import lab_connection

    j = lab_journey
    conn = lab_connection(Path(j.clouds_yaml))
    image_id: str | None = None
    try:
        server_row_id = active_server(j, zone="extranet", prefix="labsnap")
        with j.rt.db.unit_of_work() as uow:
            server = uow.session.get_one(ManagedServer, server_row_id)
            nova_id, name = server.server_id, server.name
            record_id = backups.take_server_snapshot(uow.session, j.staff, server_row_id, "lab before").id
        assert nova_id
        assert balance(j, Resource.SNAPSHOTS) == (0, 1)
        j.drain()
        with j.rt.db.unit_of_work() as uow:
            record = uow.session.get_one(ServerSnapshotRecord, record_id)
            assert record.state == backups.CopyState.READY, record.fault
            image_id, tag = record.image_id, record.tag
        assert image_id
        image = conn.image.get_image(image_id)
        assert image.status == "active" and image.name == "lab before"
        assert image.owner_id == j.project_id
        assert (image.properties or {}).get(IMAGE_TAG_PROPERTY) == tag
        assert balance(j, Resource.SNAPSHOTS) == (1, 0)

        with j.rt.db.unit_of_work() as uow:
            backups.restore_server_snapshot(uow.session, j.staff, record_id, confirm=name)
        j.drain()
        with j.rt.db.unit_of_work() as uow:
            record = uow.session.get_one(ServerSnapshotRecord, record_id)
            assert record.restore_state == backups.RestoreState.DONE, record.restore_fault
        nova = conn.compute.get_server(nova_id)
        assert nova.status == "ACTIVE" and nova.image.id == image_id
        assert balance(j, Resource.SNAPSHOTS) == (1, 0)

        with j.rt.db.unit_of_work() as uow:
            backups.delete_server_snapshot(uow.session, j.head, record_id)
        j.drain()
        with j.rt.db.unit_of_work() as uow:
            assert uow.session.get_one(ServerSnapshotRecord, record_id).state == backups.CopyState.DELETED
        with pytest.raises(openstack.exceptions.NotFoundException):
            conn.image.get_image(image_id)
        image_id = None
        assert balance(j, Resource.SNAPSHOTS) == (0, 0)
    finally:
        if image_id:
            conn.image.delete_image(image_id, ignore_missing=True)
