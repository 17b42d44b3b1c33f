"""Legacy systems (issue 6): list, one system, and the inventory import.

Operators see every department's systems and import the inventory; department users read
their own department's systems only (another department's system is a 404).
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from cloudmgr.inventory.errors import InventoryInvalid
from cloudmgr.inventory.importer import MAX_BYTES, import_inventory
from cloudmgr.inventory.models import LegacySystem, SystemState
from cloudmgr.inventory.services import SystemFilter, dependants, get_system, list_systems
from cloudmgr.organisation import services as org
from cloudmgr.organisation.models import Role
from web.api import api_route, api_user, spec
from web.api.body import Body, query_choice, query_int, query_str
from web.api.serializers import paged_list_of
from web.uow import request_uow

READERS = (Role.OPERATOR, Role.DEPT_STAFF, Role.DEPT_HEAD)
OPERATORS = (Role.OPERATOR,)
MAX_PER_PAGE = 200
MAX_PAGE = 100_000
ID = "<int(max=2147483647):system_id>"

spec.tag("systems", "Legacy systems in the departments' server rooms (the inventory) and their move to the cloud.")

_REASON = {
    "type": "object",
    "properties": {"code": {"type": "string"}, "points": {"type": "integer"}, "detail": {"type": "string"}},
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
            k: {"type": "integer"}
            for k in ("total", "created", "updated", "unchanged", "out_of_scope", "rooms_created")
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
    user = api_user()
    session = request_uow().session
    state = query_choice("state", frozenset(s.value for s in SystemState))
    scope = query_choice("scope", frozenset({"in", "out"}))
    classification = query_choice("classification", frozenset({"classified", "non_classified"}))
    page = query_int("page", default=1, minimum=1, maximum=MAX_PAGE)
    per_page = query_int("per_page", default=50, minimum=1, maximum=MAX_PER_PAGE)
    department_key = query_str("department")
    department_id = None
    if department_key is not None and not user.is_department_user:
        department_id = org.get_department(session, department_key).id  # 404 when unknown
    rows, total = list_systems(
        session,
        SystemFilter(department_id=department_id, state=state, scope=scope, classification=classification),
        actor=user.actor,
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
        result = import_inventory(request_uow().session, content, filename=filename, actor=api_user().username)
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
        }
    )
