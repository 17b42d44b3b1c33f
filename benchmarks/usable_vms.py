"""Usable VMs: one request for 10 servers, each with a data disk, the "web" firewall and a public
address, provisioned through cloudmgr against the same cloud calls made with openstacksdk.

cloudmgr's side is the real path: a department user's request (the "web" template: tcp 80/443
from anywhere, a data disk per VM, a public address), its approvals, then the work queue's
handlers (``Worker(db, work_handlers()).drain()``) on the lab OpenStack, with a SQLite database
in a temporary folder.  Its time runs from the final approval's commit to the request's
``finished_at`` (every server ACTIVE with its volume attached and its floating IP associated).

The raw side makes the same things with openstacksdk in the same project: a keypair, the same
two security groups cloudmgr makes (the department's members group, emptied of Neutron's default
egress rules, and the request's group with the 4 rules: 80/443, IPv4 and IPv6), 10 servers
booted in both groups with the same kind of metadata and tag and waited ACTIVE,
10 volumes created and waited available, attached and waited in-use, 10 floating IPs allocated
from lab-public and associated.  Both poll every POLL seconds.

Rounds alternate the order; everything made is removed after each side (and on failure).  The
per-phase split is the wall time spent in each kind of cloud call (cloudmgr's provider methods
are timed from outside); "other" is the rest (cloudmgr: its database and queue).
Goal: cloudmgr / raw <= 1.1.

    .venv/bin/python benchmarks/usable_vms.py [--vms 10] [--rounds 2] [--disk-gb 10] [--flavor m1.tiny]
        [--boots N]
"""

from __future__ import annotations

import argparse
import base64
import functools
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import openstack.config  # noqa: E402
import openstack.connection  # noqa: E402
import yaml  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402
from sqlalchemy import select  # noqa: E402

import cloudmgr.models  # noqa: E402, F401  (every mapper)
from cloudmgr.catalog.models import CatalogItem, ItemKind  # noqa: E402
from cloudmgr.catalog.services import read_rates, sync_catalog  # noqa: E402
from cloudmgr.cloud.openstack import OpenStackProvider  # noqa: E402
from cloudmgr.config import REPO_ROOT, load_settings  # noqa: E402
from cloudmgr.dbschema import upgrade  # noqa: E402
from cloudmgr.firewall import services as firewall  # noqa: E402
from cloudmgr.keys import services as keys  # noqa: E402
from cloudmgr.organisation import services as org  # noqa: E402
from cloudmgr.organisation.actor import Actor  # noqa: E402
from cloudmgr.organisation.models import Cloud, DepartmentCloud, Role  # noqa: E402
from cloudmgr.organisation.sync import sync_clouds  # noqa: E402
from cloudmgr.quotas import services as quotas  # noqa: E402
from cloudmgr.runtime import Runtime, set_runtime  # noqa: E402
from cloudmgr.scheduler.jobs import work_handlers  # noqa: E402
from cloudmgr.servicerequests import services as requests_service  # noqa: E402
from cloudmgr.servicerequests.models import ServiceRequest  # noqa: E402
from cloudmgr.servicerequests.quoting import DataDisk, RequestForm  # noqa: E402
from cloudmgr.workqueue.services import Worker  # noqa: E402

CLOUDS_YAML = Path(os.environ.get("CLOUDMGR_LAB_CLOUDS_YAML", str(REPO / ".lab" / "clouds.yaml")))
LAB_CLOUD = "cloudmgr-lab"
CLOUD_KEY = "education"  # a cloud of etc/government-clouds.yaml, on the lab
ZONE = "internet"  # the web template opens ports to the world: only the internet zone takes it
EXTERNAL_NETWORK = "lab-public"
VOLUME_TYPE = "fake"
POLL = 1.0  # the same polling interval for both sides (OpenStackProvider's default)
WAIT = 600
USER_DATA = "#cloud-config\npackages: [nginx]\n"
PHASES = ("keypair+group", "boot calls", "wait ACTIVE", "volumes", "attach", "addresses", "other")


# --- phase timing ------------------------------------------------------------------------------


@dataclass
class Phases:
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started


