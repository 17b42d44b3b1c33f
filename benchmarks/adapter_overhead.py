"""Adapter overhead: booting 20 VMs through OpenStackProvider against raw openstacksdk calls.

Both run on the same lab OpenStack in one run, alternating, in a project of their own:
issue 20 boots, then wait for all of them to be ACTIVE, then delete them.  The adapter
does more per boot on purpose (an idempotency lookup before the POST, a read-back after
it); this measures what that costs.  Goal: adapter / raw <= 1.1 for the whole boot.

    .venv/bin/python benchmarks/adapter_overhead.py [--vms 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import openstack.config  # noqa: E402
import openstack.connection  # noqa: E402

from cloudmgr.cloud import ComputeQuota, NetworkQuota, QuotaSet, ServerSpec  # noqa: E402
from cloudmgr.cloud.openstack import OpenStackProvider  # noqa: E402

CLOUDS_YAML = REPO / ".lab" / "clouds.yaml"
POLL = 1.0  # the same polling interval for both sides


def raw_connection(project_id: str | None = None) -> Any:
    region = openstack.config.OpenStackConfig(config_files=[str(CLOUDS_YAML)]).get_one(cloud="cloudmgr-lab")
    conn = openstack.connection.Connection(config=region)
    return conn.connect_as_project({"id": project_id}) if project_id else conn


def boot_with_adapter(
    provider: OpenStackProvider, project: str, ids: dict[str, str], n: int, tag: str
) -> tuple[float, float]:
    started = time.perf_counter()
    servers = [
        provider.create_server(
            project,
            ServerSpec(
                name=f"bench-a-{tag}-{i}",
                flavor_id=ids["flavor"],
                image_id=ids["image"],
                network_id=ids["network"],
                idempotency_key=f"bench-{tag}-{i}",
            ),
        )
        for i in range(n)
    ]
    issued = time.perf_counter() - started
    for server in servers:
        provider.wait_for_server(server.id, {"ACTIVE"}, timeout=600)
    total = time.perf_counter() - started
    for server in servers:
        provider.delete_server(server.id)
    for server in servers:
        provider.wait_for_server_deleted(server.id, timeout=600)
    return issued, total


def boot_raw(conn: Any, ids: dict[str, str], n: int, tag: str) -> tuple[float, float]:
    started = time.perf_counter()
    servers = [
        conn.compute.create_server(
            name=f"bench-r-{tag}-{i}",
            flavor_id=ids["flavor"],
            image_id=ids["image"],
            networks=[{"uuid": ids["network"]}],
        )
        for i in range(n)
    ]
    issued = time.perf_counter() - started
    for server in servers:
        conn.compute.wait_for_server(server, status="ACTIVE", interval=POLL, wait=600)
    total = time.perf_counter() - started
    for server in servers:
        conn.compute.delete_server(server)
    for server in servers:
        conn.compute.wait_for_delete(server, interval=POLL, wait=600)
    return issued, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not CLOUDS_YAML.exists():
        sys.exit("the lab is not up: run `make lab-up`")
    provider = OpenStackProvider(cloud="cloudmgr-lab", config_files=[str(CLOUDS_YAML)])
    provider.poll_interval = POLL
    run = secrets.token_hex(3)
    project = provider.ensure_project(f"bench-{run}", f"bench-{run}", "adapter overhead benchmark").id
    roomy = QuotaSet(ComputeQuota(cores=-1, ram_mb=-1, instances=100), NetworkQuota(10, 10, 200, 10, 10, 100), None)
    provider.set_quota(project, roomy)
    ids = {
        "flavor": next(f.id for f in provider.list_flavors() if f.name == "m1.tiny"),
        "image": next(i.id for i in provider.list_images() if i.name == "cirros-lab"),
        "network": next(n.id for n in provider.list_networks() if n.name == "lab-extranet"),
    }
    raw = raw_connection(project)
    adapter_issue, adapter_total, raw_issue, raw_total = [], [], [], []
    try:
        for round_ in range(args.rounds):
            order = ("adapter", "raw") if round_ % 2 == 0 else ("raw", "adapter")
            for side in order:
                tag = f"{run}{round_}"
                if side == "adapter":
                    issued, total = boot_with_adapter(provider, project, ids, args.vms, tag)
                    adapter_issue.append(issued)
                    adapter_total.append(total)
                else:
                    issued, total = boot_raw(raw, ids, args.vms, tag)
                    raw_issue.append(issued)
                    raw_total.append(total)
                print(
                    f"round {round_ + 1} {side:<7} boot calls {issued:6.2f} s   all ACTIVE {total:6.2f} s", flush=True
                )
    finally:
        admin = raw_connection()
        for server in admin.compute.servers(all_projects=True, project_id=project):
            admin.compute.delete_server(server)
        admin.identity.delete_project(project, ignore_missing=True)
        domain = admin.identity.find_domain(f"bench-{run}")
        if domain is not None:
            admin.identity.update_domain(domain, is_enabled=False)
            admin.identity.delete_domain(domain)
    med = statistics.median
    print()
    print(f"{args.vms} VMs, {args.rounds} rounds, medians:")
    print(f"  {'':<22}{'adapter':>10}{'raw sdk':>10}{'ratio':>8}")
    for label, ours, theirs in (
        ("boot calls (s)", med(adapter_issue), med(raw_issue)),
        ("all ACTIVE (s)", med(adapter_total), med(raw_total)),
    ):
        print(f"  {label:<22}{ours:>10.2f}{theirs:>10.2f}{ours / theirs:>8.2f}")
    print(f"  goal: all ACTIVE ratio <= 1.10 -> {'met' if med(adapter_total) / med(raw_total) <= 1.10 else 'NOT met'}")


if __name__ == "__main__":
    main()
