"""The CloudProvider's volumes, volume snapshots and backups (issue 16), run against the
simulator and the lab OpenStack alike (see conftest.py).

Data checks: the lab's Cinder driver keeps each volume as a sparse file under
``.lab/data/cinder/lab-volumes`` (the city cloud's under ``.lab/city``: tests/lab_paths.py;
vagrant/lab/cloudmgr_lab_ml2/volume.py), so bytes written
into a volume's file there must come back byte for byte from its snapshot and its backup;
the simulator keeps a digest of what was written into each volume instead.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from cloudmgr.cloud import (
    CloudBadRequest,
    CloudConflict,
    CloudError,
    CloudNotFound,
    CloudProvider,
    ProjectRef,
    Volume,
    VolumeAttachment,
)
from cloudmgr.cloud.simulated import SimulatedProvider
from tests.lab_paths import volume_file

from .conftest import RUN_ID, CloudTestEnv, lab_clouds_yaml

log = logging.getLogger(__name__)

GIB = 1024**3
# Cinder on the loaded lab: a 1 GB backup or restore takes up to a minute.
VOLUME_TIMEOUT = 180.0
BACKUP_TIMEOUT = 600.0


def _tag(label: str) -> str:
    return f"{RUN_ID}-{label}-{secrets.token_hex(4)}"


# ---- a volume's data, as the cloud stores it ------------------------------------------


def write_known_bytes(cloud: CloudTestEnv, volume_id: str) -> None:
    """Distinct bytes at the start, the middle and near the end of a 1 GB volume."""
    writes = [
        (offset, hashlib.sha256(f"{volume_id}:{offset}".encode()).digest() * 2048)
        for offset in (0, GIB // 2 + 12345, GIB - 65536 - 1)
    ]
    if isinstance(cloud.provider, SimulatedProvider):
        for offset, data in writes:
            cloud.provider.write_volume_data(volume_id, offset, data)
        return
    with volume_file(cloud.lab_cloud, volume_id).open("r+b") as fh:
        for offset, data in writes:
            fh.seek(offset)
            fh.write(data)


def content_digest(cloud: CloudTestEnv, volume_id: str) -> str:
    if isinstance(cloud.provider, SimulatedProvider):
        return cloud.provider.volume_content_digest(volume_id)
    digest = hashlib.sha256()
    with volume_file(cloud.lab_cloud, volume_id).open("rb") as fh:
        while chunk := fh.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


# ---- cleanup ---------------------------------------------------------------------------


@dataclass
class Made:
    """What a test created, removed in dependency order when it ends."""

    provider: CloudProvider
    volumes: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)

    def volume(self, volume: Volume) -> Volume:
        self.volumes.append(volume.id)
        return volume

    def cleanup(self) -> None:
        provider = self.provider
        for volume_id in self.volumes:
            try:
                for attachment in provider.get_volume(volume_id).attachments:
                    provider.detach_volume(attachment.server_id, volume_id)
                provider.wait_volume(volume_id, {"available", "error"}, timeout=VOLUME_TIMEOUT)
            except CloudNotFound:
                pass
            except CloudError:
                log.warning("could not detach volume %s", volume_id, exc_info=True)
        # Newest backup first: an incremental one must go before the one it builds on.
        steps = [
            *((provider.delete_volume_backup, b) for b in reversed(self.backups)),
            # Volumes made from a snapshot go before it, their sources after it.
            *((provider.delete_volume, v) for v in reversed(self.volumes[1:])),
            *((provider.delete_volume_snapshot, s) for s in self.snapshots),
            *((provider.delete_volume, v) for v in self.volumes[:1]),
        ]
        for delete, resource_id in steps:
            try:
                delete(resource_id, wait=True, timeout=BACKUP_TIMEOUT)
            except CloudError:
                log.warning("could not delete %s", resource_id, exc_info=True)


@pytest.fixture
def made(cloud: CloudTestEnv) -> Iterator[Made]:
    tracked = Made(cloud.provider)
    yield tracked
    tracked.cleanup()


@pytest.fixture(scope="module")
def volume_project(cloud: CloudTestEnv) -> ProjectRef:
    return cloud.new_project("volumes")


# ---- tests -----------------------------------------------------------------------------


def test_volume_types_are_the_labs(provider: CloudProvider) -> None:
    types = provider.list_volume_types()
    assert {"fake", "ssd"} <= {t.name for t in types}
    assert all(t.id for t in types)


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "1"])
def test_a_size_that_is_not_a_positive_whole_number_is_a_bad_request(
    cloud: CloudTestEnv, volume_project: ProjectRef, size: object
) -> None:
    tag = _tag("bad-size")
    with pytest.raises(CloudBadRequest):
        cloud.provider.create_volume(volume_project.id, "cmct-bad-size", size, None, tag)  # type: ignore[arg-type]
    assert cloud.provider.find_volume_by_tag(volume_project.id, tag) is None


def test_unknown_volume_type_snapshot_and_volume_are_not_found(cloud: CloudTestEnv, volume_project: ProjectRef) -> None:
    provider = cloud.provider
    with pytest.raises(CloudNotFound):
        provider.create_volume(volume_project.id, "cmct-no-type", 1, "no-such-type", _tag("no-type"))
    with pytest.raises(CloudNotFound):
        provider.create_volume(
            volume_project.id, "cmct-no-snap", 1, None, _tag("no-snap"), snapshot_id=secrets.token_hex(16)
        )
    missing = "00000000-0000-4000-8000-" + secrets.token_hex(6)
    for read in (provider.get_volume, provider.get_volume_snapshot, provider.get_volume_backup):
        with pytest.raises(CloudNotFound):
            read(missing)
    # Deleting what does not exist is done.
    provider.delete_volume(missing)
    provider.delete_volume_snapshot(missing)
    provider.delete_volume_backup(missing)


def test_create_volume_is_idempotent_by_tag(cloud: CloudTestEnv, volume_project: ProjectRef, made: Made) -> None:
    provider = cloud.provider
    tag = _tag("idem")
    # A first try (no look-up before) is found by its tag by every later call.
    first = made.volume(provider.create_volume(volume_project.id, "cmct-idem", 1, "ssd", tag, first_try=True))
    assert first.tag == tag
    again = provider.create_volume(volume_project.id, "cmct-idem-renamed", 2, None, tag)
    assert again.id == first.id
    assert (again.name, again.size_gb, again.volume_type, again.tag) == ("cmct-idem", 1, "ssd", tag)
    # Compared once it is available: a volume still being created may change status between the two reads.
    ready = provider.wait_volume(first.id, {"available"}, timeout=VOLUME_TIMEOUT)
    assert provider.find_volume_by_tag(volume_project.id, tag) == provider.get_volume(first.id) == ready
    assert ready.project_id == volume_project.id
    assert ready.attachments == ()
    assert [v.id for v in provider.list_volumes(volume_project.id) if v.tag == tag] == [first.id]

    default_typed = made.volume(provider.create_volume(volume_project.id, "cmct-default", 1, None, _tag("default")))
    assert provider.wait_volume(default_typed.id, timeout=VOLUME_TIMEOUT).volume_type == "fake"


_KILLED_CREATE = """
import os, signal, sys
kind, where, cloud, project_id, tag = sys.argv[1:6]
if kind == "simulated":
    from cloudmgr.cloud.simulated import SimulatedProvider
    provider = SimulatedProvider(state_path=where)
