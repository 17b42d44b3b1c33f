"""CPU per request of the production load's six endpoints, in one process, on PostgreSQL.

The production load (benchmarks/production_load.py) is bound by the server's CPU on two
cores; this measures that CPU endpoint by endpoint, without the load generator or gunicorn
sharing the cores: the same seeded database (demo organisation, N requests), the app made by
``create_app`` as gunicorn makes it, each endpoint asked ``--repeat`` times through the WSGI
test client after a warm-up.  Prints, per endpoint, the median wall time and the CPU
seconds (this process's user+system time) per request, and the database time the queries
took; ``--profile NAME`` writes a pyinstrument profile of that endpoint to stdout instead,
``--cpu-profile NAME`` the functions that take its CPU (cProfile timed by process time).

    .venv/bin/python benchmarks/request_cpu.py [--requests 2000] [--repeat 200]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--profile "API quotas"]
        [--cpu-profile "API quotas"]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from production_load import DEFAULT_DATABASE, create_database, drop_database, seed

ENDPOINTS = [
    ("ops request list page", "/ops/requests", "operator"),
    ("portal request list page", "/portal/requests", "zhangwei"),
    ("API request list", "/api/v1/requests?per_page=25", "api"),
    ("API request list p.5", "/api/v1/requests?per_page=25&page=5", "api"),
    ("API catalog", "/api/v1/catalog?cloud=education", "api"),
    ("API quotas", "/api/v1/quotas", "api"),
]
DEMO_USERS = ("operator", "zhangwei")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--profile", help="an endpoint's name: print its pyinstrument profile")
    parser.add_argument(
        "--cpu-profile", help="an endpoint's name: print the functions taking its CPU (cProfile on process time)"
    )
    args = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="cloudmgr-cpu-"))
    db_name, database = create_database(args.database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDMGR_")}
    env.update(
        CLOUDMGR_INSTANCE_PATH=str(instance),
        CLOUDMGR_DATABASE_URL=database,
        CLOUDMGR_LOG_LEVEL="WARNING",
        CLOUDMGR_SCHEDULER_ENABLED="false",
    )
    try:
        print(f"seeding {args.requests} requests on PostgreSQL ({db_name})…", flush=True)
        token = seed(env, args.requests)
        for key in [k for k in os.environ if k.startswith("CLOUDMGR_")]:
            del os.environ[key]
        os.environ.update({k: v for k, v in env.items() if k.startswith("CLOUDMGR_")})
        from web import create_app

        app = create_app()
        clients = {"api": app.test_client()}
        from cloudmgr.demo import DEMO_LOGINS

        passwords = {login.username: login.password for login in DEMO_LOGINS}
        for user in DEMO_USERS:
            password = passwords[user]
            client = app.test_client()
            page = client.get("/login").get_data(as_text=True)
            csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
                r'value="([^"]+)"[^>]*name="csrf_token"', page
            )
            if csrf is None:
                sys.exit("no CSRF token on the login page")
            form = {"csrf_token": csrf.group(1), "username": user, "password": password}
            login = client.post("/login", data=form)
            if login.status_code not in (302, 303):
                sys.exit(f"login as {user} failed: {login.status_code}")
            clients[user] = client
        headers = {"api": {"Authorization": f"Bearer {token}"}}
        if args.cpu_profile:
            import cProfile
            import pstats

            name, path, who = next(e for e in ENDPOINTS if e[0] == args.cpu_profile)
            for _ in range(20):
                clients[who].get(path, headers=headers.get(who, {}))
            # process time, not wall: what the request costs the server's cores, without the waits
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for _ in range(args.repeat):
                clients[who].get(path, headers=headers.get(who, {}))
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(35)
            stats.sort_stats("cumulative").print_stats(45)
            return
        if args.profile:
            from pyinstrument import Profiler

            name, path, who = next(e for e in ENDPOINTS if e[0] == args.profile)
            for _ in range(20):
                clients[who].get(path, headers=headers.get(who, {}))
            with Profiler(interval=0.0005) as profiler:
                for _ in range(args.repeat):
                    clients[who].get(path, headers=headers.get(who, {}))
            print(profiler.output_text(unicode=True, color=False, show_all=False))
            return
        print(f"{'endpoint':28} {'wall ms p50':>11} {'CPU ms/req':>10}")
        for name, path, who in ENDPOINTS:
            client, extra = clients[who], headers.get(who, {})
            for _ in range(20):
                response = client.get(path, headers=extra)
                if response.status_code != 200:
                    sys.exit(f"{name}: {path} answered {response.status_code}")
            walls = []
            cpu0 = _cpu()
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                client.get(path, headers=extra)
                walls.append(time.perf_counter() - t0)
            cpu = (_cpu() - cpu0) / args.repeat
            print(f"{name:28} {1000 * statistics.median(walls):11.2f} {1000 * cpu:10.2f}", flush=True)
    finally:
        drop_database(args.database_url, db_name)


if __name__ == "__main__":
    main()
