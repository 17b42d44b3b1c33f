"""Provisioning throughput (issue 20): one request for COUNT VMs, time to all ACTIVE through
cloudmgr against the same boots made with openstacksdk, at each concurrency asked.

For each concurrency N, in the same run and the same department project:

(a) raw: COUNT servers booted with openstacksdk directly (the same flavor, image, network, and the
    same kind of metadata and tag as cloudmgr's), never more than N building at once, the next
    booted as soon as one is ACTIVE; the servers building are watched with one listing of the
    project's servers as often as cloudmgr's OpenStack provider polls.  Time from
    the first boot to the last server seen ACTIVE.
(b) cloudmgr: one service request for COUNT VMs on the real path: a department user submits it,
    each approver of its chain approves it, and the work queue's runner
    (``Worker(db, work_handlers()).drain()``) runs the provisioning work item with
    ``max_concurrent_boots`` = N.  Time from the work item's start to the last server recorded
    ACTIVE (its ``active_at``); the request's end (``finished_at``) is printed beside it.

Every server made is deleted after each side (and on failure); the department (a Keystone domain
of its own, its project and the project's quotas) is removed at the end.  cloudmgr runs on a
SQLite database in a temporary folder.  Goal: (b) / (a) <= 1.1 at each concurrency.

    .venv/bin/python benchmarks/provisioning_throughput.py --cloud cloudmgr-lab --count 6 --concurrency 1,3
    .venv/bin/python benchmarks/provisioning_throughput.py --cloud cloudmgr-lab-scale --count 100 \\
        --concurrency 1,3,10,30

``--cloud`` is an entry of the lab's clouds.yaml (``CLOUDMGR_LAB_CLOUDS_YAML``, default
``.lab/clouds.yaml``); it must have the lab's flavor (``--flavor``, m1.tiny), image (cirros-lab)
and network (lab-internet).
"""

from __future__ import annotations

import argparse
import functools
import os
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import openstack.config  # noqa: E402
import openstack.connection  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import select  # noqa: E402

import cloudmgr.models  # noqa: E402, F401  (every mapper)
from cloudmgr.catalog.models import CatalogItem, ItemKind  # noqa: E402
from cloudmgr.catalog.services import read_rates, sync_catalog  # noqa: E402
from cloudmgr.config import REPO_ROOT, load_settings  # noqa: E402
from cloudmgr.dbschema import upgrade  # noqa: E402
from cloudmgr.organisation import services as org  # noqa: E402
from cloudmgr.organisation.actor import Actor  # noqa: E402
from cloudmgr.organisation.models import Cloud, DepartmentCloud, Role  # noqa: E402
from cloudmgr.organisation.sync import sync_clouds  # noqa: E402
from cloudmgr.quotas import services as quotas  # noqa: E402
from cloudmgr.runtime import Runtime, set_runtime  # noqa: E402
from cloudmgr.scheduler.jobs import work_handlers  # noqa: E402
from cloudmgr.servicerequests import services as requests_service  # noqa: E402
from cloudmgr.servicerequests.models import ServiceRequest  # noqa: E402
from cloudmgr.servicerequests.quoting import RequestForm  # noqa: E402
from cloudmgr.workqueue.services import ClaimedItem, Worker  # noqa: E402

CLOUDS_YAML = Path(os.environ.get("CLOUDMGR_LAB_CLOUDS_YAML", str(REPO / ".lab" / "clouds.yaml")))
CLOUD_KEY = "education"  # a cloud of etc/government-clouds.yaml, pointed at --cloud
ZONE = "internet"
NETWORK = "lab-internet"
IMAGE = "cirros-lab"
WAIT = 1800  # seconds a side may take before it is given up


@dataclass
class Lab:
    cloud: str
    region: str | None
    admin: Any


