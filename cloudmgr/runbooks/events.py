"""Ansible events of a run, stored as they arrive (each in its own small unit of work) for the live view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloudmgr.db import Database
from cloudmgr.runbooks.models import (
    RunbookEvent,
)

#: Events kept for the live view (the rest stay in the run's artefacts).
STORED_EVENTS = frozenset(
    {
        "playbook_on_play_start",
        "playbook_on_task_start",
        "runner_on_ok",
        "runner_on_failed",
        "runner_on_unreachable",
        "runner_on_skipped",
        "runner_item_on_failed",
        "playbook_on_stats",
    }
)


def _event_row(run_id: int, event: Mapping[str, Any]) -> RunbookEvent | None:
    name = str(event.get("event") or "")
    if name not in STORED_EVENTS:
        return None
    data = event.get("event_data") or {}
    raw = data.get("res")
    res: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    status: str | None = None
    message: str | None = None
    if name == "runner_on_ok":
        status = "changed" if res.get("changed") else "ok"
        message = res.get("msg") if isinstance(res.get("msg"), str) else None
    elif name in {"runner_on_failed", "runner_item_on_failed"}:
        status = "ignored" if data.get("ignore_errors") else "failed"
        parts = [str(res.get("msg") or "")] + [str(res.get(k) or "")[-600:] for k in ("stderr", "stdout")]
        message = "\n".join(p for p in parts if p)
    elif name == "runner_on_unreachable":
        status, message = "unreachable", str(res.get("msg") or "")
    elif name == "runner_on_skipped":
        status = "skipped"
    elif name == "playbook_on_stats":
        summary = []
        for key in ("ok", "changed", "failures", "dark", "skipped"):
            for host, count in sorted((data.get(key) or {}).items()):
                summary.append(f"{host}: {key}={count}")
        message = "; ".join(summary)
    return RunbookEvent(
        run_id=run_id,
        counter=int(event.get("counter") or 0),
        event=name,
        host=(str(data.get("host") or data.get("remote_addr") or "") or None),
        play=(str(data.get("play") or "")[:255] or None),
        task=(str(data.get("task") or "")[:255] or None),
        status=status,
        message=(message or "")[:4000] or None,
    )


def _store_event(db: Database, run_id: int, event: Mapping[str, Any]) -> None:
    row = _event_row(run_id, event)
    if row is None:
        return
    with db.unit_of_work() as uow:
        uow.session.add(row)
