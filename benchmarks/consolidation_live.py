"""Consolidation planned on a cloud's live placement: cloudmgr's planner against OpenStack
Watcher's ``vm_workload_consolidation`` strategy, on the same state, in the same run.

    .venv/bin/python benchmarks/planner.py --setup-watcher --no-watcher --sizes 1 --cli-sizes 0   # once: Watcher's venv
    .venv/bin/python benchmarks/consolidation_live.py --cloud cloudmgr-lab-scale [--repeats 5]

The state is read once through cloudmgr's adapter (``capacity_snapshot``: every resource
provider's inventories and allocations; the hypervisors; every server), at the granularity
Placement has it: one planning host per compute node (hypervisor), its bookable capacity
(total - reserved) x allocation ratio, and every consumer holding an allocation on it with
the amounts it holds. A consumer that is not a movable server (ERROR, a task under way, a
migration's allocation) is fixed load, as in ``cloudmgr.capacity.consolidation``.

cloudmgr plans with ``plan_migration`` (the drain planner a consolidation run uses: each
move goes straight to its final host, kept hosts never lose a VM). Watcher runs offline in
its own virtualenv (``benchmarks/watcher_driver/drive_watcher.py``, as ``planner.py`` drives
it) on the same nodes and the same VMs where they are now; its datasource has no
measurements, so it packs by the flavour sizes, the same demands. Printed: hypervisors in
use before and after, hosts freed, migrations, planning time (median of ``--repeats``),
and the ratios; plus the machine's load before and after.

Only the planning is compared here. On the lab's scale cloud all 200 hypervisors are nodes
of one nova-compute (one process serving 200 would otherwise be 200 processes, ~33 GB), and
Nova's API moves a server to a *host*, never to a chosen node of a host, so a wave of this
node-level plan cannot be executed there; a wave is executed on the province cloud (one node
per host) by tests/capacity/test_consolidation.py::test_consolidation_on_the_lab.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
WATCHER_PYTHON = REPO / ".bench-venvs" / "watcher" / "bin" / "python"
WATCHER_DRIVER = REPO / "benchmarks" / "watcher_driver" / "drive_watcher.py"


def read_state(cloud: str, clouds_yaml: Path) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """(hosts, vms, facts): the planner's input per hypervisor, read through cloudmgr."""
    from cloudmgr.capacity.consolidation import RESOURCE_CLASSES, bookable, migration_kind
    from cloudmgr.capacity.planner.migration import HostState, VmState
    from cloudmgr.cloud.openstack import OpenStackProvider

    provider = OpenStackProvider(cloud=cloud, config_files=[clouds_yaml])
    t0 = time.perf_counter()
    snapshot = provider.capacity_snapshot()
    hypervisors = {h.name: h for h in provider.list_hypervisors()}
    servers = {s.id: s for s in provider.iter_servers(page_size=1000)}
    read_seconds = time.perf_counter() - t0
    hosts, vms = [], []
    held_on = Counter(a.consumer_id for rp in snapshot.providers for a in snapshot.allocations_of(rp.id))
    fixed = Counter()
    for rp in snapshot.providers:
        hypervisor = hypervisors.get(rp.name)
        if hypervisor is None:
            continue  # not a compute node
        enabled = hypervisor.status == "enabled" and hypervisor.state == "up"
        hosts.append(HostState(rp.name, *(bookable(rp, rc) for rc in RESOURCE_CLASSES), enabled=enabled))
        for allocation in snapshot.allocations_of(rp.id):
            demand = [max(0, int(allocation.resources.get(rc, 0))) for rc in RESOURCE_CLASSES]
            server = servers.get(allocation.consumer_id)
            movable = (
                server is not None
                and held_on[allocation.consumer_id] == 1
                and server.host == hypervisor.host
                and migration_kind(server) is not None
            )
            if not movable:
                fixed[server.status if server is not None else "not a server"] += 1
            vms.append(VmState(allocation.consumer_id, rp.name, *demand, movable=movable))
    facts = {
        "read_seconds": read_seconds,
        "providers": len(snapshot.providers),
        "hypervisors": len(hosts),
        "servers": len(servers),
        "consumers": len(vms),
        "fixed": dict(fixed),
    }
    return hosts, vms, facts


