"""Runbook metrics: how long each step takes, and how often a cutover had to be undone."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from cloudmgr.metrics import REGISTRY

STEP_SECONDS = Histogram(
    "cloudmgr_runbook_step_seconds",
    "Duration of a migration runbook step (one Ansible playbook run), by step and outcome",
    ["step", "outcome"],
    registry=REGISTRY,
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600),
)
ROLLBACKS = Counter(
    "cloudmgr_runbook_rollbacks_total",
    "Cutovers or verifications that failed and were rolled back",
    registry=REGISTRY,
)
