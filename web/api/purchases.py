"""``/api/v1/purchases``: hardware purchase requests, their findings and finance's decision;
``/api/v1/purchase-reports`` and ``/api/v1/showback``."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Response, jsonify, request

from cloudmgr.organisation.models import Role
from cloudmgr.paging import MAX_QUERY
from cloudmgr.purchases import reports, services, showback
from cloudmgr.purchases.models import BlockBasis, Category, PurchaseRequest, PurchaseState
from cloudmgr.purchases.services import ItemInput, PurchaseFilter, PurchaseForm
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body, query_choice, query_int, query_str
from web.api.serializers import paged_list_of
from web.api.spec import JSON, list_of
from web.core.uow import request_uow, runtime

DEPARTMENT_ROLES = (Role.DEPT_STAFF, Role.DEPT_HEAD)
READ_ROLES = (Role.DEPT_STAFF, Role.DEPT_HEAD, Role.FINANCE, Role.OPERATOR, Role.ADMIN)
ID = "<int(max=2147483647):purchase_id>"

spec.tag("purchases", "Hardware purchase requests, checked against what the cloud already provides.")

_MONEY: JSON = {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$", "description": 'Yuan, e.g. "45000.00".'}
_ITEM: JSON = {
    "type": "object",
    "required": ["description", "quantity", "unit_price"],
    "properties": {
        "description": {"type": "string", "maxLength": 255},
        "vcpus": {"type": "integer", "minimum": 0},
        "ram_gb": {"type": "integer", "minimum": 0},
        "disk_gb": {"type": "integer", "minimum": 0},
        "quantity": {"type": "integer", "minimum": 1},
        "unit_price": _MONEY,
    },
}
FINDING = spec.schema(
    "PurchaseFinding",
    {
        "type": "object",
        "properties": {
            "kind": {"type": "string"},
            "severity": {"type": "string", "enum": ["block", "warn", "info"]},
            "summary": {"type": "string"},
            "evidence": {"type": "object"},
        },
    },
)
PURCHASE = spec.schema(
    "Purchase",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "department": {"type": "string"},
            "title": {"type": "string"},
            "category": {"type": "string", "enum": [c.value for c in Category]},
            "amount_yuan": _MONEY,
            "application_system": {"type": "string"},
            "legacy_hostname": {"type": ["string", "null"]},
            "classified": {"type": "boolean"},
            "justification": {"type": "string"},
            "state": {"type": "string", "enum": [s.value for s in PurchaseState]},
            "state_reason": {"type": ["string", "null"]},
            "block_basis": {"type": ["string", "null"]},
            "offer": {"type": ["object", "null"]},
            "findings_score": {"type": "integer"},
            "items": {"type": "array", "items": _ITEM},
            "findings": {"type": "array", "items": FINDING},
            "findings_pending": {
                "type": "boolean",
                "description": "the findings still wait for the clouds' live capacity (read within seconds)",
            },
            "attachments": {"type": "array", "items": {"type": "object"}},
            "events": {"type": "array", "items": {"type": "object"}},
            "service_request_id": {"type": ["integer", "null"]},
            "created_by": {"type": "string"},
            "submitted_at": {"type": ["string", "null"], "format": "date-time"},
            "decided_by": {"type": ["string", "null"]},
            "decided_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
)
NEW_PURCHASE = spec.schema(
    "NewPurchase",
    {
        "type": "object",
        "required": ["title", "category", "amount_yuan", "application_system", "justification", "items"],
        "properties": {
            "title": {"type": "string", "maxLength": 200},
            "category": {"type": "string", "enum": [c.value for c in Category]},
            "amount_yuan": _MONEY,
            "application_system": {"type": "string", "maxLength": 128},
            "legacy_hostname": {"type": ["string", "null"], "maxLength": 128},
            "classified": {"type": "boolean", "default": False},
            "justification": {"type": "string", "maxLength": 4000},
            "items": {"type": "array", "items": _ITEM, "minItems": 1, "maxItems": services.MAX_ITEMS},
            "submit": {"type": "boolean", "default": False},
        },
    },
)
DECISION = spec.schema(
    "PurchaseDecision",
    {
        "type": "object",
        "required": ["decision"],
        "properties": {
            "decision": {"type": "string", "enum": list(services.DECISIONS)},
            "reason": {"type": "string", "maxLength": services.REASON_MAX},
            "basis": {"type": "string", "enum": [b.value for b in BlockBasis]},
        },
    },
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def purchase_json(p: PurchaseRequest, *, detail: bool = False) -> dict[str, Any]:
    user = api_user()
    data: dict[str, Any] = {
        "id": p.id,
        "department": p.department.key,
        "title": p.title,
        "category": p.category,
        "amount_yuan": str(p.amount_yuan),
        "application_system": p.application_system,
        "state": p.state,
        "state_reason": p.state_reason,
        "block_basis": p.block_basis,
        "findings_score": p.findings_score,
        "submitted_at": _iso(p.submitted_at),
        "decided_by": p.decided_by,
        "decided_at": _iso(p.decided_at),
        "findings": [
            {
                "kind": f.kind,
                "severity": f.severity,
                "summary": f.summary,
                "evidence": services.finding_evidence_for(user.actor, f.kind, f.evidence),
            }
            for f in p.findings
        ],
    }
    if detail:
        data.update(
            findings_pending=services.live_findings_pending(request_uow().session, p),
            legacy_hostname=p.legacy_hostname,
            classified=p.classified,
            justification=p.justification,
            offer=p.offer,
            service_request_id=p.service_request_id,
            created_by=p.created_by,
            items=[
                {
                    "description": i.description,
                    "vcpus": i.vcpus,
                    "ram_gb": i.ram_gb,
                    "disk_gb": i.disk_gb,
                    "quantity": i.quantity,
                    "unit_price": str(i.unit_price),
                }
                for i in p.items
            ],
            attachments=[
                {"file_name": a.file_name, "size_bytes": a.size_bytes, "sha256": a.sha256, "added_by": a.added_by}
                for a in p.attachments
            ],
            events=[
                {
                    "at": _iso(e.at),
                    "actor": e.actor,
                    "action": e.action,
                    "from": e.from_state,
                    "to": e.to_state,
                    "reason": e.reason,
                }
                for e in p.events
            ],
        )
    return data


def _money(value: Any, name: str, body: Body) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        body.problem(f'{name} must be a string of yuan, e.g. "120.50"')
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        body.problem(f"{name} is not an amount of yuan")
        return None


def _int(raw: dict[str, Any], key: str, where: str, body: Body, default: int | None = 0) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31 - 1:
        body.problem(f"{where}.{key} must be a whole number")
        return 0
    return value


def _items(raw: Any, body: Body) -> list[ItemInput]:
    if not isinstance(raw, list):
        body.problem("items must be a list")
        return []
    if len(raw) > services.MAX_ITEMS:
        body.problem(f"at most {services.MAX_ITEMS} items")
        return []
    items = []
    allowed = {"description", "vcpus", "ram_gb", "disk_gb", "quantity", "unit_price"}
    for n, entry in enumerate(raw, start=1):
        where = f"items[{n}]"
        if not isinstance(entry, dict):
            body.problem(f"{where} must be an object")
            continue
        unknown = sorted(set(entry) - allowed)
        if unknown:
            body.problem(f"{where}: unknown field(s): {', '.join(k[:64] for k in unknown[:10])}")
        description = entry.get("description")
        if not isinstance(description, str) or len(description) > 255:
            body.problem(f"{where}.description must be a string of at most 255 characters")
            description = ""
        price = _money(entry.get("unit_price"), f"{where}.unit_price", body)
        if price is None and "unit_price" not in entry:
            body.problem(f"{where}.unit_price is required")
        items.append(
            ItemInput(
                description=description,
                quantity=_int(entry, "quantity", where, body, default=None),
                unit_price=price if price is not None else Decimal(0),
                vcpus=_int(entry, "vcpus", where, body),
                ram_gb=_int(entry, "ram_gb", where, body),
                disk_gb=_int(entry, "disk_gb", where, body),
            )
        )
    return items


def _form(body: Body) -> PurchaseForm:
    title = body.string("title", max_length=services.TITLE_MAX)
    category = body.string("category", max_length=16)
    amount = _money(body._get("amount_yuan", True), "amount_yuan", body)
    application_system = body.string("application_system", max_length=128)
    legacy = body.string("legacy_hostname", required=False, max_length=128)
    classified = body.boolean("classified", default=False)
    justification = body.string("justification", max_length=services.TEXT_MAX)
    raw_items = body._get("items", True)
    items = _items(raw_items, body) if raw_items is not None else []
    return PurchaseForm(
        title=title or "",
        category=category or "",
        amount_yuan=amount if amount is not None else Decimal(0),
        application_system=application_system or "",
        justification=justification or "",
        items=items,
        legacy_hostname=legacy,
        classified=classified,
    )


def _context() -> services.FindingContext:
    rt = runtime()
    return services.context_for(rt.settings)


LIST_PARAMETERS: list[JSON] = [
    {"name": "state", "in": "query", "schema": {"type": "string", "enum": [s.value for s in PurchaseState]}},
    {"name": "category", "in": "query", "schema": {"type": "string", "enum": [c.value for c in Category]}},
    {"name": "department", "in": "query", "schema": {"type": "string"}, "description": "finance, operators"},
    {
        "name": "q",
        "in": "query",
        "schema": {"type": "string", "maxLength": 100},
        "description": "Words to search for (every word must be found), as the list page's search box.",
    },
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}},
]


@api_route(
    "/purchases",
    summary="List purchase requests",
    description="Newest first. Department users see their department's only.",
    tags=("purchases",),
    roles=READ_ROLES,
    parameters=LIST_PARAMETERS,
    response=paged_list_of(PURCHASE),
    errors=(404,),
    operation_id="list_purchases",
)
def list_purchases() -> Response:
    state = query_choice("state", frozenset(PurchaseState))
    category = query_choice("category", frozenset(Category))
    page = query_int("page", default=1, minimum=1, maximum=100_000)
    per_page = query_int("per_page", default=25, minimum=1, maximum=100)
    department_key = query_str("department")
    rows, total = services.list_purchases(
        request_uow().session,
        api_user().actor,
        PurchaseFilter(
            state=state,
            category=category,
            department_key=department_key,
            page=page,
            per_page=per_page,
            q=query_str("q", max_length=MAX_QUERY),
        ),
    )
    return jsonify({"items": [purchase_json(p) for p in rows], "total": total, "page": page, "per_page": per_page})


@api_route(
    "/purchases",
    method="POST",
    summary="Create a purchase request (a draft, or submitted at once with its findings)",
    description="The amount must be the sum of quantity x unit_price over the items.",
    tags=("purchases",),
    roles=DEPARTMENT_ROLES,
    request_body=NEW_PURCHASE,
    response=PURCHASE,
    status=201,
    operation_id="create_purchase",
)
def create_purchase() -> tuple[Response, int]:
    body = Body()
    form = _form(body)
    submit = body.boolean("submit", default=False)
    body.done()
    created = services.create_purchase(
        request_uow().session, api_user().actor, form, submit=submit, context=_context() if submit else None
    )
    return jsonify(purchase_json(created, detail=True)), 201


@api_route(
    f"/purchases/{ID}",
    method="PUT",
    summary="Change a draft or a returned purchase request (its author only), and submit it at once with submit",
    description=(
        "The creation's body and checks (the amount must be the sum of the items).  403 for anyone but its "
        "author, 404 for another department's, 409 once it is with finance or decided."
    ),
    tags=("purchases",),
    roles=DEPARTMENT_ROLES,
    request_body=NEW_PURCHASE,
    response=PURCHASE,
    errors=(403, 404, 409),
    operation_id="update_purchase",
)
def update_purchase(purchase_id: int) -> Response:
    body = Body()
    form = _form(body)
    submit = body.boolean("submit", default=False)
    body.done()
    session, actor = request_uow().session, api_user().actor
    purchase = services.update_purchase(session, actor, purchase_id, form)
    if submit:
        purchase = services.submit_purchase(session, actor, purchase_id, context=_context())
    return jsonify(purchase_json(purchase, detail=True))


@api_route(
    "/purchase-queue",
    summary="The finance review queue",
    description="Pending purchase requests, strongest findings first (sort=amount: largest amount first).",
    tags=("purchases",),
    roles=(Role.FINANCE, Role.OPERATOR, Role.ADMIN),
    parameters=[{"name": "sort", "in": "query", "schema": {"type": "string", "enum": list(services.QUEUE_SORTS)}}],
    response=list_of(PURCHASE),
    operation_id="purchase_queue",
)
def purchase_queue() -> Response:
    sort = query_choice("sort", frozenset(services.QUEUE_SORTS)) or "findings"
    rows = services.review_queue(request_uow().session, api_user().actor, sort=sort)
    return jsonify({"items": [purchase_json(p) for p in rows]})


@api_route(
    f"/purchases/{ID}",
    summary="One purchase request with its items, findings, attachments and history",
    tags=("purchases",),
    roles=READ_ROLES,
    response=PURCHASE,
    errors=(404,),
    operation_id="get_purchase",
)
def get_purchase(purchase_id: int) -> Response:
    return jsonify(
        purchase_json(services.get_purchase(request_uow().session, api_user().actor, purchase_id), detail=True)
    )


@api_route(
    f"/purchases/{ID}/submit",
    method="POST",
    summary="Submit a draft, or resubmit a returned purchase request; computes the findings",
    tags=("purchases",),
    roles=DEPARTMENT_ROLES,
    response=PURCHASE,
    errors=(404, 409),
    operation_id="submit_purchase",
)
def submit_purchase(purchase_id: int) -> Response:
    Body(optional=True).done()
    purchase = services.submit_purchase(request_uow().session, api_user().actor, purchase_id, context=_context())
    return jsonify(purchase_json(purchase, detail=True))


@api_route(
    f"/purchases/{ID}/decide",
    method="POST",
    summary="Finance approves, blocks (reason required) or returns (reason required) a purchase request",
    tags=("purchases",),
    roles=(Role.FINANCE,),
    request_body=DECISION,
    response=PURCHASE,
    errors=(404, 409),
    operation_id="decide_purchase",
)
def decide_purchase(purchase_id: int) -> Response:
    body = Body()
    decision = body.string("decision", max_length=16)
    reason = body.string("reason", required=False, max_length=services.REASON_MAX, default="")
    basis = body.string("basis", required=False, max_length=16)
    body.done()
    purchase = services.decide_purchase(
        request_uow().session, api_user().actor, purchase_id, decision=decision, reason=reason, basis=basis
    )
    return jsonify(purchase_json(purchase, detail=True))


@api_route(
    f"/purchases/{ID}/vm-draft",
    method="POST",
    summary="Turn the cloud offer of a purchase blocked because the cloud provides it into a VM request draft",
    tags=("purchases",),
    roles=DEPARTMENT_ROLES,
    response={"type": "object", "properties": {"request_id": {"type": "integer"}}},
    status=201,
    errors=(404, 409),
    operation_id="purchase_vm_draft",
)
def purchase_vm_draft(purchase_id: int) -> tuple[Response, int]:
    Body(optional=True).done()
    draft = services.make_vm_draft(request_uow().session, api_user().actor, purchase_id, settings=runtime().settings)
    return jsonify({"request_id": draft.id, "state": draft.state}), 201


def _year() -> int | None:
    raw = request.args.get("year")
    if raw in (None, ""):
        return None
    return query_int("year", default=0, minimum=2000, maximum=2100)


@api_route(
    "/purchase-reports",
    summary="Approved and blocked amounts by year, department and category; money not spent thanks to the cloud",
    tags=("purchases",),
    roles=READ_ROLES,
    parameters=[{"name": "year", "in": "query", "schema": {"type": "integer", "minimum": 2000, "maximum": 2100}}],
    response={"type": "object"},
    operation_id="purchase_reports",
)
def purchase_reports() -> Response:
    report = reports.purchase_report(request_uow().session, api_user().actor, year=_year())
    return jsonify(
        {
            "year": report.year,
            "approved_yuan": str(report.approved_yuan),
            "blocked_yuan": str(report.blocked_yuan),
            "saved_by_cloud_yuan": str(report.saved_by_cloud_yuan),
            "cloud_monthly_yuan": str(report.cloud_monthly_yuan),
            "items": [
                {
                    "year": r.year,
                    "department": r.department_key,
                    "category": r.category,
                    "approved_count": r.approved_count,
                    "approved_yuan": str(r.approved_yuan),
                    "blocked_count": r.blocked_count,
                    "blocked_yuan": str(r.blocked_yuan),
                    "saved_by_cloud_yuan": str(r.saved_by_cloud_yuan),
                    "cloud_monthly_yuan": str(r.cloud_monthly_yuan),
                }
                for r in report.rows
            ],
        }
    )


@api_route(
    "/showback",
    summary="Monthly cost per department and cloud at the catalog's rates",
    tags=("purchases",),
    roles=READ_ROLES,
    response=list_of({"type": "object"}),
    operation_id="showback",
)
def showback_report() -> Response:
    rate = showback.backup_rate(runtime().settings.rates_file)
    report = showback.showback(request_uow().session, api_user().actor, backup_gb_price=rate)
    return jsonify(
        {
            "monthly_yuan": str(report.monthly_yuan),
            "servers_yuan": str(report.servers_yuan),
            "volumes_yuan": str(report.volumes_yuan),
            "addresses_yuan": str(report.addresses_yuan),
            "backups_yuan": str(report.backups_yuan),
            "backup_gb_price": None if report.backup_gb_price is None else str(report.backup_gb_price),
            "unattributed_yuan": str(report.unattributed_yuan),
            "departments": [
                {
                    "department": t.department_key,
                    "servers_yuan": str(t.servers_yuan),
                    "volumes_yuan": str(t.volumes_yuan),
                    "addresses_yuan": str(t.addresses_yuan),
                    "backups_yuan": str(t.backups_yuan),
                    "unattributed_yuan": str(t.unattributed_yuan),
                    "monthly_yuan": str(t.monthly_yuan),
                }
                for t in report.by_department()
            ],
            "items": [
                {
                    "department": r.department_key,
                    "cloud": r.cloud_key,
                    "servers": r.servers,
                    "server_vcpus": r.server_vcpus,
                    "server_ram_mb": r.server_ram_mb,
                    "servers_yuan": str(r.servers_yuan),
                    "volumes": r.volumes,
                    "volume_gb": r.volume_gb,
                    "volumes_yuan": str(r.volumes_yuan),
                    "addresses": r.addresses,
                    "addresses_yuan": str(r.addresses_yuan),
                    "backups": r.backups,
                    "backup_gb": r.backup_gb,
                    "backups_yuan": str(r.backups_yuan),
                    "ledger_cores": r.ledger_cores,
                    "ledger_ram_mb": r.ledger_ram_mb,
                    "ledger_instances": r.ledger_instances,
                    "unattributed_cores": r.unattributed_cores,
                    "unattributed_yuan": str(r.unattributed_yuan),
                    "monthly_yuan": str(r.monthly_yuan),
                }
                for r in report.rows
            ],
        }
    )
