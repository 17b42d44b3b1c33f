"""A server's snapshot made idempotently by its tag, and the server rebuilt from it (issue 16),
run against the simulator and the lab OpenStack alike (see conftest.py).

The lab's Nova runs a fake virt driver (vagrant/lab/cloudmgr_lab_ml2/virt.py): its servers have
no disk to compare, so the contract checks what the cloud reports (the image the server now
runs, its state, its identity kept); the simulator's own test at the end checks that the
rebuilt disk holds what the snapshot held.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid

import pytest

from cloudmgr.cloud import (
    CloudBadRequest,
    CloudNotFound,
    CloudProvider,
    Image,
    ProjectRef,
    Server,
    ServerSpec,
)
from cloudmgr.cloud.simulated import SimulatedProvider

from .conftest import BOOT_TIMEOUT, RUN_ID, CloudTestEnv

SNAPSHOT_TIMEOUT = 180.0


def _tag(label: str) -> str:
    return f"{RUN_ID}-{label}-{secrets.token_hex(4)}"


def _only_our_types(*values: object) -> None:
    for value in values:
        assert dataclasses.is_dataclass(value), f"{type(value)!r} is not one of cloudmgr's types"
        assert type(value).__module__ == "cloudmgr.cloud.types", type(value)


@pytest.fixture(scope="module")
def project(cloud: CloudTestEnv) -> ProjectRef:
    return cloud.new_project("snap")


@pytest.fixture(scope="module")
def server(cloud: CloudTestEnv, project: ProjectRef) -> Server:
    """A running server the tests share; each leaves it ACTIVE."""
    return cloud.boot(project, cloud.spec("snap"))


@pytest.fixture(scope="module")
def snapshot(cloud: CloudTestEnv, server: Server) -> Image:
    tag = _tag("snap")
    image = cloud.provider.create_snapshot(
        server.id, f"cmct-snap-{RUN_ID}", timeout=SNAPSHOT_TIMEOUT, idempotency_tag=tag
    )
    cloud.track_image(image.id)
    return image


def test_a_tagged_snapshot_is_made_once(
    cloud: CloudTestEnv, project: ProjectRef, server: Server, snapshot: Image
) -> None:
    provider = cloud.provider
    _only_our_types(snapshot)
    assert snapshot.status == "active"
    assert snapshot.tag and snapshot.tag.startswith(RUN_ID)
    assert snapshot.owner_project_id == project.id, "the department's project owns its server's snapshot"
    assert snapshot.name == f"cmct-snap-{RUN_ID}"
    # A retry (a worker taken over) finds the image by its tag, whatever name it asks for.
    again = provider.create_snapshot(server.id, "another name", timeout=SNAPSHOT_TIMEOUT, idempotency_tag=snapshot.tag)
    assert again.id == snapshot.id
    found = provider.find_image_by_tag(project.id, snapshot.tag)
    assert found is not None and found.id == snapshot.id and found.tag == snapshot.tag
    assert provider.find_image_by_tag(project.id, _tag("none")) is None
    assert [i.id for i in provider.list_images() if i.tag == snapshot.tag] == [snapshot.id]
    # Another project never finds it.
    other = cloud.new_project("snap-other", quota=None)
    assert provider.find_image_by_tag(other.id, snapshot.tag) is None


def test_a_snapshot_without_a_tag_has_none(cloud: CloudTestEnv, server: Server) -> None:
    image = cloud.provider.create_snapshot(server.id, f"cmct-untagged-{RUN_ID}", timeout=SNAPSHOT_TIMEOUT)
    cloud.track_image(image.id)
    assert image.tag is None
    cloud.provider.delete_image(image.id)


def test_a_bad_tag_is_refused_before_the_cloud(provider: CloudProvider, server: Server) -> None:
    with pytest.raises(CloudBadRequest):
        provider.create_snapshot(server.id, "x", idempotency_tag="")
    with pytest.raises(CloudBadRequest):
        provider.create_snapshot(server.id, "x", idempotency_tag="t" * 256)


def test_rebuild_from_the_snapshot_keeps_the_server(cloud: CloudTestEnv, server: Server, snapshot: Image) -> None:
    provider = cloud.provider
    before = provider.get_server(server.id)
    provider.rebuild_server(server.id, snapshot.id)
    rebuilt = provider.wait_for_server(server.id, {"ACTIVE"}, timeout=BOOT_TIMEOUT)
    _only_our_types(rebuilt)
    assert rebuilt.image_id == snapshot.id
    assert (rebuilt.id, rebuilt.name, rebuilt.flavor_id, rebuilt.project_id) == (
        before.id,
        before.name,
        before.flavor_id,
        before.project_id,
    )
    assert rebuilt.idempotency_key == before.idempotency_key
    assert rebuilt.addresses == before.addresses
    assert rebuilt.security_groups == before.security_groups


def test_a_stopped_server_is_rebuilt_stopped(cloud: CloudTestEnv, server: Server, snapshot: Image) -> None:
    provider = cloud.provider
    provider.stop_server(server.id)
    provider.wait_for_server(server.id, {"SHUTOFF"}, timeout=BOOT_TIMEOUT)
    try:
        provider.rebuild_server(server.id, cloud.image_id())
        rebuilt = provider.wait_for_server(server.id, {"SHUTOFF"}, timeout=BOOT_TIMEOUT)
        assert rebuilt.image_id == cloud.image_id()
    finally:
        provider.start_server(server.id)
        provider.wait_for_server(server.id, {"ACTIVE"}, timeout=BOOT_TIMEOUT)


def test_rebuild_from_an_unknown_image_is_a_bad_request(cloud: CloudTestEnv, server: Server) -> None:
    provider = cloud.provider
    with pytest.raises(CloudBadRequest):
        provider.rebuild_server(server.id, str(uuid.uuid4()))
    unchanged = provider.get_server(server.id)
    assert unchanged.status == "ACTIVE"


def test_rebuild_of_an_unknown_server_is_not_found(cloud: CloudTestEnv) -> None:
    with pytest.raises(CloudNotFound):
        cloud.provider.rebuild_server(str(uuid.uuid4()), cloud.image_id())


def test_a_deleted_snapshot_is_not_found_by_its_tag(cloud: CloudTestEnv, project: ProjectRef, server: Server) -> None:
    provider = cloud.provider
    tag = _tag("gone")
    image = provider.create_snapshot(server.id, f"cmct-gone-{RUN_ID}", timeout=SNAPSHOT_TIMEOUT, idempotency_tag=tag)
    cloud.track_image(image.id)
    provider.delete_image(image.id)
    provider.delete_image(image.id)  # gone already: still fine
    assert provider.find_image_by_tag(project.id, tag) is None


# ---- the simulator alone: the rebuilt disk holds what the snapshot held --------------------


def test_on_the_simulator_a_rebuild_brings_back_the_snapshots_disk() -> None:
    provider = SimulatedProvider()
    project = provider.ensure_project("dept-sim", "sim--edu")
    image = next(i for i in provider.list_images() if i.name == "cirros-lab")
    network = provider.list_networks()[0]
    server = provider.create_server(project.id, ServerSpec("sim-1", "1", image.id, network.id, "sim-key-1"))
    provider.write_server_disk(server.id, b"the licensing database, Monday")
    monday = provider.server_disk_digest(server.id)
    snapshot = provider.create_snapshot(server.id, "monday", idempotency_tag="cm-ss-monday")
    assert snapshot.tag == "cm-ss-monday"
    provider.write_server_disk(server.id, b"a bad upgrade, Tuesday")
    assert provider.server_disk_digest(server.id) != monday
    provider.rebuild_server(server.id, snapshot.id)
    assert provider.server_disk_digest(server.id) == monday
    assert provider.get_server(server.id).image_id == snapshot.id
    # Only cloudmgr's own tagged snapshots carry a tag.
    assert provider.get_image(image.id).tag is None