#: The provider methods cloudmgr's provisioning calls, by phase (wait_volume by its statuses).
TIMED_METHODS = {
    "ensure_keypair": "keypair+group",
    "ensure_security_group": "keypair+group",
    "create_server": "boot calls",
    "wait_for_server": "wait ACTIVE",
    "create_volume": "volumes",
    "wait_volume": "volumes",
    "attach_volume": "attach",
    "allocate_floating_ip": "addresses",
    "associate_floating_ip": "addresses",
}


class ProviderTimer:
    """Times OpenStackProvider's methods from outside (only the outermost timed call counts)."""

    def __init__(self) -> None:
        self.phases: Phases | None = None
        self._depth = 0

    def install(self) -> None:
        for name, phase in TIMED_METHODS.items():
            setattr(OpenStackProvider, name, self._wrap(getattr(OpenStackProvider, name), name, phase))

    def _wrap(self, method: Callable[..., Any], name: str, phase: str) -> Callable[..., Any]:
        @functools.wraps(method)
        def timed(provider: Any, *args: Any, **kwargs: Any) -> Any:
            if self.phases is None or self._depth:
                return method(provider, *args, **kwargs)
            label = phase
            if name == "wait_volume":
                statuses = kwargs.get("statuses", args[1] if len(args) > 1 else {"available"})
                label = "attach" if set(statuses) == {"in-use"} else "volumes"
            self._depth += 1
            try:
                with self.phases.phase(label):
                    return method(provider, *args, **kwargs)
            finally:
                self._depth -= 1

        return timed


TIMER = ProviderTimer()


# --- the lab --------------------------------------------------------------------------------------


def lab_connection() -> Any:
    region = openstack.config.OpenStackConfig(config_files=[str(CLOUDS_YAML)]).get_one(cloud=LAB_CLOUD)
    return openstack.connection.Connection(config=region)


def public_key_line() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{line.decode()} bench@usable-vms"


def clean_project(admin: Any, project_id: str, keypair_prefixes: tuple[str, ...]) -> None:
    """Everything in the project: servers, floating IPs, volumes, security groups, and the
    admin user's keypairs made for it (Nova keeps keypairs per user)."""
    servers = list(admin.compute.servers(all_projects=True, project_id=project_id))
    for server in servers:
        admin.compute.delete_server(server, ignore_missing=True)
    for ip in list(admin.network.ips(project_id=project_id)):
        admin.network.delete_ip(ip, ignore_missing=True)
    for server in servers:
        admin.compute.wait_for_delete(server, interval=POLL, wait=WAIT)
    volumes = [
        v
        for v in admin.block_storage.volumes(details=True, all_projects=True, project_id=project_id)
        if v.project_id == project_id
    ]
    for volume in volumes:
        if volume.status in {"in-use", "attaching", "detaching"}:  # its server is gone: Cinder is told late
            admin.block_storage.wait_for_status(volume, "available", failures=["error"], interval=POLL, wait=120)
        admin.block_storage.delete_volume(volume, ignore_missing=True)
    for volume in volumes:
        admin.block_storage.wait_for_delete(volume, interval=POLL, wait=WAIT)
    for group in list(admin.network.security_groups(project_id=project_id)):
        if group.name != "default":
            admin.network.delete_security_group(group, ignore_missing=True)
    for keypair in list(admin.compute.keypairs()):
        if keypair.name.startswith(keypair_prefixes):
            admin.compute.delete_keypair(keypair, ignore_missing=True)


def remove_domain(admin: Any, domain_name: str) -> None:
    domain = admin.identity.find_domain(domain_name)
    if domain is None:
        return
    for project in list(admin.identity.projects(domain_id=domain.id)):
        for group in list(admin.network.security_groups(project_id=project.id)):
            admin.network.delete_security_group(group, ignore_missing=True)
        admin.identity.delete_project(project, ignore_missing=True)
    admin.identity.update_domain(domain, is_enabled=False)
    admin.identity.delete_domain(domain, ignore_missing=True)


# --- cloudmgr ---------------------------------------------------------------------------------------


@dataclass
class Cloudmgr:
    rt: Runtime
    staff: Actor
    approvers: dict[str, Actor]
    department_key: str
    project_id: str
    items: dict[tuple[str, str], int]
    web_template_id: int
    key_id: int


