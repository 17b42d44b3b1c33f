"""Production load: list pages and API at a fixed rate against gunicorn on PostgreSQL.

Deploys cloudmgr as deploy/systemd does (gunicorn with deploy/gunicorn.conf.py, plus
`cloudmgr scheduler run` beside it unless --no-scheduler) on a database of its own created
on the PostgreSQL server given (dropped afterwards), with the demo organisation and N
requests.  Then an open-loop load generator on loopback fires requests at a fixed total
rate (default 250/s) for a fixed time (default 600 s), spread round-robin over the
operators' and the departments' list pages and the API's lists.  Latency is measured
from each request's scheduled start (no coordinated omission).  Prints, per endpoint,
the count, the errors (non-200 or connection failures) and p50/p95/p99.

    .venv/bin/python benchmarks/production_load.py [--rate 250] [--seconds 600]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--workers 2] [--threads 2] [--requests 2000] [--no-scheduler]

Not a test: it asserts nothing.  On the 2-core development machine the load generator
and the server share the cores, which costs the server about a third of its throughput.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from list_latency import (
    Target,
    cpu_seconds_by_role,
    login_cookie,
    percentile,
    print_cpu,
    run_load,
    wait_for_idle_queue,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = os.environ.get(
    "CLOUDMGR_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


SEED = """
import datetime
import cloudmgr.models  # every mapper
from sqlalchemy import select, update
from cloudmgr.catalog.models import CatalogItem
from cloudmgr.config import load_settings
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.quotas.models import QuotaLedgerRow
from cloudmgr.runtime import Runtime, set_runtime
from cloudmgr.servicerequests.services import RequestForm, create_request
rt = Runtime.from_settings(load_settings()); set_runtime(rt)
with rt.db.unit_of_work() as uow:
    s = uow.session
    s.execute(update(QuotaLedgerRow).values(limit=10**9))
    staff = Actor.of(org.get_user_by_name(s, "zhangwei"))
    cloud = s.scalar(select(Cloud).where(Cloud.key == "education"))
    rows = s.scalars(select(CatalogItem).where(CatalogItem.cloud_id == cloud.id))
    items = {(i.kind, i.cloud_name): i.id for i in rows}
    image = next(v for (k, _), v in items.items() if k == "image")
for i in range(N):
    with rt.db.unit_of_work() as uow:
        form = RequestForm("education", "extranet", items[("flavor", "m1.small")], image, 1, f"load{i}",
                           "load test", datetime.date.today() + datetime.timedelta(days=90))
        create_request(uow.session, staff, form, submit=i % 2 == 0, settings=rt.settings)
