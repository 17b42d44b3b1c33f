"""The audit log (append-only: read and filter, never change)."""

from __future__ import annotations

import json

from flask import render_template, request
from flask.typing import ResponseReturnValue

from cloudmgr.audit import services as audit
from web.core.uow import request_uow
from web.operations.blueprint import bp

LIMITS = (50, 100, 200, 500)
FIELD_MAX = 128


def _arg(name: str) -> str | None:
    value = (request.args.get(name) or "").strip()
    return value[:FIELD_MAX] or None


@bp.get("/audit")
def audit_log() -> ResponseReturnValue:
    limit = request.args.get("limit", type=int)
    if limit not in LIMITS:
        limit = LIMITS[0]
    filters = {"action": _arg("action"), "target_type": _arg("target_type"), "target_id": _arg("target_id")}
    events = audit.recent(request_uow().session, limit=limit, **filters)
    return render_template(
        "operations/audit.html",
        events=events,
        filters={k: v or "" for k, v in filters.items()},
        limit=limit,
        limits=LIMITS,
        detail_json=lambda detail: json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else "",
    )
