#!/usr/bin/env python3
"""Smoke test of the cloudmgr OpenStack lab (run with the lab venv's python).

    .lab/venv/bin/python vagrant/lab/smoke.py
    LAB_CLOUD=cloudmgr-lab-city .lab/venv/bin/python vagrant/lab/smoke.py

Uses the `cloudmgr-lab` entry (the province cloud; LAB_CLOUD=cloudmgr-lab-city:
the city's) of $CLOUDMGR_LAB_DIR/clouds.yaml (default
<repo>/.lab/clouds.yaml): creates a project, sets its compute quota to 3
instances, boots 3 servers (each with a port on lab-internet), checks that a
4th is refused by quota, reads Placement providers with inventories and
usages, live-migrates one server, cold-migrates + confirms one, resizes +
confirms one, checks a server's disk file holds its image's bytes, writes
known bytes into it and snapshots it to an image with those bytes; then block storage: sets the
project's volume quotas, creates a 1 GB volume (default type "fake"),
attaches it to a server and detaches it, extends it to 2 GB, writes bytes
into it, snapshots it, makes a volume from the snapshot, backs it up and
restores the backup into a new volume (both compared with the source byte for
byte); then deletes everything it made. Exit 0 on success.
"""

import errno
import os
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.environ.get("CLOUDMGR_LAB_DIR",
                     os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                  ".lab"))
os.environ.setdefault("OS_CLIENT_CONFIG_FILE", os.path.join(LAB,
                                                            "clouds.yaml"))

import openstack  # noqa: E402
from openstack import exceptions as osexc  # noqa: E402

CLOUD = os.environ.get("LAB_CLOUD", "cloudmgr-lab")
FLAVOR = "m1.tiny"
IMAGE = "cirros-lab"
NETWORK = "lab-internet"
TIMEOUT = 180
GIB = 1024 ** 3
# where the lab's volume driver keeps a volume's bytes (cinder.conf
# state_path, cloudmgr_lab_ml2/volume.py): the smoke test writes and
# compares them there, as no guest can
# (the city cloud's state dir is LAB/city: vagrant/lab/common.sh)
CLOUD_DIR = LAB if CLOUD == "cloudmgr-lab" else os.path.join(LAB, "city")
VOLUMES_DIR = os.path.join(CLOUD_DIR, "data", "cinder", "lab-volumes")
# the fake Nova driver's server disks (nova.conf [cloudmgr_lab] disks_dir)
DISKS_DIR = os.path.join(CLOUD_DIR, "data", "disks")

T0 = time.monotonic()
TIMINGS = []


class Step:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.t = time.monotonic()
        print(f"-- {self.name}", flush=True)
        return self

    def __exit__(self, exc_type, exc, tb):
        dt = time.monotonic() - self.t
        TIMINGS.append((self.name, dt, exc is None))
        state = "ok" if exc is None else f"FAILED: {exc!r}"
        print(f"   {self.name}: {state} ({dt:.1f}s)", flush=True)
        return False


def wait_until(what, fn, timeout=TIMEOUT, interval=1.0):
    deadline = time.monotonic() + timeout
    while True:
        res = fn()
        if res:
            return res
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout waiting for {what}")
        time.sleep(interval)


def main():
    admin = openstack.connect(cloud=CLOUD)
    admin.authorize()
    tag = "smoke-" + uuid.uuid4().hex[:8]
    made = {"servers": [], "ports": [], "images": [], "project": None,
            "volumes": [], "snapshots": [], "backups": []}
    try:
        run(admin, tag, made)
    finally:
        with Step("cleanup"):
            cleanup(admin, made)
    total = time.monotonic() - T0
    print("\nSMOKE PASSED in %.1fs" % total)
    for name, dt, ok in TIMINGS:
        print(f"    {name:<34} {dt:6.1f}s")
    return 0


def server_host(admin, server_id):
    return admin.compute.get_server(server_id).compute_host


def wait_status(admin, server_id, status, task_state_clear=True):
    def ok():
        s = admin.compute.get_server(server_id)
        if s.status == "ERROR":
            raise AssertionError(f"server {server_id} in ERROR: {s.fault}")
        return s.status == status and (
            not task_state_clear or not s.task_state) and s
    return wait_until(f"server {server_id} {status}", ok)