"""


def seed(env: dict[str, str], n_requests: int) -> str:
    """Migrate, load the demo organisation and ``n_requests`` requests; an operator's API token."""
    cli = [sys.executable, "-m", "cloudmgr.cli"]
    for args in (["db", "upgrade"], ["seed-demo"], ["clouds", "sync"], ["quotas", "apply"]):
        subprocess.run([*cli, *args], env=env, cwd=REPO, check=True, capture_output=True)
    subprocess.run(
        [sys.executable, "-c", SEED.replace("range(N)", f"range({n_requests})")], env=env, cwd=REPO, check=True
    )
    token = subprocess.run(
        [*cli, "users", "token", "operator", "--name", "load"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return token.stdout.strip()


def create_database(server_url: str) -> tuple[str, str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"cloudmgr_load_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """Until /healthz answers (gunicorn listens before its workers have loaded the app)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit("gunicorn did not start")
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=250.0, help="requests per second, all endpoints together")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE, help="a PostgreSQL server (a database is made)")
    parser.add_argument("--requests", type=int, default=2000, help="requests stored in the database")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (deploy/gunicorn.conf.py's default)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker (the same)")
    parser.add_argument("--clients", type=int, default=64, help="load generator threads")
    parser.add_argument("--no-scheduler", action="store_true", help="do not run `cloudmgr scheduler run` beside")
    args = parser.parse_args()
    # Stopped with SIGTERM (a timeout, kill): still stop the server and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
    if not args.database_url.startswith("postgresql"):
        sys.exit("--database-url must name a PostgreSQL server")

    instance = Path(tempfile.mkdtemp(prefix="cloudmgr-load-"))
    db_name, database = create_database(args.database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDMGR_")}
    env.update(
        CLOUDMGR_INSTANCE_PATH=str(instance),
        CLOUDMGR_DATABASE_URL=database,
        CLOUDMGR_LOG_LEVEL="WARNING",
        CLOUDMGR_SCHEDULER_ENABLED="false",
        GUNICORN_CMD_ARGS="--access-logfile /dev/null",
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        print(f"seeding {args.requests} requests on PostgreSQL ({db_name})…", flush=True)
        token = seed(env, args.requests)
        port = int(os.environ.get("CLOUDMGR_BENCH_PORT", "0")) or _free_port()
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                str(REPO / "deploy" / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--threads",
                str(args.threads),
                "web:create_app()",
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        processes.append(web)
        if not args.no_scheduler:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "cloudmgr.cli", "scheduler", "run"],
                    env=env,
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        wait_port(port, web)
        if not args.no_scheduler:
            backlog = wait_for_idle_queue(database)
            print(f"scheduler backlog worked off before the load: {backlog} queued item(s)", flush=True)
        operator = login_cookie(port, "operator", "demo-operator-2026")
        staff = login_cookie(port, "zhangwei", "demo-staff-2026")
        api = {"Authorization": f"Bearer {token}"}
        targets = [
            Target("ops request list page", "/ops/requests", {"Cookie": operator}),
            Target("portal request list page", "/portal/requests", {"Cookie": staff}),
            Target("API request list", "/api/v1/requests?per_page=25", api),
            Target("API request list p.5", "/api/v1/requests?per_page=25&page=5", api),
            Target("API catalog", "/api/v1/catalog?cloud=education", api),
            Target("API quotas", "/api/v1/quotas", api),
        ]
        run_load(port, targets, rate=60, seconds=3, threads=8)  # warm-up
        for target in targets:
            target.latencies.clear()
            target.errors = 0
        print(
            f"load: {args.rate:.0f} req/s for {args.seconds:.0f} s over {len(targets)} endpoints; gunicorn "
            f"{args.workers} workers x {args.threads} threads; scheduler {'off' if args.no_scheduler else 'on'}",
            flush=True,
        )
        groups = {p.pid for p in processes}  # each started in a session (process group) of its own
        cpu_before = cpu_seconds_by_role(groups, db_name)
        started = time.perf_counter()
        run_load(port, targets, rate=args.rate, seconds=args.seconds, threads=args.clients)
        elapsed = time.perf_counter() - started
        cpu_after = cpu_seconds_by_role(groups, db_name)
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)
        drop_database(args.database_url, db_name)
    print(f"{'endpoint':<28}{'ok':>8}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for t in targets:
        values = sorted(t.latencies)
        print(
            f"{t.name:<28}{len(values):>8}{t.errors:>8}{percentile(values, 50) * 1000:>9.1f}"
            f"{percentile(values, 95) * 1000:>9.1f}{percentile(values, 99) * 1000:>9.1f}"
        )
    everything = sorted(v for t in targets for v in t.latencies)
    errors = sum(t.errors for t in targets)
    print(
        f"{'all':<28}{len(everything):>8}{errors:>8}{percentile(everything, 50) * 1000:>9.1f}"
        f"{percentile(everything, 95) * 1000:>9.1f}{percentile(everything, 99) * 1000:>9.1f}"
    )
    print(f"achieved {(len(everything) + errors) / elapsed:.0f} req/s over {elapsed:.0f} s (target {args.rate:.0f})")
    print_cpu(cpu_before, cpu_after, elapsed, len(everything) + errors)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
