#!/usr/bin/env python3
"""Smoke test of the cloudmgr OpenStack lab (run with the lab venv's python).

    .lab/venv/bin/python vagrant/lab/smoke.py

Uses the `cloudmgr-lab` entry of $CLOUDMGR_LAB_DIR/clouds.yaml (default
<repo>/.lab/clouds.yaml): creates a project, sets its compute quota to 3
instances, boots 3 servers (each with a port on lab-internet), checks that a
4th is refused by quota, reads Placement providers with inventories and
usages, live-migrates one server, cold-migrates + confirms one, resizes +
confirms one, snapshots one to an image, then deletes everything it made.
Exit 0 on success.
"""

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
    made = {"servers": [], "ports": [], "images": [], "project": None}
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

    with Step("snapshot to image"):
        img = conn.compute.create_server_image(a, f"{tag}-snap")
        made["images"].append(img.id)
        wait_status(admin, a, "ACTIVE")   # task_state cleared
        img = admin.image.get_image(img.id)
        # the fake virt driver uploads no bytes: the image stays 'queued'
        assert img.status in ("queued", "active"), img.status
        print(f"   image {img.id} status {img.status}")


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
    for pid in made["ports"]:
        admin.network.delete_port(pid, ignore_missing=True)
    for iid in made["images"]:
        admin.image.delete_image(iid, ignore_missing=True)
    if made["project"]:
        admin.compute.revert_quota_set(made["project"])
        admin.identity.delete_project(made["project"], ignore_missing=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001
        print(f"\nSMOKE FAILED: {exc!r}", file=sys.stderr)
        sys.exit(1)