def lab(cloud: str) -> Lab:
    if not CLOUDS_YAML.exists():
        sys.exit(f"no clouds.yaml at {CLOUDS_YAML}: start the lab (`make lab-up`) or set CLOUDMGR_LAB_CLOUDS_YAML")
    config = openstack.config.OpenStackConfig(config_files=[str(CLOUDS_YAML)])
    if cloud not in config.get_cloud_names():
        sys.exit(f"--cloud {cloud!r} is not in {CLOUDS_YAML} (it has {', '.join(config.get_cloud_names())})")
    region = config.get_one(cloud=cloud)
    return Lab(cloud, region.region_name or None, openstack.connection.Connection(config=region))


# --- cloudmgr -----------------------------------------------------------------------------------


@dataclass
class Cloudmgr:
    rt: Runtime
    staff: Actor
    approvers: dict[str, Actor]
    department_key: str
    project_id: str
    flavor_item: int
    image_item: int


def build_cloudmgr(tmp: Path, the_lab: Lab, run: str, instances: int, flavor: str) -> Cloudmgr:
    """A runtime on --cloud with a department of its own (its project made by the clouds sync),
    a quota with room for every request of the run (the ledger keeps each as used: the benchmark
    deletes the servers behind cloudmgr's back), and the catalog."""
    instance = tmp / "instance"
    instance.mkdir()
    clouds = yaml.safe_load((REPO_ROOT / "etc" / "government-clouds.yaml").read_text(encoding="utf-8"))
    entry = next(c for c in clouds["clouds"] if c["key"] == CLOUD_KEY)
    entry.update(os_cloud=the_lab.cloud, region=the_lab.region)
    clouds_file = tmp / "clouds.yaml"
    clouds_file.write_text(yaml.safe_dump({"clouds": [entry]}, allow_unicode=True), encoding="utf-8")
    database_url = f"sqlite:///{tmp / 'cloudmgr.sqlite3'}"
    settings = load_settings(
        {"CLOUDMGR_ENV": "test"},
        instance_path=instance,
        database_url=database_url,
        ansible_artifacts_dir=instance / "ansible",
        scheduler_enabled=False,
        cloud_provider="openstack",
        os_client_config_file=str(CLOUDS_YAML),
        clouds_file=clouds_file,
    )
    upgrade(database_url)
    rt = Runtime.from_settings(settings)
    set_runtime(rt)
    key = f"thru{run}"
    departments_file = tmp / "departments.yaml"
    departments_file.write_text(
        yaml.safe_dump(
            {
                "departments": [
                    {
                        "key": key,
                        "name_zh": "吞吐量基准部门",
                        "name_en": "Throughput benchmark department",
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
    (quota_dir / "departments.yaml").write_text(
        yaml.safe_dump({"departments": {key: {CLOUD_KEY: {"size": "xlarge", "instances": instances}}}}),
        encoding="utf-8",
    )
    system = Actor.system("benchmark")
    cloud_defs, departments = org.read_organisation(clouds_file, departments_file)
    with rt.db.unit_of_work() as uow:
        org.import_organisation(uow.session, cloud_defs, departments, actor=system)
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
    if not project_id:
        raise RuntimeError("the clouds sync made no project for the department")
    approvers = {"dept_head": users[Role.DEPT_HEAD], "operator": users[Role.OPERATOR], "finance": users[Role.FINANCE]}
    return Cloudmgr(
        rt,
        users[Role.DEPT_STAFF],
        approvers,
        key,
        project_id,
        items[(ItemKind.FLAVOR.value, flavor)],
        items[(ItemKind.IMAGE.value, IMAGE)],
    )


@dataclass
class CloudmgrTimes:
    to_all_active: float
    to_finished: float


def provision_with_cloudmgr(cm: Cloudmgr, count: int, concurrency: int, tag: str) -> CloudmgrTimes:
    """Submit, approve, then the queue's runner with ``max_concurrent_boots`` = ``concurrency``."""
    rt = cm.rt
    rt.settings = rt.settings.with_overrides(max_concurrent_boots=concurrency)
    form = RequestForm(
        cloud_key=CLOUD_KEY,
        zone=ZONE,
        flavor_item_id=cm.flavor_item,
        image_item_id=cm.image_item,
        count=count,
        name_prefix=f"thru{tag}",
        justification="benchmark of provisioning throughput",
        expires_on=date.today() + timedelta(days=30),
    )
    with rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(uow.session, cm.staff, form, submit=True, settings=rt.settings).id
    while True:
        with rt.db.unit_of_work() as uow:
            role = uow.session.get_one(ServiceRequest, request_id).next_role
        if role is None:
            break
        with rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, cm.approvers[role], request_id, reason="benchmark")
    started: list[float] = []
    handlers = dict(work_handlers())
    handlers["provision"] = _timed_start(handlers["provision"], started)
    Worker(rt.db, handlers).drain(max_items=500)
    with rt.db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        if request.state != "active" or request.finished_at is None:
            faults = "\n  ".join(f"{s.name} ({s.server_id}): {s.state}: {s.fault}" for s in request.servers[:10])
            raise RuntimeError(f"request {request_id} is {request.state} ({request.state_reason}):\n  {faults}")
        last_active = max(s.active_at for s in request.servers if s.active_at is not None)
        finished = request.finished_at
    if len(started) != 1:
        raise RuntimeError(f"the provisioning work item ran {len(started)} times (a retry: the figure would mislead)")
    return CloudmgrTimes(last_active.timestamp() - started[0], finished.timestamp() - started[0])


def _timed_start(handler: Callable[[Any, ClaimedItem], None], started: list[float]) -> Callable[..., None]:
    @functools.wraps(handler)  # keeps its give-up hook
    def run(db: Any, item: ClaimedItem) -> None:
        started.append(time.time())
        handler(db, item)

    return run


# --- openstacksdk directly ------------------------------------------------------------------------


def provision_raw(
    the_lab: Lab, project_id: str, ids: dict[str, str], count: int, concurrency: int, tag: str, poll: float
) -> float:
    """COUNT boots, never more than ``concurrency`` building, watched by one listing per poll."""
    admin = the_lab.admin
    conn = admin.connect_as_project({"id": project_id})
    to_boot = list(range(1, count + 1))
    building: dict[str, str] = {}  # id -> name
    started = time.time()
    deadline = time.monotonic() + WAIT
    last_active = started
    while to_boot or building:
        while to_boot and len(building) < concurrency:
            index = to_boot.pop(0)
            name = f"thru-raw-{tag}-{index:03d}"
            server = conn.compute.create_server(
                name=name,
                flavor_id=ids["flavor"],
                image_id=ids["image"],
                networks=[{"uuid": ids["network"]}],
                metadata={"purpose": "benchmark", "request": tag, "server": str(index), "department": "raw"},
                tags=[name],
            )
            building[str(server.id)] = name
        time.sleep(poll)
        for server in admin.compute.servers(details=True, all_projects=True, project_id=project_id):
            if str(server.id) not in building:
                continue
            if server.status == "ACTIVE" and not server.task_state:
                del building[str(server.id)]
                last_active = time.time()
            elif server.status == "ERROR":
                raise RuntimeError(f"raw server {server.name} went to ERROR: {server.fault}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"raw: {len(building) + len(to_boot)} servers not ACTIVE after {WAIT} s")
    return last_active - started


# --- cleaning up --------------------------------------------------------------------------------


def delete_servers(admin: Any, project_id: str) -> None:
    servers = list(admin.compute.servers(all_projects=True, project_id=project_id))
    for server in servers:
        admin.compute.delete_server(server, ignore_missing=True)
    for server in servers:
        admin.compute.wait_for_delete(server, interval=1, wait=WAIT)


def remove_domain(admin: Any, domain_name: str) -> None:
    domain = admin.identity.find_domain(domain_name)
    if domain is None:
        return
    for project in list(admin.identity.projects(domain_id=domain.id)):
        delete_servers(admin, project.id)
        for group in list(admin.network.security_groups(project_id=project.id)):
            admin.network.delete_security_group(group, ignore_missing=True)
        admin.identity.delete_project(project, ignore_missing=True)  # its quotas go with it
    admin.identity.update_domain(domain, is_enabled=False)
    admin.identity.delete_domain(domain, ignore_missing=True)


# --- main -------------------------------------------------------------------------------------------


def concurrencies(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of whole numbers, not {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"each concurrency must be at least 1, not {text!r}")
    return values


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cloud", required=True, help="the clouds.yaml entry to boot on (e.g. cloudmgr-lab-scale)")
    parser.add_argument("--count", type=int, default=100, help="servers per request (default 100)")
    parser.add_argument("--concurrency", type=concurrencies, default=[1, 3, 10, 30], help="e.g. 1,3,10,30")
    parser.add_argument("--flavor", default="m1.tiny")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    command = shlex.join([sys.executable, *sys.argv])
    print(f"command: {command}")
    the_lab = lab(args.cloud)
    run = secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="cloudmgr-bench-throughput-"))
    cm: Cloudmgr | None = None
    rows: list[tuple[int, float, CloudmgrTimes, str]] = []
    try:
        cm = build_cloudmgr(tmp, the_lab, run, args.count * len(args.concurrency), args.flavor)
        admin = the_lab.admin
        poll = cm.rt.providers.for_cloud(CLOUD_KEY, the_lab.cloud, the_lab.region).poll_interval
        print(f"{args.count} VMs ({args.flavor}, {IMAGE}, {NETWORK}) on {args.cloud}; both poll every {poll:.1f} s")
        print(f"before: {load()}", flush=True)
        ids = {
            "flavor": admin.compute.find_flavor(args.flavor, ignore_missing=False).id,
            "image": next(admin.image.images(name=IMAGE)).id,
            "network": admin.network.find_network(NETWORK, ignore_missing=False).id,
        }
        for turn, concurrency in enumerate(args.concurrency):
            tag = f"{run}c{concurrency}"
            # Which side goes first alternates, so neither always meets a cloud just emptied.
            order = ("raw", "cloudmgr") if turn % 2 == 0 else ("cloudmgr", "raw")
            raw = 0.0
            ours = CloudmgrTimes(0.0, 0.0)
            for side in order:
                try:
                    if side == "raw":
                        raw = provision_raw(the_lab, cm.project_id, ids, args.count, concurrency, tag, poll)
                    else:
                        ours = provision_with_cloudmgr(cm, args.count, concurrency, tag)
                finally:
                    delete_servers(admin, cm.project_id)
            rows.append((concurrency, raw, ours, load()))
            print(
                f"concurrency {concurrency:>3}: raw {raw:8.1f} s   cloudmgr {ours.to_all_active:8.1f} s "
                f"(request finished {ours.to_finished:.1f} s)   ratio {ours.to_all_active / raw:5.2f}   {load()}",
                flush=True,
            )
    finally:
        if cm is not None:
            remove_domain(the_lab.admin, f"dept-{cm.department_key}")
            set_runtime(None)
            cm.rt.db.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"{args.count} VMs to all ACTIVE on {args.cloud}, seconds (cloudmgr: from its work item's start)")
    print(f"{'concurrency':>11} {'raw sdk':>9} {'cloudmgr':>9} {'ratio':>6}  {'finished':>9}  machine")
    for concurrency, raw, ours, machine in rows:
        ratio = ours.to_all_active / raw
        figures = f"{raw:>9.1f} {ours.to_all_active:>9.1f} {ratio:>6.2f}  {ours.to_finished:>9.1f}"
        print(f"{concurrency:>11} {figures}  {machine}")
    worst = max(ours.to_all_active / raw for _, raw, ours, _ in rows)
    verdict = "met" if worst <= 1.10 else "NOT met"
    print(f"goal: cloudmgr / raw <= 1.10 at every concurrency -> {verdict} (worst {worst:.2f})")
    print(f"command: {command}")


if __name__ == "__main__":
    main()
