"""Deciding several requests at once through the API, as the approval queues' pages do: each
request through the same service call as one decision (servicerequests.decide_many), the answer
saying which were decided and which were refused, with each refusal's code and message."""

from __future__ import annotations

from flask import Response, jsonify

from cloudmgr.servicerequests import services as sr
from web.api.blueprint import api_route, api_user, spec
from web.api.body import MAX_ID, Body
from web.api.requests import APPROVER_ROLES, REASON_MAX
from web.core.uow import request_uow

BULK_BODY = spec.schema(
    "BulkDecisionBody",
    {
        "type": "object",
        "required": ["request_ids", "decision"],
        "properties": {
            "request_ids": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                "minItems": 1,
                "maxItems": sr.MAX_BULK,
            },
            "decision": {"type": "string", "enum": ["approve", "reject"]},
            "reason": {"type": "string", "maxLength": REASON_MAX, "description": "Required to reject."},
        },
    },
)
BULK_OUTCOME = spec.schema(
    "BulkDecisionOutcome",
    {
        "type": "object",
        "required": ["decided", "refused"],
        "properties": {
            "decided": {"type": "array", "items": {"type": "integer"}},
            "refused": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "request_id": {"type": "integer"},
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    },
)


def _ids(body: Body) -> list[int]:
    raw = body.raw("request_ids")
    valid = isinstance(raw, list) and 0 < len(raw) <= sr.MAX_BULK
    ids = [r for r in raw if isinstance(r, int) and not isinstance(r, bool) and 1 <= r <= MAX_ID] if valid else []
    if not valid or len(ids) != len(raw):
        body.problem(f"request_ids must be a list of 1 to {sr.MAX_BULK} request ids")
    return ids


@api_route(
    "/approvals/decide",
    method="POST",
    summary="Approve or reject several requests at once",
    description=(
        "Each request is decided as if alone (the step, the department, separation of duties, the quota, "
        "classified systems); one refused leaves the others decided. 200 with what was decided and what was "
        "refused, each refusal with its error code and message."
    ),
    tags=("requests",),
    roles=APPROVER_ROLES,
    request_body=BULK_BODY,
    response=BULK_OUTCOME,
    operation_id="decide_requests",
)
def decide_requests() -> Response:
    body = Body()
    ids = _ids(body)
    decision = body.string("decision", max_length=16)
    reason = body.string("reason", required=False, max_length=REASON_MAX, default="")
    body.done()
    outcome = sr.decide_many(request_uow().session, api_user().actor, ids, str(decision), reason=str(reason or ""))
    return jsonify(
        {
            "decided": outcome.decided,
            "refused": [
                {"request_id": row.request_id, "error": row.error.code, "message": row.error.message}
                for row in outcome.refused
            ],
        }
    )