def sha256_bytes(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def volume_file(volume_id):
    return os.path.join(VOLUMES_DIR, f"volume-{volume_id}")


def wait_volume(bs, volume_id, status):
    def ok():
        v = bs.get_volume(volume_id)
        if v.status.startswith("error") and v.status != status:
            raise AssertionError(f"volume {volume_id} is {v.status}")
        return v.status == status and v
    return wait_until(f"volume {volume_id} {status}", ok, interval=0.5)


def write_pattern(path):
    """Distinct bytes at the start, the middle and the end of the volume."""
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        for offset in (0, size // 2 + 12345, size - 65536):
            fh.seek(offset)
            fh.write(os.urandom(65536))


def data_ranges(path):
    """(start, end) of the regions of a sparse file that hold data."""
    ranges = []
    with open(path, "rb") as fh:
        fd = fh.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:   # only a hole after pos
                    break
                raise
            pos = os.lseek(fd, start, os.SEEK_HOLE)
            ranges.append((start, pos))
    return ranges


def same_bytes(a, b, chunk=8 * 1024 * 1024):
    """Byte for byte. Only where either file holds data is read: elsewhere
    both are holes, which read as zeros (reading 2 GiB of holes twice costs
    seconds of CPU)."""
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        for start, end in data_ranges(a) + data_ranges(b):
            fa.seek(start)
            fb.seek(start)
            while start < end:
                n = min(chunk, end - start)
                if fa.read(n) != fb.read(n):
                    return False
                start += n
    return True


def run(admin, tag, made):
    domain = admin.identity.find_domain("Default")
    with Step("project + quota"):
        project = admin.identity.create_project(
            name=tag, domain_id=domain.id, description="lab smoke test")
        made["project"] = project
        user = admin.identity.find_user("admin", domain_id=domain.id)
        for rname in ("member", "admin"):
            role = admin.identity.find_role(rname)
            admin.identity.assign_project_role_to_user(project, user, role)
        admin.compute.update_quota_set(project, instances=3)
        qs = admin.compute.get_quota_set(project)
        assert qs.instances == 3, qs
        conn = admin.connect_as_project(
            {"id": project.id, "name": project.name, "domain_id": domain.id})
        conn.authorize()

    flavor = admin.compute.find_flavor(FLAVOR, ignore_missing=False)
    image = admin.image.find_image(IMAGE, ignore_missing=False)
    net = admin.network.find_network(NETWORK, ignore_missing=False)

    with Step("boot 3 servers with ports"):
        ids = []
        for i in range(3):
            port = conn.network.create_port(network_id=net.id,
                                            name=f"{tag}-port{i}")
            made["ports"].append(port.id)
            srv = conn.compute.create_server(
                name=f"{tag}-vm{i}", flavor_id=flavor.id, image_id=image.id,
                networks=[{"port": port.id}])
            made["servers"].append(srv.id)
            ids.append(srv.id)
        for sid in ids:
            s = wait_status(admin, sid, "ACTIVE")
            addrs = [a["addr"] for v in (s.addresses or {}).values()
                     for a in v]
            assert addrs, f"server {sid} has no address"
            print(f"   {s.name}: ACTIVE on {s.compute_host} {addrs}")
        for pid in made["ports"]:
            p = admin.network.get_port(pid)
            assert p.status == "ACTIVE" and p.binding_vif_type == "ovs", (
                p.status, p.binding_vif_type)

    with Step("4th server refused by quota"):
        try:
            extra = conn.compute.create_server(
                name=f"{tag}-vm3", flavor_id=flavor.id, image_id=image.id,
                networks="none")
        except osexc.HttpException as exc:
            assert exc.status_code in (403, 413), exc
            assert "uota" in str(exc), exc
            print(f"   refused: HTTP {exc.status_code}")
        else:
            made["servers"].append(extra.id)
            raise AssertionError("4th server was accepted despite quota")

    with Step("placement providers/inventories/usages"):
        used_vcpu = 0
        for rp in admin.placement.resource_providers():
            inv = {i.resource_class: i for i in
                   admin.placement.resource_provider_inventories(rp)}
            usage = admin.session.get(
                f"/resource_providers/{rp.id}/usages",
                endpoint_filter={"service_type": "placement"},
                headers={"OpenStack-API-Version": "placement 1.9"}
            ).json()["usages"]
            cap = {rc: int((i.total - i.reserved) * i.allocation_ratio)
                   for rc, i in inv.items()}
            print(f"   {rp.name}: capacity {cap} usage {usage}")
            used_vcpu += usage.get("VCPU", 0)
        assert used_vcpu >= 3, used_vcpu

    a, b, c = made["servers"][:3]

    with Step("live migration"):
        src = server_host(admin, a)
        admin.compute.live_migrate_server(a, host=None, block_migration="auto")
        wait_until("live migration", lambda: (
            (s := admin.compute.get_server(a)).status == "ACTIVE"
            and not s.task_state and s.compute_host != src))
        print(f"   {src} -> {server_host(admin, a)}")

    with Step("cold migration + confirm"):
        src = server_host(admin, b)
        admin.compute.migrate_server(b)
        wait_status(admin, b, "VERIFY_RESIZE")
        admin.compute.confirm_server_resize(b)
        s = wait_status(admin, b, "ACTIVE")
        assert s.compute_host != src, (src, s.compute_host)
        print(f"   {src} -> {s.compute_host}")

    with Step("resize + confirm"):
        small = admin.compute.find_flavor("m1.small", ignore_missing=False)
        conn.compute.resize_server(c, small)
        wait_status(admin, c, "VERIFY_RESIZE")
        conn.compute.confirm_server_resize(c)
        s = wait_status(admin, c, "ACTIVE")
        assert s.flavor.name == "m1.small", s.flavor
        print(f"   now {s.flavor.name} on {s.compute_host}")

    with Step("server disk: the image's bytes"):
        disk = os.path.join(DISKS_DIR, f"{a}.img")
        image = admin.image.find_image(IMAGE, ignore_missing=False)
        assert sha256_file(disk) == sha256_bytes(
            b"".join(admin.image.download_image(image, stream=True)
                     .iter_content(1 << 20))), "disk differs from its image"
        print(f"   {disk}: {os.path.getsize(disk)} bytes")

    with Step("snapshot to image (the disk's bytes)"):
        with open(disk, "r+b") as fh:
            fh.seek(4096)
            fh.write(f"smoke {tag}\n".encode() * 100)
        want = sha256_file(disk)
        img = conn.compute.create_server_image(a, f"{tag}-snap")
        made["images"].append(img.id)
        wait_status(admin, a, "ACTIVE")   # task_state cleared
        img = wait_until("snapshot active", lambda: (
            lambda i: i if i.status == "active" else None)(
                admin.image.get_image(img.id)))
        got = sha256_bytes(b"".join(admin.image.download_image(
            img, stream=True).iter_content(1 << 20)))
        assert got == want, (got, want)
        print(f"   image {img.id} {img.size} bytes, sha256 {got[:16]}... "
              "= the disk's")

    volumes(admin, conn, project, tag, made, server_id=b)


def volumes(admin, conn, project, tag, made, server_id):
    bs = conn.block_storage
    with Step("volume quotas"):
        # 3 volumes of 2 GB and a 2 GB snapshot: 8 GB
        admin.block_storage.update_quota_set(
            project, volumes=3, gigabytes=10, snapshots=1, backups=1)
        q = admin.block_storage.get_quota_set(project, usage=True)
        assert (q.volumes, q.gigabytes, q.snapshots, q.backups) == (
            3, 10, 1, 1), q

    with Step("volume create 1 GB"):
        v = bs.create_volume(name=f"{tag}-vol", size=1)
        made["volumes"].append(v.id)
        v = wait_volume(bs, v.id, "available")
        assert v.volume_type == "fake", v.volume_type
        assert os.path.getsize(volume_file(v.id)) == GIB
        print(f"   {v.id} type {v.volume_type}")

    with Step("volume attach to a server"):
        att = conn.compute.create_volume_attachment(server_id,
                                                    volume_id=v.id)
        v = wait_volume(bs, v.id, "in-use")
        assert [a["server_id"] for a in v.attachments] == [server_id], (
            v.attachments)
        print(f"   in-use as {att.device} on {server_id}")

    with Step("volume detach"):
        conn.compute.delete_volume_attachment(server_id, v.id)
        v = wait_volume(bs, v.id, "available")
        assert not v.attachments, v.attachments

    with Step("volume extend to 2 GB"):
        bs.extend_volume(v, 2)
        wait_until("volume 2 GB", lambda: (
            (x := bs.get_volume(v.id)).size == 2 and x.status == "available"),
            interval=0.5)
        assert os.path.getsize(volume_file(v.id)) == 2 * GIB
        write_pattern(volume_file(v.id))

    with Step("volume snapshot"):
        snap = bs.create_snapshot(volume_id=v.id, name=f"{tag}-snap")
        made["snapshots"].append(snap.id)
        bs.wait_for_status(snap, status="available", failures=["error"],
                           interval=0.5, wait=TIMEOUT)

    with Step("volume from snapshot"):
        v2 = bs.create_volume(name=f"{tag}-vol2", size=2,
                              snapshot_id=snap.id)
        made["volumes"].append(v2.id)
        wait_volume(bs, v2.id, "available")
        assert same_bytes(volume_file(v.id), volume_file(v2.id))

    with Step("volume backup + restore"):
        bk = bs.create_backup(volume_id=v.id, name=f"{tag}-backup")
        made["backups"].append(bk.id)
        bs.wait_for_status(bk, status="available", failures=["error"],
                           interval=0.5, wait=TIMEOUT)
        restored = bs.restore_backup(bk, name=f"{tag}-restored")
        made["volumes"].append(restored.volume_id)
        wait_volume(bs, restored.volume_id, "available")
        bs.wait_for_status(bk, status="available", failures=["error"],
                           interval=0.5, wait=TIMEOUT)
        assert same_bytes(volume_file(v.id),
                          volume_file(restored.volume_id)), (
            "restored volume differs from its source")
        print(f"   backup {bk.id} restored into {restored.volume_id}")


def cleanup(admin, made):
    for sid in made["servers"]:
        try:
            admin.compute.delete_server(sid, ignore_missing=True)
        except osexc.SDKException as exc:
            print(f"   delete server {sid}: {exc}")
    for sid in made["servers"]:
        try:
            wait_until(f"deletion of server {sid}", lambda: (
                admin.compute.find_server(sid, ignore_missing=True,
                                          all_projects=True) is None))
        except AssertionError as exc:
            print(f"   {exc}")
    problems = cleanup_volumes(admin.block_storage, made)
    for pid in made["ports"]:
        admin.network.delete_port(pid, ignore_missing=True)
    for iid in made["images"]:
        admin.image.delete_image(iid, ignore_missing=True)
    if made["project"]:
        admin.block_storage.revert_quota_set(made["project"])
        admin.compute.revert_quota_set(made["project"])
        admin.identity.delete_project(made["project"], ignore_missing=True)
    assert not problems, problems


def cleanup_volumes(bs, made):
    """Deletes the smoke test's backups, volumes and snapshots; returns what
    did not go (and volume files left behind)."""
    problems = []

    def gone(kind, rid, find, **query):
        try:
            wait_until(f"deletion of {kind} {rid}", lambda: find(
                rid, ignore_missing=True, **query) is None)
        except AssertionError as exc:
            problems.append(str(exc))

    for bid in made["backups"]:
        bs.delete_backup(bid, ignore_missing=True, force=True)
    # a volume with snapshots cannot go; the volumes made from them can
    for vid in made["volumes"][1:]:
        bs.delete_volume(vid, ignore_missing=True, force=True)
    for sid in made["snapshots"]:
        bs.delete_snapshot(sid, ignore_missing=True, force=True)
    for sid in made["snapshots"]:
        gone("snapshot", sid, bs.find_snapshot, all_projects=True)
    for vid in made["volumes"][:1]:
        bs.delete_volume(vid, ignore_missing=True, force=True)
    for vid in made["volumes"]:
        gone("volume", vid, bs.find_volume, all_projects=True)
        if os.path.exists(volume_file(vid)):
            problems.append(f"{volume_file(vid)} left behind")
    for bid in made["backups"]:
        gone("backup", bid, bs.find_backup)
    return problems


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001
        print(f"\nSMOKE FAILED: {exc!r}", file=sys.stderr)
        sys.exit(1)