else:
    from cloudmgr.cloud.openstack import OpenStackProvider
    provider = OpenStackProvider(cloud=cloud, config_files=[where])
provider.create_volume(project_id, "cmct-killed", 1, None, tag)
# Killed before anyone could learn the volume's id: the caller only knows the tag.
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_create_killed_after_reaching_the_cloud_and_retried_gives_the_same_volume(
    cloud: CloudTestEnv, volume_project: ProjectRef, made: Made
) -> None:
    tag = _tag("killed")
    # The child opens the same cloud: the simulator's state file, or the lab's clouds.yaml.
    simulated = isinstance(cloud.provider, SimulatedProvider)
    where = str(cloud.provider._state_path) if simulated else str(lab_clouds_yaml())  # type: ignore[attr-defined]
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_CREATE, cloud.kind, where, cloud.lab_cloud, volume_project.id, tag],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    retried = made.volume(cloud.provider.create_volume(volume_project.id, "cmct-killed", 1, None, tag))
    assert [v.id for v in cloud.provider.list_volumes(volume_project.id) if v.tag == tag] == [retried.id]
    assert cloud.provider.wait_volume(retried.id, timeout=VOLUME_TIMEOUT).tag == tag


def test_attach_extend_detach_and_delete(cloud: CloudTestEnv, volume_project: ProjectRef, made: Made) -> None:
    provider = cloud.provider
    server = cloud.boot(volume_project, cloud.spec("vol-host"))
    other = cloud.boot(volume_project, cloud.spec("vol-other"))
    volume = made.volume(provider.create_volume(volume_project.id, "cmct-attach", 1, None, _tag("attach")))
    provider.wait_volume(volume.id, timeout=VOLUME_TIMEOUT)

    provider.attach_volume(server.id, volume.id)
    provider.attach_volume(server.id, volume.id)  # a retry: already attaching or attached
    attached = provider.wait_volume(volume.id, {"in-use"}, timeout=VOLUME_TIMEOUT)
    assert [a.server_id for a in attached.attachments] == [server.id]
    assert isinstance(attached.attachments[0], VolumeAttachment)
    provider.attach_volume(server.id, volume.id)  # attached: done
    with pytest.raises(CloudConflict):
        provider.attach_volume(other.id, volume.id)
    with pytest.raises(CloudConflict):
        provider.delete_volume(volume.id)

    provider.extend_volume(volume.id, 2)  # while in use
    grown = provider.wait_volume(volume.id, {"in-use"}, timeout=VOLUME_TIMEOUT)
    assert grown.size_gb == 2
    provider.extend_volume(volume.id, 2)  # already that size: done
    with pytest.raises(CloudBadRequest):
        provider.extend_volume(volume.id, 1)
    with pytest.raises(CloudBadRequest):
        provider.extend_volume(volume.id, 0)

    provider.detach_volume(server.id, volume.id)
    provider.detach_volume(server.id, volume.id)
    detached = provider.wait_volume(volume.id, {"available"}, timeout=VOLUME_TIMEOUT)
    assert detached.attachments == ()
    assert detached.size_gb == 2
    provider.detach_volume(other.id, volume.id)  # never attached there: done

    provider.delete_volume(volume.id, wait=True, timeout=VOLUME_TIMEOUT)
    provider.delete_volume(volume.id)
    with pytest.raises(CloudNotFound):
        provider.get_volume(volume.id)
    assert volume.id not in {v.id for v in provider.list_volumes(volume_project.id)}


