"""On the lab's Cinder (issue 16): a department volume backed up and restored through
cloudmgr.backups holds byte for byte what was written into it before the backup.  The lab's
Cinder driver keeps each volume as a sparse file under .lab/data/cinder/lab-volumes (see
tests/cloud/test_volumes.py), so the bytes are written and read there."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from cloudmgr.backups import services as backups
from cloudmgr.backups.models import VolumeBackupRecord, VolumeSnapshotRecord
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.organisation.models import Cloud
from cloudmgr.servicerequests.parts import ManagedVolume, VolumeState
from tests.backups.helpers import provision_volume
from tests.conftest import ONE_DATABASE, REPO
from tests.journey_fixtures import LabJourney

LAB_VOLUMES_DIR = REPO / ".lab" / "data" / "cinder" / "lab-volumes"
GIB = 1024**3


def _file(volume_id: str) -> Path:
    return LAB_VOLUMES_DIR / f"volume-{volume_id}"


def _digest(volume_id: str) -> str:
    digest = hashlib.sha256()
    with open(_file(volume_id), "rb") as fh:
        while chunk := fh.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.lab
@ONE_DATABASE
def test_on_the_lab_a_backup_restores_byte_for_byte(lab_journey: LabJourney) -> None:
    from tests.conftest import lab_connection

    j = lab_journey
    conn = lab_connection(Path(j.clouds_yaml))
    try:
        volume_row_id = provision_volume(j, size_gb=1)
        with j.rt.db.unit_of_work() as uow:
            source = uow.session.get_one(ManagedVolume, volume_row_id).volume_id
        assert source
        with open(_file(source), "r+b") as fh:
            for offset in (0, GIB // 2 + 12345, GIB - 65536 - 1):
                fh.seek(offset)
                fh.write(hashlib.sha256(f"{source}:{offset}".encode()).digest() * 2048)
        written = _digest(source)
        with j.rt.db.unit_of_work() as uow:
            backup_id = backups.back_up_now(uow.session, j.staff, volume_row_id).id
        j.drain()
        with j.rt.db.unit_of_work() as uow:
            backup = uow.session.get_one(VolumeBackupRecord, backup_id)
            assert backup.state == backups.CopyState.READY, backup.fault
            restored_row_id = backups.restore_backup(uow.session, j.staff, backup_id).id
        j.drain()
        with j.rt.db.unit_of_work() as uow:
            restored = uow.session.get_one(ManagedVolume, restored_row_id)
            assert restored.state == VolumeState.AVAILABLE, restored.fault
            assert restored.volume_id
        assert _digest(restored.volume_id) == written
    finally:
        provider = education_provider(j)
        for server in j.nova_servers():
            conn.compute.delete_server(server, ignore_missing=True)
            conn.compute.wait_for_delete(server, wait=120)
        with j.rt.db.unit_of_work() as uow:
            backup_ids = [b for b in uow.session.scalars(select(VolumeBackupRecord.backup_id)) if b]
            snapshot_ids = [s for s in uow.session.scalars(select(VolumeSnapshotRecord.snapshot_id)) if s]
        for cloud_backup_id in backup_ids:
            provider.delete_volume_backup(cloud_backup_id, wait=True, timeout=600)
        for cloud_snapshot_id in snapshot_ids:
            provider.delete_volume_snapshot(cloud_snapshot_id, wait=True)
        for volume in provider.list_volumes(j.project_id):
            provider.delete_volume(volume.id, wait=True)


def education_provider(j: LabJourney) -> CloudProvider:
    with j.rt.db.unit_of_work() as uow:
        cloud = uow.session.scalars(select(Cloud).where(Cloud.key == "education")).one()
        return j.rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
