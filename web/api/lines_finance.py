"""Line rentals and renewals (departments ask, finance decides), the contracts ending, the savings and the
network programme (issue 19), under /api/v1/lines/...  Department users see their own department's only."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from cloudmgr.lines import services as lines
from cloudmgr.lines.finance_models import BlockBasis, RentalKind, RentalState
from cloudmgr.organisation.models import Role
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body, query_choice, query_int, query_str
from web.api.spec import list_of
from web.common.lines_programme import lines_config
from web.core.uow import request_uow

DEPARTMENT_ROLES = (Role.DEPT_STAFF, Role.DEPT_HEAD)
READ_ROLES = (Role.DEPT_STAFF, Role.DEPT_HEAD, Role.FINANCE, Role.OPERATOR, Role.ADMIN)
REVIEW_ROLES = (Role.FINANCE, Role.OPERATOR, Role.ADMIN)
ID = "<int(max=2147483647):rental_id>"

TAG = spec.tag(
    "line-finance",
    "Departments' requests to rent or renew dedicated lines and finance's decisions; the contracts ending, "
    "the rent retired and the network programme against its deadline.",
)
_STR = {"type": "string"}
_INT = {"type": "integer"}
_DATE = {"type": "string", "format": "date"}
_NULL_STR = {"type": ["string", "null"]}
_MONEY = {"type": "string", "description": "yuan, two decimals"}
_END = {"type": "object", "properties": {"site": _STR, "city": _STR, "county": _STR, "township": _STR}}
FINDING = spec.schema(
    "LineRentalFinding",
    {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": ["extranet_reaches", "retire_by_rule", "cutover_planned", "classified"]},
            "severity": {"type": "string", "enum": ["flag", "info"]},
            "message": _STR,
            "places": {"type": "array", "items": _STR},
        },
    },
)
RENTAL = spec.schema(
    "LineRental",
    {
        "type": "object",
        "properties": {
            "id": _INT,
            "kind": {"type": "string", "enum": [k.value for k in RentalKind]},
            "state": {"type": "string", "enum": [s.value for s in RentalState]},
            "department": _STR,
            "line": _NULL_STR,
            "carrier": _STR,
            "line_type": _STR,
            "bandwidth_mbps": _INT,
            "a": _END,
            "b": _END,
            "monthly_rent": _MONEY,
            "contract_start": _DATE,
            "contract_end": _DATE,
            "classified": {"type": "boolean"},
            "public_facing": {"type": "boolean"},
            "purpose": _STR,
            "flagged": {"type": "boolean", "description": "a finding says the line should not be rented"},
            "findings": {"type": "array", "items": FINDING},
            "created_by": _STR,
            "created_at": {"type": "string", "format": "date-time"},
            "submitted_at": {"type": ["string", "null"], "format": "date-time"},
            "decided_by": _NULL_STR,
            "decided_at": {"type": ["string", "null"], "format": "date-time"},
            "decision_reason": _NULL_STR,
            "block_basis": {"type": ["string", "null"], "enum": [*[b.value for b in BlockBasis], None]},
        },
    },
)
_TEXT_FIELDS = (
    ("line", 64), ("carrier", 16), ("line_type", 16), ("a_site", 128), ("a_city", 64), ("a_county", 64),
    ("a_township", 64), ("b_site", 128), ("b_city", 64), ("b_county", 64), ("b_township", 64),
    ("purpose", 1000),
)  # fmt: skip


def _rental(rental_id: int, *, live: bool = True) -> Response:
    session = request_uow().session
    rental = lines.get_rental(session, api_user().actor, rental_id)
    findings = lines.rental_findings(session, rental) if live and rental.state == RentalState.SUBMITTED else None
    return jsonify(lines.rental_json(rental, findings))


@api_route(
    "/lines/rentals",
    summary="Line rental and renewal requests, newest first (a department's own only)",
    tags=(TAG,),
    roles=READ_ROLES,
    response=list_of(RENTAL),
    parameters=({"name": "state", "in": "query", "schema": {"type": "string", "enum": list(RentalState)}},),
)
def list_line_rentals() -> Response:
    state = query_choice("state", frozenset(s.value for s in RentalState))
    found = lines.list_rentals(
        request_uow().session, api_user().actor, state=RentalState(state) if state is not None else None
    )
    return jsonify({"items": [lines.rental_json(r) for r in found]})


@api_route(
    "/lines/rentals",
    method="POST",
    summary="Ask to renew one of the department's lines, or to rent a new line (a draft, or submitted)",
    tags=(TAG,),
    roles=DEPARTMENT_ROLES,
    request_body=spec.schema(
        "LineRentalCreateBody",
        {
            "type": "object",
            "required": ["kind", "monthly_rent", "contract_end"],
            "properties": {
                "kind": {"type": "string", "enum": [k.value for k in RentalKind]},
                "line": {"type": "string", "description": "renewal: the line's code"},
                "monthly_rent": _MONEY,
                "contract_start": {**_DATE, "description": "renewal: defaults to the current contract's end"},
                "contract_end": _DATE,
                **{name: _STR for name, _ in _TEXT_FIELDS if name != "line"},
                "bandwidth_mbps": _INT,
                "classified": {"type": "boolean"},
                "public_facing": {"type": "boolean"},
                "submit": {"type": "boolean", "description": "send it to finance at once (default true)"},
            },
        },
    ),
    response=RENTAL,
    status=201,
    errors=(400, 404, 409),
    description="Every problem is reported at once (400 line_rental_invalid); another department's line is "
    "not found (404).",
    operation_id="create_line_rental",
)
def create_line_rental() -> tuple[Response, int]:
    body = Body()
    kind = body.string("kind", max_length=16)
    rent = body.string("monthly_rent", max_length=20)
    end = body.string("contract_end", max_length=10)
    start = body.string("contract_start", required=False, max_length=10, default="")
    text = {name: body.string(name, required=False, max_length=limit, default="") for name, limit in _TEXT_FIELDS}
    bandwidth = body.integer("bandwidth_mbps", required=False, minimum=1, maximum=1_000_000)
    classified = body.boolean("classified", default=False)
    public = body.boolean("public_facing", default=False)
    submit = body.boolean("submit", default=True)
    body.done()
    data = lines.RentalInput(
        kind=kind, monthly_rent=rent, contract_end=end, contract_start=start, line_code=text.pop("line"),
        bandwidth_mbps=str(bandwidth) if bandwidth is not None else "", classified=classified,
        public_facing=public, **text,
    )  # fmt: skip
    rental = lines.create_rental(request_uow().session, api_user().actor, data, submit=submit, entry_point="api")
    return jsonify(lines.rental_json(rental)), 201


@api_route(
    "/lines/rentals/queue",
    summary="Requests waiting for finance, flagged first, with their live findings",
    tags=(TAG,),
    roles=REVIEW_ROLES,
    response=list_of(RENTAL),
)
def line_rental_queue() -> Response:
    rows = lines.rental_review_queue(request_uow().session, api_user().actor)
    return jsonify({"items": [lines.rental_json(row.rental, row.findings) for row in rows]})


@api_route(
    f"/lines/rentals/{ID}",
    summary="One line rental or renewal request",
    tags=(TAG,),
    roles=READ_ROLES,
    response=RENTAL,
    errors=(404,),
)
def get_line_rental(rental_id: int) -> Response:
    return _rental(rental_id)


@api_route(
    f"/lines/rentals/{ID}/submit",
    method="POST",
    summary="Send a draft to finance",
    tags=(TAG,),
    roles=DEPARTMENT_ROLES,
    response=RENTAL,
    errors=(404, 409),
)
def submit_line_rental(rental_id: int) -> Response:
    lines.submit_rental(request_uow().session, api_user().actor, rental_id, entry_point="api")
    return _rental(rental_id, live=False)


@api_route(
    f"/lines/rentals/{ID}/decide",
    method="POST",
    summary="Finance approves or blocks a submitted request (a block needs a reason)",
    tags=(TAG,),
    roles=(Role.FINANCE,),
    request_body=spec.schema(
        "LineRentalDecisionBody",
        {
            "type": "object",
            "required": ["decision"],
            "properties": {
                "decision": {"type": "string", "enum": list(lines.RENTAL_DECISIONS)},
                "reason": {"type": "string", "maxLength": lines.RENTAL_REASON_MAX},
                "basis": {"type": "string", "enum": [b.value for b in BlockBasis]},
            },
        },
    ),
    response=RENTAL,
    errors=(404, 409),
    description="Who decided, when and why are stored with the audit event; an approved renewal extends the "
    "line's contract and sets its rent.  Blocking on extranet_reaches needs that finding.",
    operation_id="decide_line_rental",
)
def decide_line_rental(rental_id: int) -> Response:
    body = Body()
    decision = body.string("decision", max_length=16)
    reason = body.string("reason", required=False, max_length=lines.RENTAL_REASON_MAX, default="")
    basis = body.string("basis", required=False, max_length=32)
    body.done()
    lines.decide_rental(
        request_uow().session, api_user().actor, rental_id, decision=decision, reason=reason, basis=basis,
        entry_point="api",
    )  # fmt: skip
    return _rental(rental_id, live=False)


_ENDING = {
    "type": "object",
    "properties": {
        "code": _STR,
        "department": _STR,
        "contract_end": _DATE,
        "days_left": {"type": "integer", "description": "negative: ended that many days ago"},
        "monthly_rent": _MONEY,
        "state": _STR,
        "target": _STR,
        "action": {"type": "string", "enum": list(lines.CONTRACT_ACTIONS)},
        "reason": _STR,
    },
}


@api_route(
    "/lines/contracts-ending",
    summary="Line contracts ending within N days (or ended, still rented) and what should happen to each",
    tags=(TAG,),
    roles=READ_ROLES,
    response=list_of(_ENDING),
    parameters=({"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 3650}},),
)
def line_contracts_ending() -> Response:
    days = query_int("days", default=lines.ENDING_DAYS, minimum=1, maximum=3650)
    rows = lines.contracts_ending(request_uow().session, lines.programme_today(), actor=api_user().actor, days=days)
    return jsonify({"items": [r.as_dict() for r in rows]})


_GROUP = {"type": "array", "items": {"type": "object"}}


@api_route(
    "/lines/savings",
    summary="Monthly rent retired (lines cut over or retired) by year, department and city",
    tags=(TAG,),
    roles=READ_ROLES,
    response=spec.schema(
        "LineSavings",
        {
            "type": "object",
            "properties": {
                "lines": _INT,
                "monthly_rent": _MONEY,
                "annual_rent": _MONEY,
                "rows": _GROUP,
                "by_year": _GROUP,
                "by_department": _GROUP,
                "by_city": _GROUP,
            },
        },
    ),
    parameters=({"name": "year", "in": "query", "schema": {"type": "integer", "minimum": 2000, "maximum": 2100}},),
)
def line_savings() -> Response:
    year = query_int("year", default=0, minimum=2000, maximum=2100) if query_str("year") else None
    report = lines.savings(request_uow().session, actor=api_user().actor, year=year)
    return jsonify(report.as_dict())


@api_route(
    "/lines/programme",
    summary="The network programme: lines and rent against the deadline by department and city, with the "
    "at-risk status, and the burndown",
    tags=(TAG,),
    roles=READ_ROLES,
    response=spec.schema(
        "LineProgramme",
        {
            "type": "object",
            "properties": {
                "summary": {"type": "object"},
                "departments": _GROUP,
                "cities": _GROUP,
                "burndown": {"type": "object"},
                "at_risk_rule": _STR,
            },
        },
    ),
    description="A department user gets their own department's lines only.",
)
def lines_programme() -> Response:
    session = request_uow().session
    actor = api_user().actor
    config = lines_config()
    today = lines.programme_today()
    figures = lines.programme_figures(session, config, today, actor=actor)
    burn = lines.programme_burndown(session, config, today, actor=actor)
    out: dict[str, Any] = {
        "summary": figures.summary(),
        "departments": [r.as_dict() for r in figures.departments],
        "cities": [r.as_dict() for r in figures.cities],
        "burndown": burn.as_dict(),
        "at_risk_rule": (
            f"lines remain, the deadline ({config.deadline.date.isoformat()}) is ahead, and at the pace of the "
            f"lines cut over or retired in the last {config.pace_days} days they would not all be done by it "
            "(no line done in that window: at risk); past the deadline: overdue"
        ),
    }
    return jsonify(out)