def build_cloudmgr(tmp: Path, run: str, vms: int, rounds: int, boots: int | None) -> Cloudmgr:
    """A runtime on the lab with a department of its own (its project made by the clouds sync),
    quotas for every round's servers, the catalog, the standard firewall templates and a key."""
    instance = tmp / "instance"
    instance.mkdir()
    database_url = f"sqlite:///{tmp / 'cloudmgr.sqlite3'}"
    settings = load_settings(
        {"CLOUDMGR_ENV": "test"},
        instance_path=instance,
        database_url=database_url,
        ansible_artifacts_dir=instance / "ansible",
        scheduler_enabled=False,
        cloud_provider="openstack",
        os_client_config_file=str(CLOUDS_YAML),
    )
    if boots is not None:
        settings = settings.with_overrides(max_concurrent_boots=boots)
    upgrade(database_url)
    rt = Runtime.from_settings(settings)
    set_runtime(rt)
    key = f"bench{run}"
    departments_file = tmp / "departments.yaml"
    departments_file.write_text(
        yaml.safe_dump(
            {
                "departments": [
                    {
                        "key": key,
                        "name_zh": "基准测试部门",
                        "name_en": "Benchmark department",
                        "level": "province",
                        "clouds": [CLOUD_KEY],
                    }
                ]
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    quota_dir = tmp / "quotas"
    quota_dir.mkdir()
    shutil.copy(REPO_ROOT / "quotas" / "sizes.yaml", quota_dir / "sizes.yaml")
    # The ledger keeps each round's servers as used (the benchmark removes them behind cloudmgr's
    # back): room for every round.  The largest size has the rest; addresses are added.
    limits = {"size": "xlarge", "instances": max(vms * rounds, 1), "floating_ips": max(vms * rounds, 16)}
    (quota_dir / "departments.yaml").write_text(
        yaml.safe_dump({"departments": {key: {CLOUD_KEY: limits}}}), encoding="utf-8"
    )
    system = Actor.system("benchmark")
    clouds, departments = org.read_organisation(settings.clouds_file, departments_file)
    with rt.db.unit_of_work() as uow:
        org.import_organisation(uow.session, [c for c in clouds if c.key == CLOUD_KEY], departments, actor=system)
        users = {}
        for username, role, dept in (
            (f"{key}-staff", Role.DEPT_STAFF, key),
            (f"{key}-head", Role.DEPT_HEAD, key),
            (f"{key}-ops", Role.OPERATOR, None),
            (f"{key}-fin", Role.FINANCE, None),
        ):
            user = org.create_user(
                uow.session,
                username=username,
                password="bench-password-1",
                role=role,
                department_key=dept,
                actor=system,
            )
            users[role] = Actor.of(user)
    synced = sync_clouds(rt.db, rt.providers, actor=system)
    if not all(r.ok for r in synced):
        raise RuntimeError(f"clouds sync failed: {synced}")
    sync_catalog(rt.db, rt.providers, read_rates(settings.rates_file), actor=system)
    applied = quotas.apply(rt.db, rt.providers, quota_dir, actor=system)
    if not applied.ok:
        raise RuntimeError(f"quotas apply failed: {applied.problems}")
    with rt.db.unit_of_work() as uow:
        session = uow.session
        project_id = session.scalars(select(DepartmentCloud.project_id)).one()
        cloud_id = session.scalars(select(Cloud.id).where(Cloud.key == CLOUD_KEY)).one()
        items = {
            (i.kind, i.cloud_name): i.id
            for i in session.scalars(select(CatalogItem).where(CatalogItem.cloud_id == cloud_id))
        }
        firewall.seed_standard_templates(session, users[Role.OPERATOR])
        web = next(t for t in firewall.list_templates(session) if t.name == "web")
        key_id = keys.add_key(session, users[Role.DEPT_STAFF], "bench", public_key_line()).id
    if not project_id:
        raise RuntimeError("the clouds sync made no project for the department")
    approvers = {"dept_head": users[Role.DEPT_HEAD], "operator": users[Role.OPERATOR], "finance": users[Role.FINANCE]}
    return Cloudmgr(rt, users[Role.DEPT_STAFF], approvers, key, project_id, items, web.id, key_id)


def provision_with_cloudmgr(cm: Cloudmgr, vms: int, flavor: str, disk_gb: int, tag: str) -> tuple[float, Phases]:
    """Request, approvals, then the queue; the time from the final approval to the request's end."""
    form = RequestForm(
        cloud_key=CLOUD_KEY,
        zone=ZONE,
        flavor_item_id=cm.items[(ItemKind.FLAVOR.value, flavor)],
        image_item_id=next(v for (kind, _name), v in cm.items.items() if kind == ItemKind.IMAGE.value),
        count=vms,
        name_prefix=f"bench{tag}",
        justification="benchmark of usable VMs",
        expires_on=date.today() + timedelta(days=30),
        ssh_key_id=cm.key_id,
        user_data=USER_DATA,
        data_disks=(DataDisk(disk_gb, cm.items[(ItemKind.VOLUME_TYPE.value, VOLUME_TYPE)]),),
        public_address=True,
        firewall_templates=(cm.web_template_id,),
    )
    db = cm.rt.db
    with db.unit_of_work() as uow:
        request_id = requests_service.create_request(
            uow.session, cm.staff, form, submit=True, settings=cm.rt.settings
        ).id
    while True:
        with db.unit_of_work() as uow:
            role = uow.session.get_one(ServiceRequest, request_id).next_role
        if role is None:
            break
        with db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, cm.approvers[role], request_id, reason="benchmark")
    approved = time.time()
    phases = Phases()
    TIMER.phases = phases
    started = time.perf_counter()
    try:
        Worker(db, work_handlers()).drain(max_items=500)
    finally:
        TIMER.phases = None
    drained = time.perf_counter() - started
    with db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        if request.state != "active" or request.finished_at is None:
            faults = "\n  ".join(f"{s.name} ({s.server_id}): {s.state}: {s.fault}" for s in request.servers)
            raise RuntimeError(f"request {request_id} is {request.state} ({request.state_reason}):\n  {faults}")
        total = request.finished_at.timestamp() - approved
    phases.seconds["other"] = max(total - sum(phases.seconds.values()), 0.0)
    if drained - total > 1:
        print(f"  (the queue ran {drained - total:.1f} s more after the request finished: its notices)")
    return total, phases


# --- openstacksdk directly --------------------------------------------------------------------------


def provision_raw(
    admin: Any, project_id: str, ids: dict[str, str], vms: int, disk_gb: int, tag: str
) -> tuple[float, Phases]:
    conn = admin.connect_as_project({"id": project_id})
    phases = Phases()
    started = time.perf_counter()
    with phases.phase("keypair+group"):
        keypair = conn.compute.create_keypair(name=f"bench-raw-{tag}", public_key=public_key_line())
        members = conn.network.create_security_group(name=f"bench-raw-{tag}-dept", description="members")
        for rule in list(conn.network.security_group_rules(security_group_id=members.id)):
            conn.network.delete_security_group_rule(rule)
        group = conn.network.create_security_group(name=f"bench-raw-{tag}", description="web")
        for port in (80, 443):
            for ethertype, world in (("IPv4", "0.0.0.0/0"), ("IPv6", "::/0")):
                conn.network.create_security_group_rule(
                    security_group_id=group.id,
                    direction="ingress",
                    ether_type=ethertype,
                    protocol="tcp",
                    port_range_min=port,
                    port_range_max=port,
                    remote_ip_prefix=world,
                )
    with phases.phase("boot calls"):
        servers = [
            conn.compute.create_server(
                name=f"bench-raw-{tag}-{i}",
                flavor_id=ids["flavor"],
                image_id=ids["image"],
                networks=[{"uuid": ids["network"]}],
                key_name=keypair.name,
                security_groups=[{"name": group.name}, {"name": members.name}],
                user_data=ids["user_data"],
                metadata={"purpose": "benchmark", "request": tag, "server": str(i), "department": "raw"},
                tags=[f"bench-raw-{tag}-{i}"],
            )
            for i in range(vms)
        ]
    with phases.phase("wait ACTIVE"):
        servers = [conn.compute.wait_for_server(s, status="ACTIVE", interval=POLL, wait=WAIT) for s in servers]
    with phases.phase("volumes"):
        volumes = [
            conn.block_storage.create_volume(name=f"bench-raw-{tag}-{i}-data1", size=disk_gb, volume_type=VOLUME_TYPE)
            for i in range(vms)
        ]
        volumes = [
            conn.block_storage.wait_for_status(v, "available", failures=["error"], interval=POLL, wait=WAIT)
            for v in volumes
        ]
    with phases.phase("attach"):
        for server, volume in zip(servers, volumes, strict=True):
            conn.compute.create_volume_attachment(server, volume_id=volume.id)
        for volume in volumes:
            conn.block_storage.wait_for_status(volume, "in-use", failures=["error"], interval=POLL, wait=WAIT)
    with phases.phase("addresses"):
        ips = [conn.network.create_ip(floating_network_id=ids["external"]) for _ in range(vms)]
        for server, ip in zip(servers, ips, strict=True):
            port = next(iter(conn.network.ports(device_id=server.id)))
            conn.network.update_ip(ip, port_id=port.id)
    return time.perf_counter() - started, phases


# --- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--disk-gb", type=int, default=10)
    parser.add_argument("--flavor", default="m1.tiny")
    parser.add_argument(
        "--boots", type=int, default=None, help="cloudmgr's max_concurrent_boots (default: the setting's default)"
    )
    args = parser.parse_args()
    if not CLOUDS_YAML.exists():
        sys.exit(f"the lab is not up ({CLOUDS_YAML} missing): run `make lab-up`")
    TIMER.install()
    run = secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="cloudmgr-bench-usable-"))
    admin = lab_connection()
    cm: Cloudmgr | None = None
    results: dict[str, list[tuple[float, Phases]]] = {"cloudmgr": [], "raw": []}
    try:
        cm = build_cloudmgr(tmp, run, args.vms, args.rounds, args.boots)
        project_id = cm.project_id
        keypair_prefixes = (f"cm-{project_id}-", f"bench-raw-{run}")
        ids = {
            "flavor": admin.compute.find_flavor(args.flavor, ignore_missing=False).id,
            "image": next(admin.image.images(name="cirros-lab")).id,
            "network": admin.network.find_network("lab-internet", ignore_missing=False).id,
            "external": admin.network.find_network(EXTERNAL_NETWORK, ignore_missing=False).id,
            "user_data": base64.b64encode(USER_DATA.encode()).decode(),  # Nova takes it encoded
        }
        for round_ in range(args.rounds):
            order = ("cloudmgr", "raw") if round_ % 2 == 0 else ("raw", "cloudmgr")
            for side in order:
                tag = f"{run}{round_}"
                try:
                    if side == "cloudmgr":
                        outcome = provision_with_cloudmgr(cm, args.vms, args.flavor, args.disk_gb, tag)
                    else:
                        outcome = provision_raw(admin, project_id, ids, args.vms, args.disk_gb, tag)
                finally:
                    clean_project(admin, project_id, keypair_prefixes)
                results[side].append(outcome)
                split = "  ".join(f"{p} {outcome[1].seconds.get(p, 0.0):.1f}" for p in PHASES)
                print(f"round {round_ + 1} {side:<8} all ready {outcome[0]:7.2f} s   ({split})", flush=True)
    finally:
        if cm is not None:
            clean_project(admin, cm.project_id, (f"cm-{cm.project_id}-", f"bench-raw-{run}"))
            remove_domain(admin, f"dept-{cm.department_key}")
            set_runtime(None)
            cm.rt.db.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    ours = med(t for t, _ in results["cloudmgr"])
    theirs = med(t for t, _ in results["raw"])
    print()
    boots = cm.rt.settings.max_concurrent_boots if cm is not None else args.boots
    print(f"{args.vms} VMs ({args.flavor}, a {args.disk_gb} GB disk and a public address each), {args.rounds} rounds")
    print(f"cloudmgr boots {boots} at a time (max_concurrent_boots), then makes the batch's parts phase by phase")
    print(f"medians, s:  {'':<16}{'cloudmgr':>10}{'raw sdk':>10}{'ratio':>8}")
    for phase in PHASES:
        a = med(p.seconds.get(phase, 0.0) for _, p in results["cloudmgr"])
        b = med(p.seconds.get(phase, 0.0) for _, p in results["raw"])
        ratio = f"{a / b:>8.2f}" if b > 0.05 else f"{'-':>8}"
        print(f"             {phase:<16}{a:>10.2f}{b:>10.2f}{ratio}")
    print(f"             {'all ready':<16}{ours:>10.2f}{theirs:>10.2f}{ours / theirs:>8.2f}")
    print(f"goal: all ready ratio <= 1.10 -> {'met' if ours / theirs <= 1.10 else 'NOT met'}")


if __name__ == "__main__":
    main()
