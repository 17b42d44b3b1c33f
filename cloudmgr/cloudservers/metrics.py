"""The server mirror's metrics: how long each sync took and in which mode, what it changed, how
many servers each cloud's mirror holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

from cloudmgr.metrics import REGISTRY

if TYPE_CHECKING:
    from cloudmgr.cloudservers.services import SyncResult

SYNC_SECONDS = Histogram(
    "cloudmgr_server_sync_seconds",
    "Duration of a sync of a cloud's server mirror, by cloud and mode (full, delta)",
    ["cloud", "mode"],
    registry=REGISTRY,
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
SYNC_RUNS = Counter(
    "cloudmgr_server_sync_runs_total",
    "Syncs of a cloud's server mirror, by cloud, mode and outcome",
    ["cloud", "mode", "outcome"],
    registry=REGISTRY,
)
SYNC_CHANGES = Counter(
    "cloudmgr_server_sync_changes_total",
    "Rows of the server mirror a sync added, changed or removed",
    ["cloud", "change"],
    registry=REGISTRY,
)
SERVERS_MIRRORED = Gauge(
    "cloudmgr_servers_mirrored", "Servers in a cloud's mirror after its last sync", ["cloud"], registry=REGISTRY
)


def record(result: SyncResult) -> None:
    mode = str(result.mode)
    SYNC_SECONDS.labels(cloud=result.cloud_key, mode=mode).observe(result.seconds)
    SYNC_RUNS.labels(cloud=result.cloud_key, mode=mode, outcome="success").inc()
    for change, count in (("added", result.added), ("changed", result.changed), ("removed", result.removed)):
        SYNC_CHANGES.labels(cloud=result.cloud_key, change=change).inc(count)
    SERVERS_MIRRORED.labels(cloud=result.cloud_key).set(result.servers)
