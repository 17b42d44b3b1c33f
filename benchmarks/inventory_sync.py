"""Inventory sync at size (issue 20): cloudmgr's server mirror against openstacksdk on the same cloud.

In one run, alternating, median of ``--rounds``:

(a) the raw full listing: ``conn.compute.servers(details=True, all_projects=True, limit=1000)`` iterated;
(b) cloudmgr's full sync into a fresh database (``sync_cloud_servers``, mode full, pages of 1000),
    and the same full sync again on that database (steady state: nothing new);

then it makes ``--changes`` changes itself, a quarter each, on servers of a project of its own
(booted before the full syncs, so they are part of the inventory): boots new servers (multi-create),
deletes, resizes (and confirms), live-migrates (as the lab tests do); waits for them to settle; then

(c) the raw ``changes-since`` listing, from the same instant the delta asks from;
(d) cloudmgr's delta sync on a copy of the database as (b) left it.

Peak memory: a full sync in a fresh child process each (``ru_maxrss``, after the imports and the
migration, and after the sync) for a project with no servers, for one project (``--project ID``,
or the project holding nearest ``--project-size`` servers) and for the whole cloud; the growth per
server is extrapolated to 50,000 servers.  Prints the machine's load before and after, the counts
and the commands.  Everything it boots is deleted at the end, with its project.

    .venv/bin/python benchmarks/inventory_sync.py --cloud cloudmgr-lab [--changes 500] [--rounds 3]
        [--project-size 500 | --project ID] [--database-url postgresql+psycopg://…/bench]
        [--flavor m1.tiny --resize-flavor m1.small] [--clouds-yaml .lab/clouds.yaml]

``--database-url`` names a PostgreSQL database the benchmark may create databases beside
(``<name>_isync_*``, dropped at the end); by default each database is an SQLite file in a
temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import openstack.config  # noqa: E402
import openstack.connection  # noqa: E402
import openstack.exceptions  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from cloudmgr.cloud.openstack import OpenStackProvider  # noqa: E402
from cloudmgr.cloudservers.services import SyncMode, SyncPolicy, SyncResult, sync_cloud_servers  # noqa: E402
from cloudmgr.db import Database  # noqa: E402
from cloudmgr.dbschema import upgrade  # noqa: E402
from cloudmgr.organisation.models import Cloud  # noqa: E402

DEFAULT_CLOUDS_YAML = REPO / ".lab" / "clouds.yaml"
PAGE = 1000
WAIT = 900.0
EXTRAPOLATE_TO = 50_000


def retried(action: Any, what: str, tries: int = 6) -> Any:
    """For the calls around the measurements (set-up, waits, clean-up): a loaded lab's nova-api
    drops a connection now and then; a measured call is never retried."""
    for attempt in range(tries):
        try:
            return action()
        except openstack.exceptions.SDKException as exc:  # ConnectFailure is one too (via keystoneauth)
            last = exc
        except Exception as exc:  # keystoneauth's connection errors
            if "connect" not in type(exc).__name__.lower():
                raise
            last = exc
        print(f"note: {what} failed ({last}); again in {2 + 3 * attempt}s", file=sys.stderr, flush=True)
        time.sleep(2 + 3 * attempt)
    raise SystemExit(f"{what}: gave up after {tries} tries")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def raw_connection(clouds_yaml: Path, cloud: str, project_id: str | None = None) -> Any:
    region = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)]).get_one(cloud=cloud)
    conn = openstack.connection.Connection(config=region)
    return conn.connect_as_project({"id": project_id}) if project_id else conn


# ---- databases ------------------------------------------------------------------------------------


class Databases:
    """Fresh databases on demand: copies of one migrated template (an SQLite file, or a PostgreSQL
    database used as a template), each holding the cloud's row."""

    def __init__(self, url: str, cloud: str, folder: Path) -> None:
        self.cloud, self.folder, self.made = cloud, folder, []
        self.pg = make_url(url) if url else None
        self.template = self._name("template")
        url_of_template = self.url(self.template)
        if self.pg is not None:
            self._admin(f'DROP DATABASE IF EXISTS "{self.template}"', f'CREATE DATABASE "{self.template}"')
        upgrade(url_of_template)
        db = Database(url_of_template)
        with db.unit_of_work() as uow:
            uow.session.add(
                Cloud(
                    key=cloud,
                    name_zh=cloud,
                    name_en=cloud,
                    kind="base",
                    level="province",
                    os_cloud=cloud,
                    enabled=True,
                    quota_drift_policy="repair",
                    approval_policy={},
                )
            )
        db.dispose()
        self.made.append(self.template)

    def _name(self, label: str) -> str:
        if self.pg is None:
            return str(self.folder / f"{label}.sqlite3")
        return f"{self.pg.database}_isync_{label}"

    def url(self, name: str) -> str:
        if self.pg is None:
            return f"sqlite:///{name}"
        return self.pg.set(database=name).render_as_string(hide_password=False)

    def _admin(self, *statements: str) -> None:
        assert self.pg is not None
        engine = create_engine(self.pg.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for statement in statements:
                    conn.execute(text(statement))
        finally:
            engine.dispose()

    def copy(self, source: str, label: str) -> str:
        """A new database holding what ``source`` holds; returns its URL."""
        name = self._name(label)
        if self.pg is None:
            shutil.copyfile(source, name)
        else:
            self._admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        self.made.append(name)
        return name

    def drop_all(self) -> None:
        if self.pg is None:
            return
        for name in reversed(self.made):
            self._admin(f'DROP DATABASE IF EXISTS "{name}"')


def cloud_id_of(db: Database) -> int:
    with db.unit_of_work() as uow:
        return int(uow.session.execute(text("SELECT id FROM clouds")).scalar_one())


# ---- the two sides ----------------------------------------------------------------------------------


def raw_listing(conn: Any, changes_since: datetime | None = None) -> tuple[float, int, int]:
    """Seconds, servers listed, DELETED among them."""
    query: dict[str, Any] = {"details": True, "all_projects": True, "limit": PAGE}
    if changes_since is not None:
        query["changes_since"] = changes_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    started = time.perf_counter()
    count = deleted = 0
    for server in conn.compute.servers(**query):
        count += 1
        deleted += server.status == "DELETED"
    return time.perf_counter() - started, count, deleted


def cloudmgr_sync(url: str, provider: OpenStackProvider, mode: SyncMode) -> SyncResult:
    db = Database(url)
    try:
        return sync_cloud_servers(db, provider, cloud_id_of(db), mode=mode, policy=SyncPolicy(page_size=PAGE))
    finally:
        db.dispose()


# ---- changes ------------------------------------------------------------------------------------------

#: A quarter of the changes are live migrations; --no-moves stops those servers instead (the lab's
#: scale cloud has one compute host, and Nova moves a server only to another host).
MOVES = True


def wait_all(admin: Any, project_id: str, ids: list[str], statuses: set[str], what: str) -> None:
    """Wait until each server (of our project: never a listing of the whole cloud) is in one of
    ``statuses`` with no task, or gone for DELETED."""
    deadline = time.monotonic() + WAIT
    pending = set(ids)
    while pending:
        alive = set()
        listed = retried(
            lambda: list(admin.compute.servers(details=True, all_projects=True, project_id=project_id, limit=PAGE)),
            f"{what}: list the project's servers",
        )
        for server in listed:
            alive.add(server.id)
            if server.id in pending and server.status in statuses and not server.task_state:
                pending.discard(server.id)
            elif server.id in pending and server.status == "ERROR":
                raise SystemExit(f"{what}: server {server.id} went to ERROR ({server.fault})")
        if "DELETED" in statuses:
            pending &= alive
        if pending and time.monotonic() > deadline:
            raise SystemExit(f"{what}: {len(pending)} server(s) not {'/'.join(sorted(statuses))} after {WAIT:.0f}s")
        if pending:
            time.sleep(2)


def boot(conn: Any, ids: dict[str, str], prefix: str, count: int, chunk: int = 50) -> list[str]:
    made: list[str] = []
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        conn.compute.create_server(
            name=f"{prefix}-{start}",
            flavor_id=ids["flavor"],
            image_id=ids["image"],
            networks="none",
            min_count=size,
            max_count=size,
        )
    deadline = time.monotonic() + WAIT
    while len(made) < count:
        made = [
            s.id for s in retried(lambda: list(conn.compute.servers(details=False, name=f"^{prefix}-")), "list boots")
        ]
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(made)} of {count} servers {prefix} were created")
        if len(made) < count:
            time.sleep(1)
    return made


