"""List-page latency under load: open-loop requests at a fixed rate against gunicorn.

Sets up an instance of its own (demo organisation, N requests in the database), serves it
with `cloudmgr serve` (gunicorn), logs in, then fires requests at a fixed rate (default
250/s) at the operators' request list page and the API's request list, for a fixed time.
Latency is measured from each request's scheduled start, so a slow server cannot hide
its queueing (no coordinated omission).  Prints count, errors, p50/p95/p99 per target.

Meanwhile a writer submits a new request through the API every ``--write-interval``
seconds (default 1 s), so the lists' first pages keep changing under the load and the
cached pages (web/common/listcache.py) are rebuilt as they would be in real use.

    .venv/bin/python benchmarks/list_latency.py [--rate 250] [--seconds 30] [--requests 2000]
        [--database-url postgresql+psycopg://postgres@127.0.0.1/postgres] [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


@dataclass
class Target:
    name: str
    path: str
    headers: dict[str, str]
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def seed(env: dict[str, str], n_requests: int) -> str:
    """Migrate, load the demo and n requests; return an operator API token."""
    cli = [sys.executable, "-m", "cloudmgr.cli"]
    for args in (["db", "upgrade"], ["seed-demo"], ["clouds", "sync"], ["quotas", "apply"]):
        subprocess.run([*cli, *args], env=env, cwd=REPO, check=True, capture_output=True)
    code = f"""
import datetime
from cloudmgr.config import load_settings
from cloudmgr.runtime import Runtime, set_runtime
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation import services as org
from cloudmgr.servicerequests.services import RequestForm, create_request
from cloudmgr.catalog.models import CatalogItem
from cloudmgr.organisation.models import Cloud
from cloudmgr.quotas.models import QuotaLedgerRow
from sqlalchemy import select, update
rt = Runtime.from_settings(load_settings()); set_runtime(rt)
with rt.db.unit_of_work() as uow:
    s = uow.session
    s.execute(update(QuotaLedgerRow).values(limit=10**9))
    staff = Actor.of(org.get_user_by_name(s, "zhangwei"))
    cloud = s.scalar(select(Cloud).where(Cloud.key == "education"))
    rows = s.scalars(select(CatalogItem).where(CatalogItem.cloud_id == cloud.id))
    items = {{(i.kind, i.cloud_name): i.id for i in rows}}
    image = next(v for (k, _), v in items.items() if k == "image")
for i in range({n_requests}):
    with rt.db.unit_of_work() as uow:
        form = RequestForm("education", "extranet", items[("flavor", "m1.small")], image, 1, f"bench{{i}}",
                           "load test", datetime.date.today() + datetime.timedelta(days=90))
        create_request(uow.session, staff, form, submit=i % 2 == 0, settings=rt.settings)
"""
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True)
    token = subprocess.run(
        [*cli, "users", "token", "operator", "--name", "bench"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    staff_token = subprocess.run(
        [*cli, "users", "token", "zhangwei", "--name", "bench-writer"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return token.stdout.strip(), staff_token.stdout.strip()


def api_call(port: int, token: str, method: str, path: str, body: object = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    payload = json.loads(response.read() or b"null")
    conn.close()
    return response.status, payload


def run_writer(port: int, token: str, interval: float, stop: threading.Event) -> list[int]:
    """Submit a one-VM request every ``interval`` seconds until ``stop``; returns the statuses."""
    _, catalog = api_call(port, token, "GET", "/api/v1/catalog?cloud=education")
    flavor = next(i["id"] for i in catalog["items"] if i["cloud_name"] == "m1.small")
    image = next(i["id"] for i in catalog["items"] if i["kind"] == "image")
    statuses: list[int] = []
    n = 0
    while not stop.wait(interval):
        n += 1
        body = {
            "cloud": "education",
            "zone": "extranet",
            "flavor": flavor,
            "image": image,
            "count": 1,
            "name_prefix": f"w{n}",
            "justification": "written during the load test",
            "expires_on": (datetime.date.today() + datetime.timedelta(days=90)).isoformat(),
            "submit": True,
        }
        statuses.append(api_call(port, token, "POST", "/api/v1/requests", body)[0])
    return statuses


def wait_until_serving(port: int, seconds: float = 120.0) -> None:
    """Until /healthz answers: gunicorn binds its port before its workers have loaded the app."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            sys.exit("the server did not start")
        time.sleep(0.5)


