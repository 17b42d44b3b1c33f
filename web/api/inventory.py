"""Legacy systems (issue 6): list, one system, and the inventory import.

Operators see every department's systems and import the inventory; department users read
their own department's systems only (another department's system is a 404).
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from cloudmgr.inventory import reclassification
from cloudmgr.inventory.errors import InventoryInvalid
from cloudmgr.inventory.importer import MAX_BYTES, import_inventory
from cloudmgr.inventory.models import LegacySystem, SystemState
from cloudmgr.inventory.services import SystemFilter, dependants, get_system, list_systems
from cloudmgr.organisation.models import Role
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body, query_choice, query_int, query_str
from web.api.serializers import paged_list_of
from web.core.uow import request_uow

READERS = (Role.OPERATOR, Role.DEPT_STAFF, Role.DEPT_HEAD)
OPERATORS = (Role.OPERATOR,)
ADMINS = (Role.ADMIN,)
MAX_PER_PAGE = 200
MAX_PAGE = 100_000
ID = "<int(max=2147483647):system_id>"

spec.tag("systems", "Legacy systems in the departments' server rooms (the inventory) and their move to the cloud.")

_REASON = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "points": {"type": "integer"},
        "detail": {"type": "string", "description": "The reason in English."},
        "msgid": {"type": "string", "description": "The reason's message, to translate (absent in old rows)."},
        "params": {"type": "object", "description": "The values of the message's %(name)s placeholders."},
    },
}
SYSTEM = spec.schema(
    "LegacySystem",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "hostname": {"type": "string"},
            "department": {"type": "string"},
            "server_room": {"type": "string"},
            "application_system": {"type": "string"},
            "classification": {"type": "string", "enum": ["classified", "non_classified"]},
            "network": {"type": "string", "enum": ["internet", "extranet", "intranet"]},
            "in_scope": {"type": "boolean"},
            "os_family": {"type": "string"},
            "os_name": {"type": "string"},
            "os_version": {"type": "string"},
            "vcpus": {"type": "integer"},
            "ram_mb": {"type": "integer"},
            "disk_gb": {"type": "integer"},
            "data_gb": {"type": "integer"},
            "cpu_p95_pct": {"type": "number"},
            "ram_p95_pct": {"type": "number"},
            "dependencies": {"type": "array", "items": {"type": "string"}},
            "owner_name": {"type": "string"},
            "owner_contact": {"type": "string"},
            "ansible_host": {"type": ["string", "null"]},
            "state": {"type": "string", "enum": [s.value for s in SystemState]},
            "complexity_score": {"type": "integer"},
            "complexity_reasons": {"type": "array", "items": _REASON},
            "due_date": {"type": ["string", "null"], "format": "date"},
            "target_cloud": {"type": ["string", "null"]},
            "cloud_server_id": {"type": ["string", "null"]},
            "migrated_at": {"type": ["string", "null"], "format": "date-time"},
            "decommissioned_at": {"type": ["string", "null"], "format": "date-time"},
            "used_by": {"type": "array", "items": {"type": "string"}, "description": "Only in the detail."},
        },
    },
)
IMPORT_BODY = spec.schema(
    "InventoryImport",
    {
        "type": "object",
        "required": ["content"],
        "properties": {
            "content": {"type": "string", "description": "The Ansible YAML inventory or the CSV, as text."},
            "filename": {
                "type": "string",
                "description": "Its name; a name ending in .csv is read as CSV, anything else as YAML.",
                "default": "inventory.yml",
            },
        },
    },
)
IMPORT_RESULT = spec.schema(
    "InventoryImportResult",
    {
        "type": "object",
        "properties": {
            **{
                k: {"type": "integer"}
                for k in (
                    "total",
                    "created",
                    "updated",
                    "unchanged",
                    "out_of_scope",
                    "rooms_created",
                    "declassifications_held",
                    "alerts_raised",
                )
            },
            "held_hosts": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Systems whose lower classification waits for an administrator (not applied).",
            },
        },
    },
)
LIST_PARAMETERS: list[dict[str, Any]] = [
    {"name": "department", "in": "query", "schema": {"type": "string"}, "description": "A department's key."},
    {"name": "state", "in": "query", "schema": {"type": "string", "enum": [s.value for s in SystemState]}},
    {
        "name": "scope",
        "in": "query",
        "schema": {"type": "string", "enum": ["in", "out"]},
        "description": "in: non-classified internet/extranet systems (to move); out: classified or intranet.",
    },
    {"name": "classification", "in": "query", "schema": {"type": "string", "enum": ["classified", "non_classified"]}},
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def system_json(system: LegacySystem, *, used_by: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": system.id,
        "hostname": system.hostname,
        "department": system.department.key,
        "server_room": system.server_room.code,
        "application_system": system.application_system,
        "classification": system.classification,
        "network": system.network,
        "in_scope": system.in_scope,
        "os_family": system.os_family,
        "os_name": system.os_name,
        "os_version": system.os_version,
        "vcpus": system.vcpus,
        "ram_mb": system.ram_mb,
        "disk_gb": system.disk_gb,
        "data_gb": system.data_gb,
        "cpu_p95_pct": system.cpu_p95_pct,
        "ram_p95_pct": system.ram_p95_pct,
        "dependencies": list(system.dependencies or []),
        "owner_name": system.owner_name,
        "owner_contact": system.owner_contact,
        "ansible_host": system.ansible_host,
        "state": system.state,
        "complexity_score": system.complexity_score,
        "complexity_reasons": list(system.complexity_reasons or []),
        "due_date": _iso(system.due_date),
        "target_cloud": system.target_cloud.key if system.target_cloud is not None else None,
        "cloud_server_id": system.cloud_server_id,
        "migrated_at": _iso(system.migrated_at),
        "decommissioned_at": _iso(system.decommissioned_at),
    }
    if used_by is not None:
        data["used_by"] = used_by
    return data


@api_route(
    "/systems",
    summary="List legacy systems, easy to hard",
    description="Sorted by complexity score, then hostname. Department users see their department's systems only.",
    tags=("systems",),
    roles=READERS,
    parameters=LIST_PARAMETERS,
    response=paged_list_of(SYSTEM),
    errors=(400, 404),
)
def list_legacy_systems() -> Response:
    state = query_choice("state", frozenset(s.value for s in SystemState))
    scope = query_choice("scope", frozenset({"in", "out"}))
    classification = query_choice("classification", frozenset({"classified", "non_classified"}))
    page = query_int("page", default=1, minimum=1, maximum=MAX_PAGE)
    per_page = query_int("per_page", default=50, minimum=1, maximum=MAX_PER_PAGE)
    department_key = query_str("department")
    rows, total = list_systems(
        request_uow().session,
        SystemFilter(department_key=department_key, state=state, scope=scope, classification=classification),
        actor=api_user().actor,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    return jsonify({"items": [system_json(s) for s in rows], "total": total, "page": page, "per_page": per_page})


@api_route(
    f"/systems/{ID}",
    summary="One legacy system with its complexity reasons and dependants",
    tags=("systems",),
    roles=READERS,
    response=SYSTEM,
    errors=(404,),
    operation_id="get_legacy_system",
)
def get_legacy_system(system_id: int) -> Response:
    session = request_uow().session
    system = get_system(session, system_id, actor=api_user().actor)
    return jsonify(system_json(system, used_by=dependants(session, system)))


@api_route(
    "/systems/import",
    method="POST",
    summary="Import the inventory (all hosts or none)",
    description=(
        "Every host is validated first; when one is wrong nothing is imported and the 400 answer lists every "
        "problem in `problems` ([{host, reason}]). Re-importing updates systems in place."
    ),
    tags=("systems",),
    roles=OPERATORS,
    request_body=IMPORT_BODY,
    response=IMPORT_RESULT,
    errors=(400,),
    operation_id="import_inventory",
)
def import_legacy_inventory() -> Response | tuple[Response, int]:
    body = Body()
    content = body.string("content", max_length=MAX_BYTES)
    filename = body.string("filename", required=False, max_length=120, default="inventory.yml")
    body.done()
    try:
        result = import_inventory(
            request_uow().session,
            content,
            filename=filename,
            actor=api_user().actor,
            entry_point="inventory.import.api",
        )
    except InventoryInvalid as exc:
        response = jsonify(
            {
                "error": exc.code,
                "message": exc.message,
                "problems": [{"host": host, "reason": reason} for host, reason in exc.problems],
            }
        )
        return response, 400
    return jsonify(
        {
            "total": result.total,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "out_of_scope": result.out_of_scope,
            "rooms_created": result.rooms_created,
            "declassifications_held": result.declassifications_held,
            "held_hosts": result.held_hosts,
            "alerts_raised": result.alerts_raised,
        }
    )


# --- reclassification alerts and declassification approvals (issue 14) ---------------------------

ALERT = spec.schema(
    "ReclassificationAlert",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "system_id": {"type": "integer"},
            "hostname": {"type": "string"},
            "state": {"type": "string", "enum": ["open", "resolved", "acknowledged"]},
            "servers": {"type": "array", "items": {"type": "string"}, "description": "On the cloud when raised."},
            "servers_now": {"type": "array", "items": {"type": "string"}, "description": "Still on the cloud."},
            "raised_by": {"type": "string"},
            "raised_at": {"type": "string", "format": "date-time"},
            "entry_point": {"type": "string"},
        },
    },
)
DECLASSIFICATION = spec.schema(
    "DeclassificationRequest",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "system_id": {"type": "integer"},
            "hostname": {"type": "string"},
            "from": {"type": "object"},
            "to": {"type": "object"},
            "state": {"type": "string", "enum": ["pending", "approved", "rejected"]},
            "requested_by": {"type": "string"},
            "requested_at": {"type": "string", "format": "date-time"},
            "entry_point": {"type": "string"},
            "reason": {"type": "string"},
            "decided_by": {"type": ["string", "null"]},
            "decided_at": {"type": ["string", "null"], "format": "date-time"},
            "decision_reason": {"type": ["string", "null"]},
        },
    },
)
REASON_BODY = spec.schema(
    "ReasonBody",
    {"type": "object", "properties": {"reason": {"type": "string", "maxLength": 2000}}},
)
ALERT_ID = "<int(max=2147483647):alert_id>"
REQUEST_ID = "<int(max=2147483647):request_id>"


def _alert_json(view: reclassification.AlertView) -> dict[str, Any]:
    a = view.alert
    return {
        "id": a.id,
        "system_id": a.system_id,
        "hostname": a.system.hostname,
        "state": a.state,
        "servers": list(a.servers or []),
        "servers_now": view.servers_now,
        "raised_by": a.raised_by,
        "raised_at": _iso(a.raised_at),
        "entry_point": a.entry_point,
    }


def _declassification_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "system_id": r.system_id,
        "hostname": r.system.hostname,
        "from": {"classification": r.from_classification, "network": r.from_network},
        "to": {"classification": r.to_classification, "network": r.to_network},
        "state": r.state,
        "requested_by": r.requested_by,
        "requested_at": _iso(r.requested_at),
        "entry_point": r.entry_point,
        "reason": r.reason,
        "decided_by": r.decided_by,
        "decided_at": _iso(r.decided_at),
        "decision_reason": r.decision_reason,
    }


@api_route(
    "/systems/alerts",
    summary="Open alerts: systems classified while servers for them run on the cloud",
    description="Each stays open until its servers leave the cloud or an operator acknowledges it with a reason.",
    tags=("systems",),
    roles=OPERATORS,
    response={"type": "object", "properties": {"items": {"type": "array", "items": ALERT}}},
    operation_id="list_reclassification_alerts",
)
def list_reclassification_alerts() -> Response:
    return jsonify({"items": [_alert_json(v) for v in reclassification.open_alerts(request_uow().session)]})


@api_route(
    f"/systems/alerts/{ALERT_ID}/close",
    method="POST",
    summary="Close a reclassification alert (a reason is required while servers remain on the cloud)",
    tags=("systems",),
    roles=OPERATORS,
    request_body=REASON_BODY,
    response=ALERT,
    errors=(400, 404, 409),
    operation_id="close_reclassification_alert",
)
def close_reclassification_alert(alert_id: int) -> Response:
    body = Body(optional=True)
    reason = body.string("reason", required=False, max_length=2000, default="")
    body.done()
    session = request_uow().session
    alert = reclassification.close_alert(session, alert_id, actor=api_user().actor, reason=reason)
    return jsonify(
        _alert_json(reclassification.AlertView(alert, reclassification.servers_on_cloud(session, alert.system)))
    )


@api_route(
    "/declassifications",
    summary="Requests to lower a system's classification",
    description="Held instead of applied: an administrator other than the requester approves or rejects each.",
    tags=("systems",),
    roles=(Role.OPERATOR, Role.ADMIN),
    parameters=[
        {
            "name": "state",
            "in": "query",
            "schema": {"type": "string", "enum": ["pending", "approved", "rejected"], "default": "pending"},
        }
    ],
    response={"type": "object", "properties": {"items": {"type": "array", "items": DECLASSIFICATION}}},
    errors=(400,),
    operation_id="list_declassifications",
)
def list_declassifications() -> Response:
    state = query_choice("state", frozenset({"pending", "approved", "rejected"})) or "pending"
    rows = reclassification.list_requests(request_uow().session, state=state)
    return jsonify({"items": [_declassification_json(r) for r in rows]})


def _decide(request_id: int, *, approve: bool) -> Response:
    body = Body(optional=True)
    reason = body.string("reason", required=False, max_length=2000, default="")
    body.done()
    decide = reclassification.approve if approve else reclassification.reject
    decided = decide(request_uow().session, request_id, actor=api_user().actor, reason=reason)
    return jsonify(_declassification_json(decided))


@api_route(
    f"/declassifications/{REQUEST_ID}/approve",
    method="POST",
    summary="Approve a declassification (administrators; never your own request)",
    tags=("systems",),
    roles=ADMINS,
    request_body=REASON_BODY,
    response=DECLASSIFICATION,
    errors=(400, 403, 404, 409),
    operation_id="approve_declassification",
)
def approve_declassification(request_id: int) -> Response:
    return _decide(request_id, approve=True)


@api_route(
    f"/declassifications/{REQUEST_ID}/reject",
    method="POST",
    summary="Reject a declassification (administrators; a reason is required)",
    tags=("systems",),
    roles=ADMINS,
    request_body=REASON_BODY,
    response=DECLASSIFICATION,
    errors=(400, 403, 404, 409),
    operation_id="reject_declassification",
)
def reject_declassification(request_id: int) -> Response:
    return _decide(request_id, approve=False)
