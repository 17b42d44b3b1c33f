"""The lab OpenStack's real bytes (vagrant/lab/cloudmgr_lab_ml2/virt.py), on each of its clouds.

A server booted from an image has a disk file (tests/lab_paths.py) holding the image's bytes;
what a test writes there, as a guest would, is what a snapshot of the server uploads to Glance
(the same SHA-256), and a server booted from that snapshot starts with those bytes.  Deleting a
server removes its disk.  Run on the province's cloud and on the city's (each its own Nova and
Glance), with plain openstacksdk as the admin of each.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import lab_connection
from tests.lab_paths import LAB_CLOUDS, disk_file, sha256_of

pytestmark = pytest.mark.lab
TIMEOUT = 180.0


def _wait(what: str, ready: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _image_sha256(conn: Any, image: Any) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in conn.image.download_image(image, stream=True).iter_content(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


@dataclass(frozen=True)
class LabCloud:
    name: str  # its clouds.yaml entry
    conn: Any  # openstacksdk, as its admin
    tag: str  # the names of what the test makes begin with it


@pytest.fixture(params=LAB_CLOUDS)
def lab_cloud(request: pytest.FixtureRequest, lab_clouds_yaml: Path) -> Iterator[LabCloud]:
    """One of the lab's clouds; removes the servers and images the test made there."""
    conn = lab_connection(lab_clouds_yaml, request.param)
    tag = f"cmdisk-{secrets.token_hex(4)}"
    try:
        yield LabCloud(request.param, conn, tag)
    finally:
        servers = [s for s in conn.compute.servers() if (s.name or "").startswith(tag)]
        for server in servers:
            conn.compute.delete_server(server, ignore_missing=True)
        for server in servers:
            conn.compute.wait_for_delete(server, wait=120)
        for image in conn.image.images():
            if (image.name or "").startswith(tag):
                conn.image.delete_image(image, ignore_missing=True)


def _boot(conn: Any, name: str, image: Any) -> Any:
    server = conn.compute.create_server(
        name=name,
        flavor_id=conn.compute.find_flavor("m1.tiny", ignore_missing=False).id,
        image_id=image.id,
        networks=[{"uuid": conn.network.find_network("lab-internet", ignore_missing=False).id}],
    )
    return conn.compute.wait_for_server(server, status="ACTIVE", wait=int(TIMEOUT))


def test_a_snapshot_uploads_the_server_disk_and_a_server_booted_from_it_starts_with_those_bytes(
    lab_cloud: LabCloud,
) -> None:
    cloud, conn, tag = lab_cloud.name, lab_cloud.conn, lab_cloud.tag
    base = conn.image.find_image("cirros-lab", ignore_missing=False)
    server = _boot(conn, f"{tag}-a", base)
    disk = disk_file(cloud, server.id)
    assert disk.is_file(), f"{cloud}: no disk file {disk}"
    assert sha256_of(disk) == _image_sha256(conn, base)[0], "the disk does not hold its image's bytes"

    # What a guest would write: inside the image's bytes and past their end (the disk grows).
    with disk.open("r+b") as fh:
        for offset in (0, 300_000, base.size + 4321):
            fh.seek(offset)
            fh.write(hashlib.sha256(f"{server.id}:{offset}".encode()).digest() * 64)
    written, size = sha256_of(disk), disk.stat().st_size
    assert size > base.size

    snapshot = conn.compute.create_server_image(server, f"{tag}-snap")
    snapshot = _wait("the snapshot active", lambda: (i := conn.image.get_image(snapshot.id)).status == "active" and i)
    assert (_image_sha256(conn, snapshot), snapshot.size) == ((written, size), size)

    copy = _boot(conn, f"{tag}-b", snapshot)
    assert sha256_of(disk_file(cloud, copy.id)) == written

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=int(TIMEOUT))
    assert not disk.exists(), "a deleted server's disk stays"
    assert disk_file(cloud, copy.id).exists()