def wait_for_idle_queue(database_url: str, seconds: float = 300.0) -> int:
    """Until the scheduler has worked off the seeded requests' notifications: measured with a
    backlog, the load would share the cores with a one-off catch-up no real day starts with.
    Returns how many work items were queued when the wait began."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    deadline = time.monotonic() + seconds
    first: int | None = None
    try:
        while True:
            with engine.connect() as conn:
                queued = int(conn.execute(text("SELECT count(*) FROM work_items WHERE state = 'queued'")).scalar_one())
            first = queued if first is None else first
            if queued == 0 or time.monotonic() > deadline:
                return first
            time.sleep(1.0)
    finally:
        engine.dispose()


def cpu_seconds_by_role(server_pgids: set[int], database_name: str) -> dict[str, float]:
    """CPU seconds used so far by the web workers, the scheduler (processes of the process
    groups ``server_pgids``), PostgreSQL's backends for the bench database and this process
    (the load generator), read from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {"web": 0.0, "scheduler": 0.0, "postgres": 0.0, "load generator": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat_file:
                stat = stat_file.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as cmd_file:
                cmdline = cmd_file.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        seconds = (int(stat[11]) + int(stat[12])) / ticks  # utime + stime
        if int(pid) == os.getpid():
            used["load generator"] += seconds
        elif database_name and database_name in cmdline and cmdline.startswith("postgres"):
            used["postgres"] += seconds
        elif int(stat[2]) in server_pgids:  # field 5: process group
            used["scheduler" if "scheduler" in cmdline else "web"] += seconds
    return used


def print_cpu(before: dict[str, float], after: dict[str, float], wall: float, served: int) -> None:
    print(f"CPU during the load ({os.cpu_count()} cores), in % of one core and ms per request:")
    for role, seconds in after.items():
        used = seconds - before[role]
        print(f"  {role:<16}{used / wall * 100:7.1f} %{used / max(served, 1) * 1000:8.2f} ms")


def login_cookie(port: int, username: str, password: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/login")
    response = conn.getresponse()
    body = response.read().decode()
    cookie = response.getheader("Set-Cookie", "").split(";")[0]
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', body) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', body
    )
    assert csrf, "no CSRF token on the login page"
    form = urllib.parse.urlencode({"csrf_token": csrf.group(1), "username": username, "password": password})
    conn.request(
        "POST", "/login", body=form, headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    )
    response = conn.getresponse()
    response.read()
    session = response.getheader("Set-Cookie", "").split(";")[0]
    assert response.status in (302, 303), f"login failed: {response.status}"
    # As a browser does: the first page after login gives the session its CSRF secret (a new
    # cookie); a load that kept sending the login's cookie would never be a real user's.
    conn.request("GET", response.getheader("Location", "/"), headers={"Cookie": session})
    landing = conn.getresponse()
    landing.read()
    return (landing.getheader("Set-Cookie") or session).split(";")[0]


def run_load(port: int, targets: list[Target], rate: float, seconds: float, threads: int) -> None:
    interval = 1.0 / rate
    start = time.perf_counter() + 0.5
    total = int(rate * seconds)
    counter = iter(range(total))
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            target = targets[i % len(targets)]
            scheduled = start + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                conn.request("GET", target.path, headers=target.headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            latency = time.perf_counter() - scheduled
            with lock:
                if ok:
                    target.latencies.append(latency)
                else:
                    target.errors += 1

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1] if len(values) > 1 else float("nan")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=250.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--requests", type=int, default=2000, help="requests stored in the database")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server-threads", type=int, default=2, help="gunicorn threads per worker")
    parser.add_argument("--threads", type=int, default=64, help="load generator threads")
    parser.add_argument("--ops-path", default="/ops/requests")
    parser.add_argument("--api-path", default="/api/v1/requests?per_page=25")
    parser.add_argument("--write-interval", type=float, default=1.0, help="seconds between writes (0: none)")
    args = parser.parse_args()
    # Stopped with SIGTERM (a timeout, kill): still stop the server and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))

    instance = Path(tempfile.mkdtemp(prefix="cloudmgr-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDMGR_")}
    env.update(CLOUDMGR_INSTANCE_PATH=str(instance), CLOUDMGR_LOG_LEVEL="WARNING")
    database = args.database_url
    if database.startswith("postgresql"):
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        name = bench_db_name = f"cloudmgr_bench_{secrets.token_hex(4)}"
        admin = create_engine(database, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        database = make_url(database).set(database=name).render_as_string(hide_password=False)
    if database:
        env["CLOUDMGR_DATABASE_URL"] = database
    print(
        f"seeding {args.requests} requests ({'PostgreSQL' if database.startswith('postgresql') else 'SQLite'})…",
        flush=True,
    )
    token, staff_token = seed(env, args.requests)
    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "cloudmgr.cli", "serve", "--port", str(port)),
            *("--workers", str(args.workers), "--threads", str(args.server_threads)),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_serving(port)
        backlog = wait_for_idle_queue(database or f"sqlite:///{instance / 'cloudmgr.sqlite3'}")
        print(f"scheduler backlog worked off before the load: {backlog} queued item(s)", flush=True)
        cookie = login_cookie(port, "operator", "demo-operator-2026")
        targets = [
            Target("ops request list page", args.ops_path, {"Cookie": cookie}),
            Target("API request list", args.api_path, {"Authorization": f"Bearer {token}"}),
        ]
        run_load(port, targets, rate=2.0 * 25, seconds=2, threads=8)  # warm-up
        for target in targets:
            target.latencies.clear()
            target.errors = 0
        print(f"load: {args.rate:.0f} req/s for {args.seconds:.0f} s, gunicorn {args.workers} workers", flush=True)
        stop = threading.Event()
        writes: list[int] = []
        writer = threading.Thread(
            target=lambda: writes.extend(run_writer(port, staff_token, args.write_interval, stop)), daemon=True
        )
        if args.write_interval > 0:
            writer.start()
        bench_db = database.rsplit("/", 1)[-1] if database.startswith("postgresql") else ""
        cpu_before, wall_before = cpu_seconds_by_role({server.pid}, bench_db), time.monotonic()
        run_load(port, targets, rate=args.rate, seconds=args.seconds, threads=args.threads)
        cpu_after, wall = cpu_seconds_by_role({server.pid}, bench_db), time.monotonic() - wall_before
        stop.set()
        if args.write_interval > 0:
            writer.join(30)
            print(f"writes during the load: {len(writes)} ({sum(1 for s in writes if s == 201)} created)")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        if database.startswith("postgresql"):  # the bench's own database: gone with the bench
            from sqlalchemy import create_engine, text

            admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{bench_db_name}" WITH (FORCE)'))
            admin.dispose()
    print(f"{'target':<24}{'ok':>8}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for t in targets:
        values = sorted(t.latencies)
        print(
            f"{t.name:<24}{len(values):>8}{t.errors:>8}{percentile(values, 50) * 1000:>9.1f}"
            f"{percentile(values, 95) * 1000:>9.1f}{percentile(values, 99) * 1000:>9.1f}"
        )
    print_cpu(cpu_before, cpu_after, wall, sum(len(t.latencies) + t.errors for t in targets))
    all_values = sorted(v for t in targets for v in t.latencies)
    p95 = percentile(all_values, 95) * 1000
    verdict = "met" if p95 < 100 and args.rate >= 250 else "NOT met" if args.rate >= 250 else "n/a below 250 req/s"
    print(f"overall p95 {p95:.1f} ms at {args.rate:.0f} req/s (goal: p95 < 100 ms at 250 req/s): {verdict}")


if __name__ == "__main__":
    main()
