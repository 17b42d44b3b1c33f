"""The JSON of runbook runs and their events: the API's answers and the operators' live event
feed on the system page (``/ops/runbook-runs/<id>/events``) are the same shapes."""

from __future__ import annotations

from typing import Any

from cloudmgr.runbooks.models import RunbookEvent, RunbookRun


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def run_json(run: RunbookRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "system_id": run.system_id,
        "wave_id": run.wave_id,
        "step": run.step,
        "state": run.state,
        "rc": run.rc,
        "changed": run.changed,
        "actor": run.actor,
        "reason": run.reason,
        "rollback_of": run.rollback_of_id,
        "artifacts_path": run.artifacts_path,
        "event_count": run.event_count,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
    }


def event_json(event: RunbookEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "event": event.event,
        "host": event.host,
        "play": event.play,
        "task": event.task,
        "status": event.status,
        "message": event.message,
        "created_at": _iso(event.created_at),
    }
