"""Move metrics: how moves end, and how long each step takes."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from cloudmgr.metrics import REGISTRY

MOVES_TOTAL = Counter(
    "cloudmgr_moves_total",
    "Moves ended (done, failed, partial, reverted) or refused before they started",
    ["kind", "outcome"],
    registry=REGISTRY,
)
MOVE_STEP_SECONDS = Histogram(
    "cloudmgr_move_step_seconds",
    "Duration of one step of a move (one attempt)",
    ["kind", "step"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