def test_snapshot_backup_and_restore_carry_the_data(
    cloud: CloudTestEnv, volume_project: ProjectRef, made: Made
) -> None:
    provider = cloud.provider
    server = cloud.boot(volume_project, cloud.spec("vol-data"))
    source = made.volume(provider.create_volume(volume_project.id, "cmct-source", 1, None, _tag("source")))
    provider.wait_volume(source.id, timeout=VOLUME_TIMEOUT)
    write_known_bytes(cloud, source.id)
    written = content_digest(cloud, source.id)
    provider.attach_volume(server.id, source.id)
    provider.wait_volume(source.id, {"in-use"}, timeout=VOLUME_TIMEOUT)

    # A snapshot of the attached volume, idempotent by its tag; a volume made from it.
    snap_tag = _tag("snap")
    snapshot = provider.create_volume_snapshot(source.id, "cmct-snap", snap_tag)
    made.snapshots.append(snapshot.id)
    assert provider.create_volume_snapshot(source.id, "cmct-snap", snap_tag).id == snapshot.id
    snapshot = provider.wait_volume_snapshot(snapshot.id, timeout=VOLUME_TIMEOUT)
    assert (snapshot.volume_id, snapshot.size_gb, snapshot.tag) == (source.id, 1, snap_tag)
    assert snapshot.id in {s.id for s in provider.list_volume_snapshots(volume_project.id)}
    with pytest.raises(CloudConflict):
        provider.create_volume_snapshot(source.id, "cmct-snap-unforced", _tag("unforced"), force=False)
    copy = made.volume(
        provider.create_volume(volume_project.id, "cmct-copy", 1, None, _tag("copy"), snapshot_id=snapshot.id)
    )
    assert provider.wait_volume(copy.id, timeout=VOLUME_TIMEOUT).snapshot_id == snapshot.id
    assert content_digest(cloud, copy.id) == written
    provider.detach_volume(server.id, source.id)
    provider.wait_volume(source.id, {"available"}, timeout=VOLUME_TIMEOUT)
    with pytest.raises(CloudConflict):
        provider.delete_volume(source.id)  # it has a snapshot

    # A backup of the (now detached) volume, idempotent by its tag, then an incremental one.
    backup_tag = _tag("backup")
    backup = provider.create_volume_backup(source.id, "cmct-backup", backup_tag)
    made.backups.append(backup.id)
    assert provider.create_volume_backup(source.id, "cmct-backup", backup_tag).id == backup.id
    backup = provider.wait_volume_backup(backup.id, timeout=BACKUP_TIMEOUT)
    assert (backup.volume_id, backup.size_gb, backup.is_incremental, backup.tag) == (source.id, 1, False, backup_tag)
    assert provider.wait_volume(source.id, {"available"}, timeout=VOLUME_TIMEOUT).status == "available"
    incremental = provider.create_volume_backup(source.id, "cmct-incr", _tag("incr"), incremental=True)
    made.backups.append(incremental.id)
    assert provider.wait_volume_backup(incremental.id, timeout=BACKUP_TIMEOUT).is_incremental
    assert {backup.id, incremental.id} <= {b.id for b in provider.list_volume_backups(volume_project.id)}
    with pytest.raises(CloudConflict):
        provider.delete_volume_backup(backup.id)  # the incremental one builds on it

    # Restored into a new volume, and into one made (idempotently) beforehand.
    restored = made.volume(provider.restore_volume_backup(backup.id, name="cmct-restored"))
    assert restored.project_id == volume_project.id
    provider.wait_volume(restored.id, timeout=BACKUP_TIMEOUT)
    provider.wait_volume_backup(backup.id, timeout=BACKUP_TIMEOUT)
    assert content_digest(cloud, restored.id) == written
    target = made.volume(provider.create_volume(volume_project.id, "cmct-target", 1, None, _tag("target")))
    provider.wait_volume(target.id, timeout=VOLUME_TIMEOUT)
    assert content_digest(cloud, target.id) != written
    assert provider.restore_volume_backup(backup.id, volume_id=target.id).id == target.id
    provider.wait_volume(target.id, timeout=BACKUP_TIMEOUT)
    provider.wait_volume_backup(backup.id, timeout=BACKUP_TIMEOUT)
    assert content_digest(cloud, target.id) == written

    provider.delete_volume_backup(incremental.id, wait=True, timeout=BACKUP_TIMEOUT)
    provider.delete_volume_backup(backup.id, wait=True, timeout=BACKUP_TIMEOUT)
    provider.delete_volume_backup(backup.id)
    with pytest.raises(CloudNotFound):
        provider.get_volume_backup(backup.id)
    provider.delete_volume_snapshot(snapshot.id, wait=True, timeout=VOLUME_TIMEOUT)
    with pytest.raises(CloudNotFound):
        provider.get_volume_snapshot(snapshot.id)
    assert content_digest(cloud, copy.id) == written  # a volume keeps its data without its snapshot
