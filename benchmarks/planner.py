"""Benchmark of the consolidation planner against first-fit-decreasing and OpenStack Watcher.

    .venv/bin/python benchmarks/planner.py            # full: 2k (exact), 10k, 100k, 2M; Watcher at 8k
    .venv/bin/python benchmarks/planner.py --quick    # 2k, 10k, 100k; Watcher at 2k
    .venv/bin/python benchmarks/planner.py --quick --perfect --no-watcher --sizes 2000 --cli-sizes 2000000

Every measurement runs in its own worker process pinned to one CPU (single-threaded
numba, numpy and OR-Tools), so "peak RSS" is that process's high-water mark (imports and
the generated input included). Times are medians of several runs after a warm-up (the
numba kernels are compiled, or loaded from their on-disk cache, before timing).

The input is the synthetic mix of :mod:`cloudmgr.capacity.planner.synthetic`: department
servers where RAM and disk both nearly bind (the reference host: 64 cores x CPU ratio 4,
768 GB RAM, 7680 GB disk), one zone, no anti-affinity, so that all three planners get the
same problem.

Watcher (PyPI ``python-watcher``) runs in its own virtualenv (``--setup-watcher`` creates
``.bench-venvs/watcher``) through ``benchmarks/watcher_driver/drive_watcher.py``, offline:
its strategy needs a cloud that has VMs somewhere, so the VMs are first spread over
``--watcher-spread`` x the lower bound hosts the way Nova's default scheduler spreads them
(each VM, in random order, to the host with the most free RAM where it fits); Watcher then
consolidates that cloud. The hosts it leaves in use are compared with the same bound.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WATCHER_VENV = REPO / ".bench-venvs" / "watcher"
WATCHER_DRIVER = REPO / "benchmarks" / "watcher_driver" / "drive_watcher.py"
WATCHER_VERSION = "17.0.0"


def _one_core() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
    except (AttributeError, OSError):
        pass


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- workers (each runs in a fresh process) ----------------------------------------------


def worker(args: argparse.Namespace) -> dict[str, Any]:
    _one_core()
    import numpy as np

    sys.path.insert(0, str(REPO))
    from cloudmgr.capacity.planner.packing import first_fit_decreasing, pack_vectors, pool_bound
    from cloudmgr.capacity.planner.synthetic import REFERENCE_HOST, synthetic_demand

    cap = REFERENCE_HOST.capacity()
    if args.worker == "perfect":
        from cloudmgr.capacity.planner.synthetic import perfect_packing_demand

        demand = perfect_packing_demand(args.n, seed=args.seed)
    else:
        demand = synthetic_demand(args.n, seed=args.seed)
    started = time.perf_counter()
    bound = pool_bound(demand, cap)
    bound_seconds = time.perf_counter() - started
    warm = synthetic_demand(500, seed=99)
    out: dict[str, Any] = {"n": args.n, "bound": bound, "bound_seconds": bound_seconds}

    def check(assign: Any, hosts: int) -> None:
        assert (assign >= 0).all()
        load = np.zeros((hosts, 3), dtype=np.int64)
        np.add.at(load, assign, demand)
        assert (load <= np.asarray(cap)).all(), "capacity exceeded"

    if args.worker in ("ours", "ffd"):
        run = pack_vectors if args.worker == "ours" else first_fit_decreasing
        run(warm, cap)  # compile / load the kernels
        out["rss_before_mb"] = _peak_rss_mb()
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            result = run(demand, cap)
            times.append(time.perf_counter() - t)
        check(result.assign, result.hosts)
        out.update(times=times, hosts=result.hosts)
    elif args.worker == "exact":
        from cloudmgr.capacity.planner.exact import solve_exact

        pack_vectors(warm, cap)
        out["rss_before_mb"] = _peak_rss_mb()
        groups = np.full(args.n, -1, dtype=np.int64)
        times = []
        for _ in range(args.repeats):  # the planner's path: heuristic, then CP-SAT unless the bound is reached
            t = time.perf_counter()
            result = pack_vectors(demand, cap)
            status, best, hosts, assign = "optimal (bound reached)", bound, result.hosts, result.assign
            if result.hosts > bound:
                ans = solve_exact(demand, cap, groups, result.assign, bound, time_limit=args.time_limit, workers=1)
                status, best, hosts, assign = f"{ans.status} (CP-SAT)", ans.best_bound, ans.hosts, ans.assign
            times.append(time.perf_counter() - t)
        check(assign, hosts)
        out.update(times=times, hosts=hosts, status=status, best_bound=best)
        # CP-SAT on its own, started from the FFD packing: what the exact solver does on 2k servers
        ffd = first_fit_decreasing(demand, cap)
        t = time.perf_counter()
        ans = solve_exact(demand, cap, groups, ffd.assign, bound, time_limit=args.time_limit, workers=1)
        check(ans.assign, ans.hosts)
        out["cpsat_from_ffd"] = {
            "seconds": time.perf_counter() - t,
            "start_hosts": ffd.hosts,
            "hosts": ans.hosts,
            "status": ans.status,
            "best_bound": ans.best_bound,
            "gap": (ans.hosts - ans.best_bound) / ans.hosts,
        }
    elif args.worker == "perfect":
        out.update(_perfect(args))
    elif args.worker == "watcher":
        out.update(_watcher(args, demand, cap, bound))
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _perfect(args: argparse.Namespace) -> dict[str, Any]:
    """Hosts cut into pieces (optimum = args.n hosts) and, for the same sizes, the synthetic mix:
    the planner now, the planner as it was (chunked vector scheduling without the one-by-one
    packer and the improvement pass), and FFD."""
    import numpy as np

    from cloudmgr.capacity.planner.packing import first_fit_decreasing, pack_vectors, pool_bound
    from cloudmgr.capacity.planner.synthetic import REFERENCE_HOST, perfect_packing_demand, synthetic_demand

    cap = REFERENCE_HOST.capacity()
    pack_vectors(perfect_packing_demand(50, seed=99), cap)  # compile / load the kernels
    out: dict[str, Any] = {}
    for label, demand in (
        ("perfect", perfect_packing_demand(args.n, seed=args.seed)),
        ("mix", synthetic_demand(args.n * 6, seed=args.seed)),
    ):
        row: dict[str, Any] = {"servers": int(demand.shape[0]), "optimum_or_bound": pool_bound(demand, cap)}
        for name in ("now", "before", "ffd"):
            t = time.perf_counter()
            if name == "now":
                result = pack_vectors(demand, cap)
            elif name == "before":
                result = pack_vectors(demand, cap, bin_centric_limit=0, repack_tries=0, search_rounds=0)
            else:
                result = first_fit_decreasing(demand, cap)
            row[name] = {"hosts": result.hosts, "seconds": time.perf_counter() - t}
            load = np.zeros((result.hosts, 3), dtype=np.int64)
            np.add.at(load, result.assign, demand)
            assert (result.assign >= 0).all() and (load <= np.asarray(cap)).all(), "capacity exceeded"
        out[label] = row
    return out


def _spread(demand: Any, cap: tuple[int, int, int], hosts: int, seed: int) -> Any:
    """Nova-like initial placement: each VM (random order) to the host with the most free RAM that fits."""
    import numpy as np

    c = np.asarray(cap)
    load = np.zeros((hosts, 3), dtype=np.int64)
    place = np.empty(demand.shape[0], dtype=np.int64)
    for i in np.random.default_rng(seed).permutation(demand.shape[0]):
        fits = np.all(load + demand[i] <= c, axis=1)
        if not fits.any():
            raise RuntimeError("spread: not enough hosts")
        h = int(np.argmax(np.where(fits, c[1] - load[:, 1], -1)))
        place[i] = h
        load[h] += demand[i]
    return place


def _watcher(args: argparse.Namespace, demand: Any, cap: tuple[int, int, int], bound: int) -> dict[str, Any]:
    import math

    from cloudmgr.capacity.planner.packing import pack_vectors
    from cloudmgr.capacity.planner.synthetic import REFERENCE_HOST

    hosts = math.ceil(args.watcher_spread * bound)
    place = _spread(demand, cap, hosts, args.seed)
    problem = {
        "host": {
            "vcpus": REFERENCE_HOST.vcpus,
            "vcpu_ratio": REFERENCE_HOST.cpu_ratio,
            "memory_mb": cap[1],
            "disk_gb": cap[2] // 1024,
        },
        "hosts": hosts,
        "vms": [[int(v), int(r), int(d // 1024), int(h)] for (v, r, d), h in zip(demand, place, strict=True)],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(problem, fh)
        path = fh.name
    try:
        with open(path, encoding="utf-8") as stdin:
            proc = subprocess.run(
                [args.watcher_python, "-W", "ignore", str(WATCHER_DRIVER)],
                stdin=stdin,
                capture_output=True,
                text=True,
                check=False,
                timeout=3600,
            )
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        return {"watcher_error": proc.stderr.strip()[-2000:]}
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    pack_vectors(demand[:500], cap)  # warm-up
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        ours = pack_vectors(demand, cap)
        times.append(time.perf_counter() - t)
    return {
        "initial_hosts": hosts,
        "watcher": answer,
        "ours_times": times,
        "ours_hosts": ours.hosts,
    }


# --- the parent: runs the workers, prints the table --------------------------------------


def spawn(kind: str, n: int, repeats: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--n",
        str(n),
        "--repeats",
        str(repeats),
        "--seed",
        str(args.seed),
        "--time-limit",
        str(args.time_limit),
        "--watcher-python",
        args.watcher_python,
        "--watcher-spread",
        str(args.watcher_spread),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {kind} n={n} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def cli_end_to_end(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """``plan consolidate --json`` on a synthetic CSV of n servers (zones, classified, anti-affinity)."""
    sys.path.insert(0, str(REPO))
    from cloudmgr.capacity.planner.synthetic import write_synthetic_csv

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "servers.csv"
        write_synthetic_csv(csv_path, n, seed=args.seed)
        code = (
            "import atexit, os, resource, sys; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]});"
            "atexit.register(lambda: sys.stderr.write("
            "f'peak-rss-kb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n'));"
            "from cloudmgr.capacity.planner.cli import plan_group;"
            "plan_group(sys.argv[1:], standalone_mode=True)"
        )
        cmd = [
            sys.executable,
            "-c",
            code,
            "consolidate",
            "--servers",
            str(csv_path),
            "--host-vcpus",
            "64",
            "--host-ram-gb",
            "768",
            "--host-disk-gb",
            "7680",
            "--cpu-ratio",
            "4",
            "--json",
            "--no-exact",
        ]
        # the command reads the legacy inventory (classified rule) and audits refusals: a fresh database
        database = f"sqlite:///{Path(tmp) / 'cloudmgr.sqlite'}"
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": "1",
            "CLOUDMGR_DATABASE_URL": database,
        }
        from cloudmgr.dbschema import upgrade

        upgrade(database, "head")
        small = Path(tmp) / "small.csv"
        write_synthetic_csv(small, 300, seed=args.seed)
        warm = [*cmd[:5], str(small), *cmd[6:]]
        subprocess.run(warm, env=env, capture_output=True, check=True)  # fills the numba cache
        times, cpu, loads, out, rss = [], [], [], "", 0
        for _ in range(max(1, args.cli_repeats)):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=3600)
            times.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append((after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime))
            loads.append(os.getloadavg()[0])
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-2000:])
            out = proc.stdout
            rss = max([rss] + [int(x.split()[1]) for x in proc.stderr.splitlines() if x.startswith("peak-rss-kb")])
        plan = json.loads(out)
    return {
        "cpu": cpu,
        "loads": loads,
        "times": times,
        "hosts": plan["hosts_used"],
        "bound": plan["lower_bound"],
        "ratio": plan["ratio"],
        "peak_rss_mb": rss / 1024.0,
        "json_mb": len(out) / 1e6,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2k, 10k, 100k and Watcher at 2k only")
    p.add_argument("--sizes", help="comma-separated n (overrides the defaults)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per size (3 at 2M)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--time-limit", type=float, default=60.0, help="CP-SAT seconds at 2k")
    p.add_argument("--no-watcher", action="store_true")
    p.add_argument("--watcher-n", type=int, default=None, help="VMs for Watcher (8000; 2000 with --quick)")
    p.add_argument("--watcher-python", default=str(WATCHER_VENV / "bin" / "python"))
    p.add_argument("--watcher-spread", type=float, default=1.5, help="initial hosts = spread x lower bound")
    p.add_argument(
        "--setup-watcher", action="store_true", help=f"create .bench-venvs/watcher (python-watcher {WATCHER_VERSION})"
    )
    p.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI runs")
    p.add_argument("--cli-repeats", type=int, default=3)
    p.add_argument("--cli-sizes", help="comma-separated n for the end-to-end CLI runs (100k; 100k,2M when full)")
    p.add_argument("--perfect", action="store_true", help="the perfect-packing section (always in the full run)")
    p.add_argument("--perfect-hosts", default="100,1000,3000", help="hosts cut into pieces, comma-separated")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.setup_watcher:
        uv = REPO / ".venv" / "bin" / "uv"
        subprocess.run([str(uv), "venv", "--python", sys.executable, str(WATCHER_VENV)], check=True)
        subprocess.run(
            [
                str(uv),
                "pip",
                "install",
                "--python",
                str(WATCHER_VENV / "bin" / "python"),
                f"python-watcher=={WATCHER_VERSION}",
            ],
            check=True,
        )

    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([2_000, 10_000, 100_000] if args.quick else [2_000, 10_000, 100_000, 2_000_000])
    )
    watcher_n = args.watcher_n or (2_000 if args.quick else 8_000)
    repeats = 3 if args.quick else args.repeats

    print(
        f"# consolidation planner benchmark  ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, Python {platform.python_version()})"
    )
    print("# one core per worker; times are medians; ratio = hosts / lower bound (max over resources of L1, L2)")
    print()
    header = (
        f"{'n':>10} | {'ours s':>8} | {'peak RSS MB':>11} | {'hosts':>7} | {'bound':>7} | {'ratio':>7} "
        f"| {'FFD s':>8} | {'FFD hosts':>9} | {'FFD ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    exact_rows = []
    for n in sizes:
        r = repeats if n < 1_000_000 else min(repeats, 3)
        ours = spawn("exact" if n <= 2_000 else "ours", n, r, args)
        ffd = spawn("ffd", n, 1 if n >= 1_000_000 else r, args)
        t = statistics.median(ours["times"])
        tf = statistics.median(ffd["times"])
        print(
            f"{n:>10,} | {t:>8.3f} | {ours['peak_rss_mb']:>11.0f} | {ours['hosts']:>7,} | {ours['bound']:>7,} "
            f"| {ours['hosts'] / ours['bound']:>7.4f} | {tf:>8.3f} | {ffd['hosts']:>9,} "
            f"| {ffd['hosts'] / ffd['bound']:>9.4f}",
            flush=True,
        )
        if "status" in ours:
            exact_rows.append(ours)
    for row in exact_rows:
        c = row["cpsat_from_ffd"]
        print()
        print(
            f"exact at n={row['n']:,}: planner path (heuristic, CP-SAT when above the bound): {row['status']}, "
            f"{row['hosts']} hosts, best bound {row['best_bound']}"
        )
        print(
            f"  CP-SAT alone from the FFD packing ({c['start_hosts']} hosts), {args.time_limit:g} s limit, 1 worker: "
            f"{c['status']}, {c['hosts']} hosts, best bound {c['best_bound']}, gap {c['gap']:.2%}, "
            f"{c['seconds']:.1f} s"
        )

    if args.perfect or not args.quick:
        print()
        print("# perfect packing: hosts cut into 3-10 pieces each resource at random, shuffled (optimum = hosts);")
        print("# 'before' = the chunked packer alone (no one-by-one packer, no improvement pass); mix = 6 x hosts")
        print("# servers of the synthetic mix, ratio to its lower bound")
        head = (
            f"{'instance':>9} | {'hosts':>6} | {'servers':>8} | {'now':>7} | {'now s':>7} | {'before':>7} "
            f"| {'before s':>8} | {'FFD':>7}"
        )
        print(head)
        print("-" * len(head))
        for hosts in [int(x) for x in args.perfect_hosts.split(",")]:
            p_ = spawn("perfect", hosts, 1, args)
            for label in ("perfect", "mix"):
                row = p_[label]
                opt = row["optimum_or_bound"]
                print(
                    f"{label:>9} | {hosts:>6,} | {row['servers']:>8,} | {row['now']['hosts'] / opt:>7.4f} "
                    f"| {row['now']['seconds']:>7.3f} | {row['before']['hosts'] / opt:>7.4f} "
                    f"| {row['before']['seconds']:>8.3f} | {row['ffd']['hosts'] / opt:>7.4f}",
                    flush=True,
                )

    if not args.no_cli:
        print()
        print(
            "# end to end: `cloudmgr plan consolidate --json --no-exact` in a fresh process pinned to one core:"
            " start-up and imports, CSV parse, the classified rule (SQLite), plan, JSON to a pipe;"
            " CPU = user + sys of that process"
        )
        cli_sizes = [int(x) for x in args.cli_sizes.split(",")] if args.cli_sizes else None
        for n in cli_sizes or ([100_000] if args.quick else [100_000, 2_000_000]):
            e = cli_end_to_end(n, args)
            runs = ", ".join(
                f"{w:.2f} s wall / {u + s_:.2f} s CPU ({u:.2f} user + {s_:.2f} sys, load {ld:.1f})"
                for w, (u, s_), ld in zip(e["times"], e["cpu"], e["loads"], strict=True)
            )
            print(
                f"n={n:,} (CSV with zones, classified, anti-affinity): {runs}; "
                f"median CPU {statistics.median(u + s_ for u, s_ in e['cpu']):.2f} s, "
                f"peak RSS {e['peak_rss_mb']:.0f} MB, "
                f"{e['hosts']:,} hosts / bound {e['bound']:,} = {e['ratio']:.4f}, JSON {e['json_mb']:.0f} MB",
                flush=True,
            )

    if not args.no_watcher:
        print()
        if not Path(args.watcher_python).exists():
            print(f"Watcher: skipped, no {args.watcher_python} (run with --setup-watcher)")
            return
        w = spawn("watcher", watcher_n, repeats, args)
        if "watcher_error" in w:
            print(f"Watcher failed:\n{w['watcher_error']}")
            return
        ans = w["watcher"]
        ours_t = statistics.median(w["ours_times"])
        print(
            f"OpenStack Watcher {ans['watcher_version']} vm_workload_consolidation, {watcher_n:,} VMs "
            f"(spread over {w['initial_hosts']} hosts first), one run:"
        )
        print(
            f"  Watcher: {ans['seconds']:.1f} s, {ans['hosts_used']} hosts in use / bound {w['bound']} = "
            f"{ans['hosts_used'] / w['bound']:.4f}, {ans['migrations']} migrations, capacities "
            f"{'hold' if ans['capacity_ok'] else 'EXCEEDED'}"
        )
        print(
            f"  ours:    {ours_t:.4f} s (median of {len(w['ours_times'])}), {w['ours_hosts']} hosts / bound "
            f"{w['bound']} = {w['ours_hosts'] / w['bound']:.4f}"
        )
        print(f"  speed-up: {ans['seconds'] / ours_t:,.0f}x")


if __name__ == "__main__":
    main()
