"""Placement capacity snapshot: cloudmgr's read of every resource provider against raw calls.

Three ways to read, for every resource provider, its inventories, usages and allocations,
in the same run, alternating (a, b, c, a, b, c, ...), after one unmeasured warm-up each
(token, endpoint discovery):

  (a) raw per-provider calls with openstacksdk, one after another: GET /resource_providers,
      then per provider GET .../inventories, .../usages and .../allocations (1 + 3N GETs);
  (b) raw bulk-most calls with openstacksdk, one after another: the calls cloudmgr makes,
      GET /resource_providers, then per provider .../inventories and .../allocations, the
      usages summed from the allocations (1 + 2N GETs; Placement has no bulk read of
      inventories or allocations);
  (c) cloudmgr's ``CloudProvider.capacity_snapshot()`` (the (b) calls, a few at a time).

Prints each one's HTTP calls (counted on keystoneauth's Session.request, so token and
discovery requests would show too), median/min/max wall time, the ratios (c)/(a) and
(c)/(b), the load average before and after, and the command.  Goal: (c)/(a) <= 1.2 and as
few calls as Placement allows.

    .venv/bin/python benchmarks/placement_snapshot.py --cloud cloudmgr-lab [--runs 5]
        [--clouds-yaml .lab/clouds.yaml]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import keystoneauth1.session  # noqa: E402
import openstack.config  # noqa: E402
import openstack.connection  # noqa: E402
from openstack import exceptions as sdk_exceptions  # noqa: E402

from cloudmgr.cloud.openstack import OpenStackProvider  # noqa: E402

# Raw reads return {provider id: (inventories, usages, {consumer: resources})}.
Reading = dict[str, tuple[dict[str, Any], dict[str, int], dict[str, dict[str, int]]]]


class CallCounter:
    """Counts every HTTP request any keystoneauth session sends (all threads)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        original = keystoneauth1.session.Session.request
        counter = self

        def counted(session: Any, url: str, method: str, *args: Any, **kwargs: Any) -> Any:
            with counter._lock:
                counter.calls += 1
            return original(session, url, method, *args, **kwargs)

        keystoneauth1.session.Session.request = counted  # type: ignore[method-assign,assignment]

    def reset(self) -> None:
        with self._lock:
            self.calls = 0


def raw_connection(clouds_yaml: Path, cloud: str) -> Any:
    region = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)]).get_one(cloud=cloud)
    return openstack.connection.Connection(config=region)


def _get(conn: Any, path: str) -> dict[str, Any]:
    response = conn.placement.get(path)
    sdk_exceptions.raise_from_response(response)
    body: dict[str, Any] = response.json()
    return body


def _consumers(body: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {c: dict((held or {}).get("resources") or {}) for c, held in (body.get("allocations") or {}).items()}


def per_provider(conn: Any) -> Reading:
    """(a) GET /resource_providers, then inventories, usages and allocations per provider."""
    reading: Reading = {}
    for rp in _get(conn, "/resource_providers")["resource_providers"]:
        base = f"/resource_providers/{rp['uuid']}"
        inventories = _get(conn, f"{base}/inventories")["inventories"]
        usages = _get(conn, f"{base}/usages")["usages"]
        reading[rp["uuid"]] = (inventories, usages, _consumers(_get(conn, f"{base}/allocations")))
    return reading


def bulk_most(conn: Any) -> Reading:
    """(b) GET /resource_providers, then inventories and allocations per provider; usages summed."""
    reading: Reading = {}
    for rp in _get(conn, "/resource_providers")["resource_providers"]:
        base = f"/resource_providers/{rp['uuid']}"
        inventories = _get(conn, f"{base}/inventories")["inventories"]
        consumers = _consumers(_get(conn, f"{base}/allocations"))
        usages = dict.fromkeys(inventories, 0)
        for resources in consumers.values():
            for rc, amount in resources.items():
                if rc in usages:
                    usages[rc] += amount
        reading[rp["uuid"]] = (inventories, usages, consumers)
    return reading


def through_cloudmgr(provider: OpenStackProvider) -> Reading:
    """(c) cloudmgr's snapshot, in the same shape as the raw readings."""
    snapshot = provider.capacity_snapshot()
    return {
        rp.id: (
            {rc: dataclasses.asdict(inventory) for rc, inventory in rp.inventories.items()},
            dict(rp.usages),
            {a.consumer_id: dict(a.resources) for a in snapshot.allocations_of(rp.id)},
        )
        for rp in snapshot.providers
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cloud", required=True, help="the clouds.yaml entry (e.g. cloudmgr-lab)")
    parser.add_argument("--runs", type=int, default=5, help="measured runs of each variant")
    parser.add_argument("--clouds-yaml", type=Path, default=REPO / ".lab" / "clouds.yaml")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not args.clouds_yaml.is_file():
        parser.error(f"{args.clouds_yaml} does not exist (--clouds-yaml)")

    counter = CallCounter()
    raw_a = raw_connection(args.clouds_yaml, args.cloud)
    raw_b = raw_connection(args.clouds_yaml, args.cloud)
    provider = OpenStackProvider(cloud=args.cloud, config_files=[args.clouds_yaml])
    variants: dict[str, Callable[[], Reading]] = {
        "a": lambda: per_provider(raw_a),
        "b": lambda: bulk_most(raw_b),
        "c": lambda: through_cloudmgr(provider),
    }
    labels = {
        "a": "(a) raw per-provider calls (sequential)",
        "b": "(b) raw bulk-most calls (sequential)",
        "c": "(c) cloudmgr capacity_snapshot()",
    }

    load_before = os.getloadavg()
    for run in variants.values():  # warm-up: token, endpoint discovery, connection pools
        run()
    times: dict[str, list[float]] = {k: [] for k in variants}
    calls: dict[str, list[int]] = {k: [] for k in variants}
    readings: dict[str, Reading] = {}
    for _ in range(args.runs):
        for key, run in variants.items():
            counter.reset()
            started = time.perf_counter()
            readings[key] = run()
            times[key].append(time.perf_counter() - started)
            calls[key].append(counter.calls)
    load_after = os.getloadavg()

    providers = len(readings["a"])
    allocations = sum(len(consumers) for _, _, consumers in readings["a"].values())
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"cloud {args.cloud}: {providers} resource providers, {allocations} allocations; {args.runs} runs each")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)} ({os.cpu_count()} cores)")
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in load_after)}")
    medians = {k: statistics.median(v) for k, v in times.items()}
    for key in variants:
        spread = f"min {min(times[key]):.3f} s, max {max(times[key]):.3f} s"
        call_counts = sorted(set(calls[key]))
        shown = str(call_counts[0]) if len(call_counts) == 1 else f"{min(call_counts)}-{max(call_counts)}"
        print(f"{labels[key]:44s} {shown:>6s} HTTP calls  median {medians[key]:.3f} s ({spread})")
    print(f"ratio (c)/(a): {medians['c'] / medians['a']:.2f}   (goal <= 1.2)")
    print(f"ratio (c)/(b): {medians['c'] / medians['b']:.2f}")
    # Placement may change between the reads (servers booting elsewhere): say so, don't fail.
    same = readings["a"] == readings["b"] == readings["c"]
    print("the three readings agree" if same else "the readings differ (Placement changed during the run?)")


if __name__ == "__main__":
    main()
