"""``/api/v1/orphans``: the volumes and floating IPs carrying cloudmgr's tag that no request
owns (found by the reconcile job), and an operator's adopt or delete of one (issue 16)."""

from __future__ import annotations

from flask import Response, jsonify

from cloudmgr.organisation.models import Role
from cloudmgr.servicerequests import services as sr
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body, query_choice
from web.api.spec import JSON, list_of
from web.core.uow import request_uow

ID = "<int(max=2147483647):orphan_id>"

spec.tag("orphans", "Volumes and floating IPs with cloudmgr's tag that no request owns: adopt or delete them.")

ORPHAN = spec.schema(
    "OrphanResource",
    {
        "type": "object",
        "required": ["id", "kind", "cloud", "resource_id", "name", "project_id", "tag", "found_at", "resolved_at"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": [k.value for k in sr.OrphanKind]},
            "cloud": {"type": "string", "description": "The cloud's key."},
            "resource_id": {"type": "string", "description": "The cloud's id of the volume or floating IP."},
            "name": {"type": "string", "description": "The volume's name or the address."},
            "project_id": {"type": ["string", "null"]},
            "tag": {"type": "string", "description": "The idempotency tag provisioning gave it."},
            "size_gb": {"type": ["integer", "null"]},
            "attached_to": {"type": ["string", "null"], "description": "The cloud server it is attached to."},
            "found_at": {"type": "string", "format": "date-time"},
            "resolved_at": {"type": ["string", "null"], "format": "date-time"},
            "resolution": {"type": ["string", "null"], "enum": [*(r.value for r in sr.OrphanResolution), None]},
            "pending_action": {"type": ["string", "null"], "enum": [*sr.ORPHAN_ACTIONS, None]},
            "fault": {"type": ["string", "null"], "description": "Why the last action did not happen."},
        },
    },
)


def orphan_json(orphan: sr.OrphanResource) -> JSON:
    return {
        "id": orphan.id,
        "kind": orphan.kind.value,
        "cloud": orphan.cloud.key,
        "resource_id": orphan.resource_id,
        "name": orphan.name,
        "project_id": orphan.project_id,
        "tag": orphan.tag,
        "size_gb": orphan.size_gb,
        "attached_to": orphan.attached_to,
        "found_at": orphan.found_at.isoformat(),
        "resolved_at": orphan.resolved_at.isoformat() if orphan.resolved_at else None,
        "resolution": orphan.resolution.value if orphan.resolution else None,
        "pending_action": orphan.pending_action,
        "fault": orphan.fault,
    }


@api_route(
    "/orphans",
    summary="List orphaned volumes and floating IPs",
    description="Open ones, newest first; `state=all` includes the resolved ones.",
    tags=("orphans",),
    roles=(Role.OPERATOR,),
    parameters=[{"name": "state", "in": "query", "schema": {"type": "string", "enum": ["open", "all"]}}],
    response=list_of(ORPHAN),
)
def list_orphans() -> Response:
    state = query_choice("state", frozenset({"open", "all"}))
    rows = sr.list_orphan_resources(request_uow().session, include_resolved=state == "all")
    return jsonify({"items": [orphan_json(o) for o in rows]})


@api_route(
    f"/orphans/{ID}/actions",
    method="POST",
    summary="Adopt or delete an orphaned volume or floating IP",
    description=(
        "`adopt` makes it the department's whose project holds it and counts it in that department's quota "
        "(409 quota_exceeded when it does not fit); `delete` removes it from the cloud (409 while a volume is "
        "attached). It runs on the cloud shortly after."
    ),
    tags=("orphans",),
    roles=(Role.OPERATOR,),
    request_body=spec.schema(
        "OrphanAction",
        {
            "type": "object",
            "required": ["action"],
            "properties": {"action": {"type": "string", "enum": list(sr.ORPHAN_ACTIONS)}},
        },
    ),
    response=ORPHAN,
    status=202,
    errors=(404, 409),
    operation_id="orphan_action",
)
def orphan_action(orphan_id: int) -> tuple[Response, int]:
    body = Body()
    action = body.string("action", max_length=16)
    body.done()
    orphan = sr.request_orphan_action(request_uow().session, api_user().actor, orphan_id, action)
    return jsonify(orphan_json(orphan)), 202
