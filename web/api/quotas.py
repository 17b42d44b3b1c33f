"""``/api/v1``: the catalog of a cloud, quota balances, quota-change requests and drift."""

from __future__ import annotations

from flask import Response, jsonify

from cloudmgr.catalog import services as catalog
from cloudmgr.errors import ValidationFailed
from cloudmgr.organisation import services as org
from cloudmgr.organisation.models import Role
from cloudmgr.quotas import services as quota_services
from cloudmgr.quotas.models import ChangeRequestState
from cloudmgr.quotas.resources import Resource
from web.api.blueprint import api_route, api_user, spec
from web.api.body import MAX_ID, Body, query_choice, query_str
from web.api.serializers import (
    CATALOG_ITEM,
    QUOTA_BALANCE,
    QUOTA_CHANGE,
    QUOTA_DRIFT,
    RESOURCE_NAMES,
    balance_json,
    catalog_item_json,
    change_json,
    drift_json,
)
from web.api.spec import list_of
from web.common import quota_files as quota_help
from web.core.uow import request_uow

DEPARTMENT_ROLES = (Role.DEPT_STAFF, Role.DEPT_HEAD)
REASON_MAX = 2000

spec.tag("catalog", "What each cloud offers: flavors and images with their monthly price.")
spec.tag("quotas", "Quota balances per department and cloud, change requests and drift.")


@api_route(
    "/catalog",
    summary="The offered flavors and images of one cloud",
    description="Department users may only read their department's clouds (404 for others).",
    tags=("catalog",),
    parameters=[{"name": "cloud", "in": "query", "required": True, "schema": {"type": "string"}}],
    response=list_of(CATALOG_ITEM),
    errors=(404,),
)
def catalog_items() -> Response:
    key = query_str("cloud")
    if key is None:
        raise ValidationFailed("cloud is required (a cloud's key)")
    items = catalog.offered_catalog(request_uow().session, api_user().actor, key)
    return jsonify({"items": [catalog_item_json(i) for i in items]})


@api_route(
    "/quotas",
    summary="Quota balances with drift and near-full flags",
    description="Department users get their department's balances; other roles get every department's.",
    tags=("quotas",),
    parameters=[
        {"name": "cloud", "in": "query", "schema": {"type": "string"}, "description": "Only this cloud."},
        {"name": "department", "in": "query", "schema": {"type": "string"}, "description": "Only this department."},
    ],
    response=list_of(QUOTA_BALANCE),
    errors=(404,),
)
def quotas() -> Response:
    user = api_user()
    session = request_uow().session
    cloud = query_str("cloud")
    department_key = query_str("department")
    if user.department is not None:
        department_id: int | None = user.department.id
    elif department_key is not None:
        department_id = org.get_department(session, department_key).id
    else:
        department_id = None
    balances = quota_services.all_balances(session, department_id=department_id)
    return jsonify({"items": [balance_json(b) for b in balances if cloud is None or b.cloud_key == cloud]})


@api_route(
    "/quota-requests",
    summary="Quota-change requests",
    description="Department users see their department's; other roles see all. Newest first.",
    tags=("quotas",),
    parameters=[{"name": "state", "in": "query", "schema": {"type": "string", "enum": list(ChangeRequestState)}}],
    response=list_of(QUOTA_CHANGE),
)
def list_quota_requests() -> Response:
    state = query_choice("state", frozenset(ChangeRequestState))
    changes = quota_services.change_requests(request_uow().session, api_user().actor, state=state)
    return jsonify({"items": [change_json(c) for c in changes]})


@api_route(
    "/quota-requests",
    method="POST",
    summary="Ask for other limits on one of the department's clouds",
    description=(
        "Either a named `size` or explicit `limits` (ledger units: ram_mb in MB; omitted resources keep their "
        "limit). One size up, at most once in 30 days, is approved at once (`state` approved, `automatic` true) "
        "and pushed to the cloud; anything else waits for an operator."
    ),
    tags=("quotas",),
    roles=DEPARTMENT_ROLES,
    request_body=spec.schema(
        "QuotaChangeBody",
        {
            "type": "object",
            "required": ["cloud", "reason"],
            "properties": {
                "cloud": {"type": "string"},
                "reason": {"type": "string", "maxLength": REASON_MAX},
                "size": {"type": "string", "description": "A size of the quota files (small, medium …)."},
                "limits": {
                    "type": "object",
                    "properties": {name: {"type": "integer", "minimum": 0} for name in RESOURCE_NAMES},
                    "additionalProperties": False,
                },
            },
        },
    ),
    response=QUOTA_CHANGE,
    status=201,
    operation_id="create_quota_request",
)
def create_quota_request() -> tuple[Response, int]:
    body = Body()
    cloud = body.string("cloud", max_length=64)
    reason = body.string("reason", max_length=REASON_MAX)
    size = body.string("size", required=False, max_length=32)
    raw_limits = body.mapping("limits", required=False)
    limits: dict[Resource, int] | None = None
    if raw_limits is not None:
        limits = {}
        for name, value in raw_limits.items():
            if name not in RESOURCE_NAMES:
                body.problem(f"limits: unknown resource {str(name)[:32]!r} (known: {', '.join(RESOURCE_NAMES)})")
            elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
                body.problem(f"limits.{name} must be an integer between 0 and {MAX_ID}")
            else:
                limits[Resource(name)] = value
        if not raw_limits:
            body.problem("limits must name at least one resource")
    if (size is None) == (raw_limits is None) and not body.problems:
        body.problem("give either size or limits")
    body.done()
    change = quota_services.request_change(
        request_uow().session,
        api_user().actor,
        quota_help.definitions(),
        cloud_key=cloud,
        reason=reason,
        target_size=size,
        limits=limits,
    )
    return jsonify(change_json(change)), 201


@api_route(
    "/quota-requests/<int(max=2147483647):change_id>/decide",
    method="POST",
    summary="Approve or reject a quota-change request",
    description="An approval sets the ledger and then the cloud. A rejection needs a reason.",
    tags=("quotas",),
    roles=(Role.OPERATOR,),
    request_body=spec.schema(
        "QuotaDecision",
        {
            "type": "object",
            "required": ["approve"],
            "properties": {"approve": {"type": "boolean"}, "reason": {"type": "string", "maxLength": REASON_MAX}},
        },
    ),
    response=QUOTA_CHANGE,
    errors=(404,),
    operation_id="decide_quota_request",
)
def decide_quota_request(change_id: int) -> Response:
    body = Body()
    approve = body.boolean("approve", default=False, required=True)
    reason = body.string("reason", required=False, max_length=REASON_MAX, default="")
    body.done()
    change = quota_services.decide_change(
        request_uow().session,
        api_user().actor,
        change_id,
        approve=approve,
        reason=reason or "",
        definitions=quota_help.definitions(),
    )
    return jsonify(change_json(change))


@api_route(
    "/quota-drifts",
    summary="Quota drift between the ledger and the clouds",
    description="`state=open` (default): unresolved drift; `state=all`: the most recent 100, open and resolved.",
    tags=("quotas",),
    roles=(Role.OPERATOR,),
    parameters=[{"name": "state", "in": "query", "schema": {"type": "string", "enum": ["open", "all"]}}],
    response=list_of(QUOTA_DRIFT),
)
def quota_drifts() -> Response:
    session = request_uow().session
    state = query_choice("state", frozenset({"open", "all"})) or "open"
    drifts = quota_services.open_drifts(session) if state == "open" else quota_services.recent_drifts(session)
    return jsonify({"items": [drift_json(d) for d in drifts]})
