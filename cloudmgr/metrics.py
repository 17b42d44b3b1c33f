"""Prometheus metrics shared across the product.

Domain packages define their business metrics next to their services; this module
holds the process-wide ones (HTTP, jobs) and the registry they all live in.  The domain
metrics import it; what ``/metrics`` answers, with their collectors, is
``cloudmgr.metrics_exposition`` (which imports them: no cycle).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cloudmgr import __version__

REGISTRY = CollectorRegistry(auto_describe=True)

BUILD_INFO = Gauge("cloudmgr_build_info", "cloudmgr version", ["version"], registry=REGISTRY)
BUILD_INFO.labels(version=__version__).set(1)

HTTP_REQUEST_SECONDS = Histogram(
    "cloudmgr_http_request_seconds",
    "HTTP request latency by endpoint and status",
    ["method", "endpoint", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

JOB_RUNS = Counter(
    "cloudmgr_job_runs_total", "Scheduler job runs by job and outcome", ["job", "outcome"], registry=REGISTRY
)
JOB_SECONDS = Histogram("cloudmgr_job_seconds", "Scheduler job duration", ["job"], registry=REGISTRY)

APPROVAL_WAIT_SECONDS = Histogram(
    "cloudmgr_request_approval_wait_seconds",
    "From submission to the last approval of a VM request",
    ["cloud"],
    registry=REGISTRY,
    buckets=(60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400),
)
PROVISIONING_SECONDS = Histogram(
    "cloudmgr_request_provisioning_seconds",
    "From the start of provisioning to the request's final state",
    ["cloud"],
    registry=REGISTRY,
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 3600),
)
PROVISIONING_FAILURES = Counter(
    "cloudmgr_provisioning_failures_total",
    "Servers that failed to provision, by cloud and reason",
    ["cloud", "reason"],
    registry=REGISTRY,
)

CLOUD_SYNC_PROBLEMS = Gauge(
    "cloudmgr_cloud_sync_problems", "Problems found by the last sync of each cloud", ["cloud"], registry=REGISTRY
)