def make_changes(
    admin: Any, conn: Any, project_id: str, ids: dict[str, str], prepared: dict[str, list[str]], run: str
) -> Counter[str]:
    done: Counter[str] = Counter()
    new = boot(conn, ids, f"isync-{run}-new", len(prepared["delete"]))
    done["booted"] = len(new)
    for server_id in prepared["delete"]:
        admin.compute.delete_server(server_id)
    done["deleted"] = len(prepared["delete"])
    for server_id in prepared["resize"]:
        admin.compute.resize_server(server_id, ids["resize_flavor"])
    for server_id in prepared["migrate"]:
        if MOVES:
            admin.compute.live_migrate_server(server_id, host=None, block_migration="auto")
        else:
            admin.compute.stop_server(server_id)
    wait_all(admin, project_id, prepared["resize"], {"VERIFY_RESIZE"}, "resize")
    for server_id in prepared["resize"]:
        admin.compute.confirm_server_resize(server_id)
    done["resized"] = len(prepared["resize"])
    done["migrated" if MOVES else "stopped"] = len(prepared["migrate"])
    wait_all(
        admin,
        project_id,
        [*new, *prepared["resize"], *([*prepared["migrate"]] if MOVES else [])],
        {"ACTIVE"},
        "changes",
    )
    if not MOVES:
        wait_all(admin, project_id, prepared["migrate"], {"SHUTOFF"}, "stops")
    wait_all(admin, project_id, prepared["delete"], {"DELETED"}, "deletions")
    return done


