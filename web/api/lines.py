"""``/api/v1/lines``: the departments' dedicated lines (issue 19): the register, one line, declaring and
importing lines, planning a line or a cut-over batch, recording a cut-over or a retirement, and the
extranet coverage.

Department users read and declare their own department's lines only (another department's line is
404).  Planning and recording are the operators'; a line carrying classified business planned onto
the extranet or the internet is refused (409, ``classified_line``) and the refusal audited, as on
every other path."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Response, jsonify

from cloudmgr.errors import ValidationFailed
from cloudmgr.lines import services as lines
from cloudmgr.lines.errors import LinesInvalid
from cloudmgr.lines.models import Carrier, LineState, LineTarget, LineType
from cloudmgr.organisation import services as org
from cloudmgr.organisation.models import Role
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body, query_choice, query_int, query_str
from web.api.serializers import paged_list_of
from web.core.uow import request_uow

DEPARTMENT_ROLES = (Role.DEPT_STAFF, Role.DEPT_HEAD)
READERS = (Role.DEPT_STAFF, Role.DEPT_HEAD, Role.OPERATOR, Role.ADMIN, Role.FINANCE)
DECLARERS = (Role.DEPT_STAFF, Role.DEPT_HEAD, Role.OPERATOR)
OPERATORS = (Role.OPERATOR,)
ID = "<int(max=2147483647):line_id>"

spec.tag("lines", "The departments' dedicated lines and their consolidation onto the e-government networks.")

_END: dict[str, Any] = {
    "type": "object",
    "properties": {
        "site": {"type": "string"},
        "city": {"type": "string"},
        "county": {"type": "string"},
        "township": {"type": "string"},
    },
}
LINE = spec.schema(
    "NetworkLine",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "code": {"type": "string"},
            "department": {"type": "string"},
            "carrier": {"type": "string", "enum": [c.value for c in Carrier]},
            "line_type": {"type": "string", "enum": [t.value for t in LineType]},
            "bandwidth_mbps": {"type": "integer"},
            "a": _END,
            "b": _END,
            "monthly_rent": {"type": "string", "description": 'Yuan, e.g. "3200.00".'},
            "contract_start": {"type": "string", "format": "date"},
            "contract_end": {"type": "string", "format": "date"},
            "declared_classified": {"type": "boolean"},
            "classified": {"type": "boolean", "description": "declared so, or a carried system is classified"},
            "public_facing": {"type": "boolean"},
            "systems": {"type": "array", "items": {"type": "string"}},
            "server_rooms": {"type": "array", "items": {"type": "string"}},
            "rule_target": {"type": "string", "enum": [t.value for t in LineTarget]},
            "target": {"type": ["string", "null"], "enum": [*(t.value for t in LineTarget), None]},
            "state": {"type": "string", "enum": [s.value for s in LineState]},
            "cutover_date": {"type": ["string", "null"], "format": "date"},
            "cut_over_at": {"type": ["string", "null"], "format": "date-time"},
            "breaks_classified_rule": {"type": "boolean"},
        },
    },
)
TEXT_FIELDS = (
    "code", "carrier", "line_type", "a_site", "a_city", "a_county", "a_township", "b_site", "b_city", "b_county",
    "b_township", "monthly_rent", "contract_start", "contract_end",
)  # fmt: skip
NEW_LINE_REQUIRED = frozenset(
    {"code", "carrier", "line_type", "a_site", "a_city", "b_site", "b_city", "monthly_rent", "contract_start",
     "contract_end"}
)  # fmt: skip


_TEXT = {"type": "string", "maxLength": 128}
NEW_LINE = spec.schema(
    "NewNetworkLine",
    {
        "type": "object",
        "required": [*sorted(NEW_LINE_REQUIRED), "bandwidth_mbps"],
        "properties": {
            "code": {"type": "string", "maxLength": 64},
            "department": {"type": "string", "maxLength": 128, "description": "operators: the department's key"},
            "carrier": {"type": "string", "enum": [c.value for c in Carrier]},
            "line_type": {"type": "string", "enum": [t.value for t in LineType]},
            "bandwidth_mbps": {"type": "integer", "minimum": 1, "maximum": 400_000},
            **{f"{end}_{part}": _TEXT for end in "ab" for part in ("site", "city", "county", "township")},
            "monthly_rent": {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"},
            "contract_start": {"type": "string", "format": "date"},
            "contract_end": {"type": "string", "format": "date"},
            "systems": {"type": "array", "items": {"type": "string", "maxLength": 128}, "maxItems": 200},
            "server_rooms": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 200},
            "classified": {"type": "boolean", "default": False},
            "public_facing": {"type": "boolean", "default": False},
        },
    },
)
IMPORT_BODY = spec.schema(
    "NetworkLineImport",
    {
        "type": "object",
        "required": ["filename", "content_base64"],
        "properties": {
            "filename": {"type": "string", "maxLength": 120, "description": "ends in .csv or .xlsx"},
            "content_base64": {"type": "string", "description": "the file, base64-encoded (at most 5 MB)"},
        },
    },
)
IMPORT_RESULT = {
    "type": "object",
    "properties": {
        "total": {"type": "integer"},
        "created": {"type": "integer"},
        "updated": {"type": "integer"},
        "unchanged": {"type": "integer"},
        "plans_cleared": {"type": "array", "items": {"type": "string"}},
    },
}
PLAN_BODY = {
    "type": "object",
    "required": ["target"],
    "properties": {
        "target": {"type": "string", "enum": [t.value for t in LineTarget]},
        "date": {"type": "string", "format": "date", "description": "the planned cut-over date"},
    },
}
BATCH_BODY = {
    "type": "object",
    "required": ["city", "date"],
    "properties": {
        "city": {"type": "string", "maxLength": 64},
        "county": {"type": "string", "maxLength": 64},
        "date": {"type": "string", "format": "date"},
    },
}
BATCH_RESULT = {
    "type": "object",
    "properties": {
        "planned": {"type": "array", "items": {"type": "string"}},
        "skipped": {"type": "array", "items": {"type": "object"}},
    },
}
COVERAGE = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "county": {"type": "string"},
                    "township": {"type": "string"},
                    "level": {"type": "string", "enum": ["city", "county", "township"]},
                    "reached": {"type": "boolean"},
                    "lines": {"type": "integer"},
                },
            },
        }
    },
}


def line_json(line: Any) -> dict[str, Any]:
    def end(prefix: str) -> dict[str, str]:
        return {part: getattr(line, f"{prefix}_{part}") for part in ("site", "city", "county", "township")}

    return {
        "id": line.id,
        "code": line.code,
        "department": line.department.key,
        "carrier": line.carrier.value,
        "line_type": line.line_type.value,
        "bandwidth_mbps": line.bandwidth_mbps,
        "a": end("a"),
        "b": end("b"),
        "monthly_rent": str(line.monthly_rent),
        "contract_start": line.contract_start.isoformat(),
        "contract_end": line.contract_end.isoformat(),
        "declared_classified": line.declared_classified,
        "classified": lines.carries_classified(line),
        "public_facing": line.public_facing,
        "systems": [s.hostname for s in line.systems],
        "server_rooms": [r.code for r in line.rooms],
        "rule_target": lines.proposed_target(line).target.value,
        "target": line.target.value if line.target else None,
        "state": line.state.value,
        "cutover_date": line.cutover_date.isoformat() if line.cutover_date else None,
        "cut_over_at": line.cut_over_at.isoformat() if line.cut_over_at else None,
        "breaks_classified_rule": lines.breaks_classified_rule(line),
    }


def _invalid(exc: LinesInvalid) -> tuple[Response, int]:
    # English, as every API message: the domain's messages read as their English text
    problems = [{"row": row, "field": str(field), "reason": str(reason)} for row, field, reason in exc.problems]
    return jsonify({"error": exc.code, "message": exc.message, "problems": problems}), 400


LIST_PARAMETERS = [
    {"name": "department", "in": "query", "schema": {"type": "string"}, "description": "operators: a department key"},
    {"name": "carrier", "in": "query", "schema": {"type": "string", "enum": [c.value for c in Carrier]}},
    {"name": "line_type", "in": "query", "schema": {"type": "string", "enum": [t.value for t in LineType]}},
    {"name": "state", "in": "query", "schema": {"type": "string", "enum": [s.value for s in LineState]}},
    {"name": "target", "in": "query", "schema": {"type": "string", "enum": [t.value for t in LineTarget]}},
    {"name": "city", "in": "query", "schema": {"type": "string", "maxLength": 64}},
    {"name": "county", "in": "query", "schema": {"type": "string", "maxLength": 64}},
    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 64}, "description": "code, site or place"},
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}},
]


@api_route(
    "/lines",
    summary="List dedicated lines with their target by rule",
    description="Department users see their department's lines only.",
    tags=("lines",),
    roles=READERS,
    parameters=LIST_PARAMETERS,
    response=paged_list_of(LINE),
    operation_id="list_lines",
)
def list_network_lines() -> Response:
    session = request_uow().session
    department_id = None
    department_key = query_str("department", max_length=128)
    if department_key is not None:
        found = {d.key: d.id for d in org.list_departments(session)}
        if department_key not in found:
            raise ValidationFailed(f"department {department_key[:64]!r} is unknown")
        department_id = found[department_key]
    carrier = query_choice("carrier", frozenset(Carrier))
    line_type = query_choice("line_type", frozenset(LineType))
    state = query_choice("state", frozenset(LineState))
    target = query_choice("target", frozenset(LineTarget))
    flt = lines.LineFilter(
        department_id=department_id,
        carrier=Carrier(carrier) if carrier else None,
        line_type=LineType(line_type) if line_type else None,
        state=LineState(state) if state else None,
        target=LineTarget(target) if target else None,
        city=query_str("city"),
        county=query_str("county"),
        search=query_str("q"),
    )
    page = query_int("page", default=1, minimum=1, maximum=100_000)
    per_page = query_int("per_page", default=25, minimum=1, maximum=100)
    rows = lines.list_lines(session, flt, actor=api_user().actor)
    shown = rows[(page - 1) * per_page : page * per_page]
    return jsonify({"items": [line_json(x) for x in shown], "total": len(rows), "page": page, "per_page": per_page})


@api_route(
    f"/lines/{ID}",
    summary="One dedicated line",
    tags=("lines",),
    roles=READERS,
    response=LINE,
    errors=(404,),
    operation_id="get_line",
)
def get_network_line(line_id: int) -> Response:
    return jsonify(line_json(lines.get_line_by_id(request_uow().session, line_id, actor=api_user().actor)))


def _names(body: Body, name: str) -> str:
    value = body.raw(name, required=False)
    if value is None:
        return ""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 200:
        body.problem(f"{name} must be a list of at most 200 strings")
        return ""
    return " ".join(value)


@api_route(
    "/lines",
    method="POST",
    summary="Declare one dedicated line",
    description=(
        "Checked like an imported row; the 400 answer lists every problem in `problems` ([{row, field, reason}], "
        "in English). Department users declare their own department's lines (department is theirs)."
    ),
    tags=("lines",),
    roles=DECLARERS,
    request_body=NEW_LINE,
    response=LINE,
    status=201,
    operation_id="create_line",
)
def create_network_line() -> tuple[Response, int]:
    body = Body()
    user = api_user()
    values: dict[str, Any] = {
        key: body.string(key, required=key in NEW_LINE_REQUIRED, max_length=128, default="") for key in TEXT_FIELDS
    }
    department = body.string("department", required=False, max_length=128)
    if user.department is not None:
        department = department or user.department.key
    elif department is None:
        body.problem("department is required")
    values["department"] = department or ""
    bandwidth = body.integer("bandwidth_mbps", minimum=1, maximum=400_000)
    values["bandwidth_mbps"] = bandwidth if bandwidth is not None else ""
    values["systems"] = _names(body, "systems")
    values["server_rooms"] = _names(body, "server_rooms")
    values["classified"] = "是" if body.boolean("classified", default=False) else "否"
    values["public_facing"] = "是" if body.boolean("public_facing", default=False) else "否"
    body.done()
    try:
        line = lines.declare_line(request_uow().session, values, actor=user.actor, entry_point="api")
    except LinesInvalid as exc:
        return _invalid(exc)
    return jsonify(line_json(line)), 201


@api_route(
    "/lines/import",
    method="POST",
    summary="Import a CSV or XLSX file of lines (every line or none)",
    description=(
        "Every row is checked first; when one is wrong nothing is imported and the 400 answer lists every problem "
        "in `problems` ([{row, field, reason}], in English; row 0 is the file). Re-importing updates lines in place."
    ),
    tags=("lines",),
    roles=DECLARERS,
    request_body=IMPORT_BODY,
    response=IMPORT_RESULT,
    operation_id="import_lines",
)
def import_network_lines() -> Response | tuple[Response, int]:
    body = Body()
    filename = body.string("filename", max_length=120)
    encoded = body.string("content_base64", max_length=(lines.MAX_IMPORT_BYTES * 4) // 3 + 8)
    body.done()
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("content_base64 is not base64") from None
    try:
        result = lines.import_lines(
            request_uow().session, data, filename=filename, actor=api_user().actor, entry_point="lines.import.api"
        )
    except LinesInvalid as exc:
        return _invalid(exc)
    return jsonify(
        {
            "total": result.total,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "plans_cleared": result.plans_cleared,
        }
    )


@api_route(
    f"/lines/{ID}/plan",
    method="POST",
    summary="Plan a line's cut-over onto a target",
    description=(
        "A line carrying classified business may go only to the intranet or be retired: planning it onto the "
        "extranet or the internet is refused (409, classified_line) and audited."
    ),
    tags=("lines",),
    roles=OPERATORS,
    request_body=PLAN_BODY,
    response=LINE,
    errors=(404, 409),
    operation_id="plan_line",
)
def plan_network_line(line_id: int) -> Response:
    body = Body()
    target = body.string("target", max_length=16)
    on = body.date("date", required=False)
    body.done()
    session = request_uow().session
    actor = api_user().actor
    line = lines.get_line_by_id(session, line_id, actor=actor)
    chosen = lines.parse_target(target)
    return jsonify(line_json(lines.plan_line(session, line.code, chosen, actor=actor, entry_point="api", on=on)))


@api_route(
    "/lines/batches",
    method="POST",
    summary="Plan a cut-over batch: every line in service ending in a city (county) onto its target by rule",
    tags=("lines",),
    roles=OPERATORS,
    request_body=BATCH_BODY,
    response=BATCH_RESULT,
    errors=(404, 409),
    operation_id="plan_line_batch",
)
def plan_network_line_batch() -> Response:
    body = Body()
    city = body.string("city", max_length=64)
    county = body.string("county", required=False, max_length=64)
    on = body.date("date")
    body.done()
    result = lines.plan_batch(
        request_uow().session, city=city, county=county or None, on=on, actor=api_user().actor, entry_point="api"
    )
    return jsonify({"planned": result.planned, "skipped": [{"code": code, "why": why} for code, why in result.skipped]})


@api_route(
    f"/lines/{ID}/record",
    method="POST",
    summary="Record that a planned line was cut over onto its target (or retired, when its target is retire)",
    tags=("lines",),
    roles=OPERATORS,
    response=LINE,
    errors=(404, 409),
    operation_id="record_line",
)
def record_network_line(line_id: int) -> Response:
    Body(optional=True).done()
    session = request_uow().session
    actor = api_user().actor
    line = lines.get_line_by_id(session, line_id, actor=actor)
    return jsonify(line_json(lines.record_cutover(session, line.code, actor=actor, entry_point="api")))


@api_route(
    "/lines/coverage",
    summary="Whether the e-government extranet reaches each city, county and township",
    tags=("lines",),
    roles=(Role.OPERATOR, Role.ADMIN, Role.FINANCE),
    response=COVERAGE,
    operation_id="line_coverage",
)
def network_line_coverage() -> Response:
    rows = lines.extranet_coverage(request_uow().session)
    return jsonify(
        {
            "items": [
                {
                    "city": r.place.city,
                    "county": r.place.county,
                    "township": r.place.township,
                    "level": r.place.level,
                    "reached": r.reached,
                    "lines": r.lines,
                }
                for r in rows
            ]
        }
    )