def plan_cloudmgr(hosts: list[Any], vms: list[Any], repeats: int) -> dict[str, Any]:
    from cloudmgr.capacity.planner.migration import plan_migration

    plan_migration(hosts[:4], [v for v in vms if v.host in {h.name for h in hosts[:4]}])  # warm-up (numba)
    times, plan = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        plan = plan_migration(hosts, vms, max_wave=50)
        times.append(time.perf_counter() - t)
    assert plan is not None
    used_before = len({v.host for v in vms})
    return {
        "seconds": statistics.median(times),
        "times": times,
        "hosts_freed": len(plan.emptied),
        "hosts_used": used_before - len(plan.emptied),
        "migrations": len(plan.moves),
        "waves": len(plan.waves),
        "method": plan.method,
    }


def plan_watcher(hosts: list[Any], vms: list[Any], python: Path) -> dict[str, Any]:
    """Watcher's strategy on the same nodes and VMs (its driver takes one host size)."""
    sizes = {(h.vcpus, h.ram_mb, h.disk_gb) for h in hosts}
    if len(sizes) != 1:
        raise SystemExit(f"Watcher's driver takes hosts of one size; this cloud has {sorted(sizes)}")
    vcpus, ram_mb, disk_gb = sizes.pop()
    index = {h.name: i for i, h in enumerate(hosts)}
    problem = {
        "host": {"vcpus": vcpus, "vcpu_ratio": 1.0, "memory_mb": ram_mb, "disk_gb": disk_gb},
        "hosts": len(hosts),
        "vms": [[v.vcpus, v.ram_mb, v.disk_gb, index[v.host], int(v.movable)] for v in vms],
    }
    with tempfile.TemporaryFile("w+") as stdin:
        json.dump(problem, stdin)
        stdin.seek(0)
        proc = subprocess.run(
            [str(python), "-W", "ignore", str(WATCHER_DRIVER)],
            stdin=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
    if proc.returncode != 0:
        raise SystemExit(f"Watcher failed:\n{proc.stderr.strip()[-2000:]}")
    answer: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    answer["hosts_freed"] = len({v.host for v in vms}) - answer["hosts_used"]
    return answer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cloud", default="cloudmgr-lab-scale")
    p.add_argument("--clouds-yaml", type=Path, default=REPO / ".lab" / "clouds.yaml")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--watcher-python", type=Path, default=WATCHER_PYTHON)
    args = p.parse_args()
    if not args.watcher_python.exists():
        raise SystemExit(
            f"no Watcher virtualenv at {args.watcher_python}: create it with "
            "`.venv/bin/python benchmarks/planner.py --setup-watcher --no-watcher --sizes 1 --cli-sizes 0`"
        )
    load_before = os.getloadavg()
    hosts, vms, facts = read_state(args.cloud, args.clouds_yaml)
    ours = plan_cloudmgr(hosts, vms, args.repeats)
    watcher = plan_watcher(hosts, vms, args.watcher_python)
    load_after = os.getloadavg()
    used = len({v.host for v in vms})
    print(
        f"cloud {args.cloud}: {facts['hypervisors']} hypervisors ({used} in use), {facts['servers']} servers, "
        f"{facts['consumers']} allocations ({sum(facts['fixed'].values())} fixed: {facts['fixed']}); "
        f"state read through cloudmgr in {facts['read_seconds']:.1f} s"
    )
    print(f"{'':10} {'hosts freed':>11} {'in use after':>12} {'migrations':>10} {'planning s':>10}")
    print(
        f"{'cloudmgr':10} {ours['hosts_freed']:>11} {ours['hosts_used']:>12} {ours['migrations']:>10} "
        f"{ours['seconds']:>10.3f}   ({ours['method']}, {ours['waves']} waves of <= 50; median of {args.repeats})"
    )
    print(
        f"{'Watcher':10} {watcher['hosts_freed']:>11} {watcher['hosts_used']:>12} {watcher['migrations']:>10} "
        f"{watcher['seconds']:>10.3f}   (python-watcher {watcher.get('watcher_version')}, capacities held: "
        f"{watcher['capacity_ok']})"
    )
    print(
        f"cloudmgr vs Watcher: {ours['hosts_freed'] - watcher['hosts_freed']:+d} hosts freed, "
        f"{ours['migrations'] - watcher['migrations']:+d} migrations, "
        f"{watcher['seconds'] / ours['seconds']:.0f}x faster planning"
    )
    print(
        f"load average before {load_before[0]:.2f} {load_before[1]:.2f}, after {load_after[0]:.2f} "
        f"{load_after[1]:.2f} ({os.cpu_count()} CPUs)"
    )
    print("command: " + " ".join([".venv/bin/python", "benchmarks/consolidation_live.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
