"""A volume's bytes leaving its cloud (issue 16, a cross-cloud move's data volumes): copied
into an image (Cinder's upload-to-image), the image downloaded and uploaded into another
project, and a volume made there from it, holding the same bytes.  Run against the simulator
and the lab OpenStack alike (see conftest.py); the data is compared as in test_volumes.py
(the lab driver's volume files, the simulator's digest of what was written).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudmgr.cloud import CloudBadRequest, CloudConflict, CloudNotFound, ProjectRef

from .conftest import CloudTestEnv
from .test_volumes import VOLUME_TIMEOUT, Made, _tag, content_digest, write_known_bytes

# The lab's Cinder copies a 1 GB volume into Glance in about 20 s, more when loaded.
IMAGE_TIMEOUT = 600.0


@pytest.fixture
def made(cloud: CloudTestEnv) -> Iterator[Made]:
    tracked = Made(cloud.provider)
    yield tracked
    tracked.cleanup()


@pytest.fixture(scope="module")
def projects(cloud: CloudTestEnv) -> tuple[ProjectRef, ProjectRef]:
    return cloud.new_project("vimg-source"), cloud.new_project("vimg-target")


def test_a_volume_copied_into_an_image_makes_the_same_volume_in_another_project(
    cloud: CloudTestEnv, projects: tuple[ProjectRef, ProjectRef], made: Made, tmp_path: Path
) -> None:
    provider = cloud.provider
    source_project, target_project = projects
    server = cloud.boot(source_project, cloud.spec("vimg-host"))
    volume = made.volume(provider.create_volume(source_project.id, "cmct-vimg", 1, "ssd", _tag("vimg")))
    provider.wait_volume(volume.id, timeout=VOLUME_TIMEOUT)
    write_known_bytes(cloud, volume.id)
    written = content_digest(cloud, volume.id)
    provider.attach_volume(server.id, volume.id)
    provider.wait_volume(volume.id, {"in-use"}, timeout=VOLUME_TIMEOUT)

    name = f"cmct-vimg-{secrets.token_hex(4)}"
    with pytest.raises(CloudConflict):
        provider.upload_volume_to_image(volume.id, name)  # attached: Cinder uploads a detached volume
    assert [i for i in provider.list_images() if i.name == name] == []
    provider.detach_volume(server.id, volume.id)
    provider.wait_volume(volume.id, {"available"}, timeout=VOLUME_TIMEOUT)

    image = provider.upload_volume_to_image(volume.id, name)
    cloud.track_image(image.id)
    assert provider.upload_volume_to_image(volume.id, name).id == image.id  # a retry finds it
    image = provider.wait_for_image(image.id, timeout=IMAGE_TIMEOUT)
    assert (image.name, image.disk_format, image.owner_project_id) == (name, "raw", source_project.id)
    assert [i.id for i in provider.list_images() if i.name == name] == [image.id]
    assert provider.wait_volume(volume.id, {"available"}, timeout=IMAGE_TIMEOUT).status == "available"

    # Out of the cloud and into another project, as a cross-cloud move carries it.
    path = tmp_path / "volume.img"
    downloaded = provider.download_image(image.id, path)
    assert downloaded.size_bytes == image.size_bytes
    assert (downloaded.hash_algo, downloaded.hash_value) == (image.hash_algo, image.hash_value)
    carried = provider.upload_image(f"{name}-carried", path, disk_format="raw", project_id=target_project.id)
    cloud.track_image(carried.id)
    carried = provider.wait_for_image(carried.id, timeout=IMAGE_TIMEOUT)
    assert (carried.hash_algo, carried.hash_value) == (image.hash_algo, image.hash_value)
    tag = _tag("from-image")
    copy = made.volume(provider.create_volume(target_project.id, "cmct-vimg-copy", 1, "ssd", tag, image_id=carried.id))
    assert provider.create_volume(target_project.id, "cmct-vimg-copy", 1, "ssd", tag, image_id=carried.id).id == copy.id
    copy = provider.wait_volume(copy.id, timeout=IMAGE_TIMEOUT)
    assert (copy.project_id, copy.size_gb, copy.volume_type, copy.tag) == (target_project.id, 1, "ssd", tag)
    assert content_digest(cloud, copy.id) == written
    assert content_digest(cloud, volume.id) == written  # the source keeps its bytes


def test_a_volume_from_an_unknown_image_or_from_two_sources_is_refused(
    cloud: CloudTestEnv, projects: tuple[ProjectRef, ProjectRef]
) -> None:
    provider = cloud.provider
    project = projects[1]
    missing = "00000000-0000-4000-8000-" + secrets.token_hex(6)
    tag = _tag("no-image")
    with pytest.raises(CloudNotFound):
        provider.create_volume(project.id, "cmct-no-image", 1, None, tag, image_id=missing)
    with pytest.raises(CloudBadRequest):
        provider.create_volume(project.id, "cmct-two", 1, None, _tag("two"), snapshot_id=missing, image_id=missing)
    assert provider.find_volume_by_tag(project.id, tag) is None
    with pytest.raises(CloudNotFound):
        provider.upload_volume_to_image(missing, "cmct-no-volume")
