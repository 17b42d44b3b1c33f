"""The audit log (append-only: read and filter, never change)."""

from __future__ import annotations

import json

from flask import render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cloudmgr.audit import services as audit
from web.common.listing import ListView, page_request
from web.core.uow import request_uow
from web.operations.blueprint import bp

PER_PAGE = 50
FIELD_MAX = 128


def _arg(name: str) -> str | None:
    value = (request.args.get(name) or "").strip()
    return value[:FIELD_MAX] or None


@bp.get("/audit")
def audit_log() -> ResponseReturnValue:
    filters = {"action": _arg("action"), "target_type": _arg("target_type"), "target_id": _arg("target_id")}
    view = ListView(
        endpoint="ops.audit_log",
        params=page_request(per_page=PER_PAGE),
        default_per_page=PER_PAGE,
        search_hint=_("Who, action, target or reason"),
        view_args={k: v for k, v in filters.items() if v},
    )
    view.page = audit.events_page(request_uow().session, view.params, **filters)
    return render_template(
        "operations/audit.html",
        view=view,
        events=view.page.rows,
        filters={k: v or "" for k, v in filters.items()},
        detail_json=lambda detail: json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else "",
    )