# ---- peak memory in a child ---------------------------------------------------------------------------


def child_sync(args: argparse.Namespace) -> None:
    before = rss_mb()
    provider = OpenStackProvider(cloud=args.cloud, config_files=[str(args.clouds_yaml)])
    db = Database(args.child_db)
    cloud_id = cloud_id_of(db)
    ready = rss_mb()
    result = sync_cloud_servers(
        db, provider, cloud_id, mode=SyncMode.FULL, policy=SyncPolicy(page_size=PAGE), project_id=args.project
    )
    print(
        json.dumps(
            {
                "servers": result.listed,
                "seconds": result.seconds,
                "rss_start": before,
                "rss_ready": ready,
                "rss_peak": rss_mb(),
            }
        )
    )


def measure_rss(args: argparse.Namespace, databases: Databases, project: str | None, label: str) -> dict[str, Any]:
    name = databases.copy(databases.template, f"rss-{label}")
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--cloud",
        args.cloud,
        "--clouds-yaml",
        str(args.clouds_yaml),
        "--child-db",
        databases.url(name),
    ]
    if project:
        command += ["--project", project]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the memory child failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]), label=label)


# ---- main ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cloud", required=True, help="the clouds.yaml entry (e.g. cloudmgr-lab)")
    parser.add_argument("--clouds-yaml", type=Path, default=DEFAULT_CLOUDS_YAML)
    parser.add_argument("--changes", type=int, default=500, help="changes to make, a quarter of each kind")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--project", default=None, help="the project synced alone for the memory figure")
    parser.add_argument("--project-size", type=int, default=500, help="else: the project holding nearest this many")
    parser.add_argument("--database-url", default="", help="PostgreSQL (default: SQLite files)")
    parser.add_argument("--flavor", default="m1.tiny")
    parser.add_argument("--resize-flavor", default="m1.small")
    parser.add_argument("--image", default="cirros-lab")
    parser.add_argument(
        "--no-moves", action="store_true", help="stop a quarter of the servers instead of live-migrating them"
    )
    parser.add_argument("--child-db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global MOVES
    MOVES = not args.no_moves
    if not args.clouds_yaml.exists():
        sys.exit(f"{args.clouds_yaml} does not exist: is the lab up?")
    if args.child_db:
        child_sync(args)
        return
    if args.changes < 4 or args.rounds < 1:
        sys.exit("--changes must be at least 4 (a quarter of each kind) and --rounds at least 1")
    load_before = os.getloadavg()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    print(
        f"cloudmgr's own command for (b)/(d): cloudmgr servers sync [--full] --cloud KEY (KEY's os_cloud {args.cloud})"
    )
    admin = raw_connection(args.clouds_yaml, args.cloud)
    provider = OpenStackProvider(cloud=args.cloud, config_files=[str(args.clouds_yaml)])
    flavors = {f.name: f.id for f in admin.compute.flavors()}
    image = next((i for i in admin.image.images() if i.name == args.image), None)
    if args.flavor not in flavors or args.resize_flavor not in flavors or image is None:
        sys.exit(f"the cloud lacks flavor {args.flavor}, {args.resize_flavor} or image {args.image}")
    ids = {"flavor": flavors[args.flavor], "resize_flavor": flavors[args.resize_flavor], "image": image.id}
    run = secrets.token_hex(3)
    quarter = args.changes // 4
    project = admin.identity.create_project(
        name=f"isync-{run}", domain_id="default", description="inventory sync benchmark"
    )
    folder = Path(tempfile.mkdtemp(prefix="isync-"))
    databases: Databases | None = None
    try:
        admin.identity.assign_project_role_to_user(
            project, admin.identity.find_user("admin", domain_id="default"), admin.identity.find_role("admin")
        )
        admin.compute.update_quota_set(project.id, instances=-1, cores=-1, ram=-1)
        conn = raw_connection(args.clouds_yaml, args.cloud, project.id)
        made = boot(conn, ids, f"isync-{run}-old", 3 * quarter)
        wait_all(admin, project.id, made, {"ACTIVE"}, "prepared servers")
        prepared = {"delete": made[:quarter], "resize": made[quarter : 2 * quarter], "migrate": made[2 * quarter :]}
        print(f"prepared {len(made)} servers in project isync-{run} ({project.id})", flush=True)
        databases = Databases(args.database_url, args.cloud, folder)

        raw_full, fresh_full, steady_full = [], [], []
        last_db = ""
        listed = 0
        for round_ in range(args.rounds):
            order = ("raw", "cloudmgr") if round_ % 2 == 0 else ("cloudmgr", "raw")
            for side in order:
                if side == "raw":
                    seconds, listed, _ = raw_listing(admin)
                    raw_full.append(seconds)
                    print(
                        f"round {round_ + 1} (a) raw full listing      {seconds:8.2f} s  {listed} servers", flush=True
                    )
                else:
                    last_db = databases.copy(databases.template, f"full-{round_}")
                    fresh = cloudmgr_sync(databases.url(last_db), provider, SyncMode.FULL)
                    fresh_full.append(fresh.seconds)
                    steady = cloudmgr_sync(databases.url(last_db), provider, SyncMode.FULL)
                    steady_full.append(steady.seconds)
                    print(f"round {round_ + 1} (b) cloudmgr full, fresh  {fresh.seconds:8.2f} s  {fresh.summary()}")
                    print(f"round {round_ + 1} (b) cloudmgr full, again  {steady.seconds:8.2f} s  {steady.summary()}")

        probe = cloudmgr_sync(databases.url(databases.copy(last_db, "probe")), provider, SyncMode.DELTA)
        since = probe.changes_since
        assert since is not None
        print(f"the delta asks changes since {since.isoformat()}; making {4 * quarter} changes…", flush=True)
        changed = make_changes(admin, conn, project.id, ids, prepared, run)
        print(f"changes made: {dict(changed)}", flush=True)

        raw_delta, delta = [], []
        for round_ in range(args.rounds):
            order = ("raw", "cloudmgr") if round_ % 2 == 0 else ("cloudmgr", "raw")
            for side in order:
                if side == "raw":
                    seconds, count, gone = raw_listing(admin, since)
                    raw_delta.append(seconds)
                    print(
                        f"round {round_ + 1} (c) raw changes-since     {seconds:8.2f} s  {count} listed, {gone} DELETED"
                    )
                else:
                    copy = databases.copy(last_db, f"delta-{round_}")
                    result = cloudmgr_sync(databases.url(copy), provider, SyncMode.DELTA)
                    delta.append(result.seconds)
                    print(f"round {round_ + 1} (d) cloudmgr delta sync   {result.seconds:8.2f} s  {result.summary()}")

        projects = Counter(
            s.project_id
            for s in retried(
                lambda: list(admin.compute.servers(details=True, all_projects=True, limit=PAGE)), "count by project"
            )
        )
        # (The minimal listing has no project: the detailed one is read once, outside the measurements.)
        one = args.project or min(projects, key=lambda p: (abs(projects[p] - args.project_size), str(p)))
        memory = [
            measure_rss(args, databases, "no-such-project-" + run, "no servers"),
            measure_rss(args, databases, one, f"project {one}"),
            measure_rss(args, databases, None, "whole cloud"),
        ]
    finally:

        def ours() -> list[Any]:
            return list(admin.compute.servers(all_projects=True, project_id=project.id))

        for server in retried(ours, "list what to clean up"):
            retried(lambda s=server: admin.compute.delete_server(s.id, ignore_missing=True), "delete a server")
        deadline = time.monotonic() + WAIT
        while retried(ours, "wait for the deletions"):
            if time.monotonic() > deadline:
                print(f"note: servers of project {project.id} still there; delete them by hand", file=sys.stderr)
                break
            time.sleep(2)
        retried(lambda: admin.identity.delete_project(project.id, ignore_missing=True), "delete the project")
        if databases is not None:
            databases.drop_all()
        shutil.rmtree(folder, ignore_errors=True)
    load_after = os.getloadavg()

    med = statistics.median
    database = "PostgreSQL" if args.database_url else "SQLite"
    print()
    print(
        f"cloud {args.cloud}: {listed} servers, {args.rounds} round(s), medians, database {database}, pages of {PAGE}"
    )
    print(f"  {'':<44}{'raw sdk':>9}{'cloudmgr':>10}{'ratio':>8}")
    for label, theirs, ours in (
        ("full listing vs full sync, fresh db (s)", med(raw_full), med(fresh_full)),
        ("full listing vs full sync, again (s)", med(raw_full), med(steady_full)),
        (f"changes-since vs delta sync, {4 * quarter} changes (s)", med(raw_delta), med(delta)),
    ):
        print(f"  {label:<44}{theirs:>9.2f}{ours:>10.2f}{ours / theirs:>8.2f}")
    print("  goals: full <= 1.2x the raw listing, delta <= 1.2x the raw changes-since call")
    print()
    print("peak RSS of a full sync in a fresh process (MB): after imports+db, peak, growth")
    for m in memory:
        growth = m["rss_peak"] - m["rss_ready"]
        print(
            f"  {m['label']:<44}{m['servers']:>7} servers  {m['rss_ready']:7.1f}  {m['rss_peak']:7.1f}  {growth:+7.1f}"
        )
    low, high = memory[0], memory[-1]
    if high["servers"] > low["servers"]:
        per_server = (high["rss_peak"] - low["rss_peak"]) / (high["servers"] - low["servers"])
        print(
            f"  growth per server {per_server * 1024:.2f} KB; extrapolated peak at {EXTRAPOLATE_TO:,} servers: "
            f"{low['rss_peak'] + per_server * EXTRAPOLATE_TO:.1f} MB (flat: pages of {PAGE} are kept, not the cloud)"
        )
    print()
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}; {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
