"""``/api/v1/requests``: self-service VM requests, their approval and a quote before submitting."""

from __future__ import annotations

import dataclasses

from flask import Response, jsonify

from cloudmgr.firewall.services import MAX_RULES, parse_rules
from cloudmgr.organisation.models import Role
from cloudmgr.paging import MAX_QUERY
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.services import MAX_COUNT, USER_DATA_MAX_BYTES, DataDisk, RequestFilter, RequestForm
from cloudmgr.servicerequests.states import RequestState
from web.api.blueprint import api_route, api_user, spec
from web.api.body import MAX_ID, Body, query_choice, query_int, query_str
from web.api.serializers import QUOTE, REQUEST_DETAIL, paged_list_of, quote_json, request_json
from web.api.serializers import REQUEST as REQUEST_SCHEMA
from web.api.spec import JSON
from web.common import listcache
from web.core.uow import request_uow, runtime

DEPARTMENT_ROLES = (Role.DEPT_STAFF, Role.DEPT_HEAD)
APPROVER_ROLES = (Role.DEPT_HEAD, Role.OPERATOR, Role.FINANCE)
MAX_PER_PAGE = 100
MAX_PAGE = 100_000
REASON_MAX = 2000
ID = "<int(max=2147483647):request_id>"
MAX_TEMPLATES = 20

spec.tag("requests", "Self-service VM requests: create, quote, approve, reject, cancel.")

_FORM_PROPERTIES: JSON = {
    "cloud": {"type": "string", "description": "The cloud's key, one of the department's clouds."},
    "zone": {"type": "string", "enum": ["internet", "extranet"]},
    "flavor": {"type": "integer", "description": "A flavor's catalog item id (GET /catalog)."},
    "image": {"type": "integer", "description": "An image's catalog item id (GET /catalog)."},
    "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
    "name_prefix": {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,30}$"},
    "justification": {"type": "string", "maxLength": 4000},
    "expires_on": {"type": "string", "format": "date"},
    "application_system": {"type": ["string", "null"], "maxLength": 128},
    "legacy_system_id": {
        "type": ["integer", "null"],
        "description": "The department's legacy system the servers replace (GET /systems); a classified one is "
        "refused with 409 `classified_system`.",
    },
}
_FORM_PROPERTIES.update(
    {
        "ssh_key_id": {
            "type": ["integer", "null"],
            "description": "One of your SSH keys (GET /keys), put on every server; another user's key is not found.",
        },
        "user_data": {
            "type": ["string", "null"],
            "description": f"cloud-init user data, at most {USER_DATA_MAX_BYTES // 1024} KiB in UTF-8, no NUL.",
        },
        "data_disks": {
            "type": "array",
            "maxItems": sr.MAX_DISKS_PER_VM,
            "description": "Each server's data disks; the price is per GB-month of the type (GET /catalog, "
            "kind `volume`).",
            "items": {
                "type": "object",
                "required": ["size_gb", "volume_type"],
                "properties": {
                    "size_gb": {"type": "integer", "minimum": 1, "maximum": sr.MAX_DISK_GB},
                    "volume_type": {"type": "string", "description": "The cloud's name of an offered volume type."},
                },
            },
        },
        "public_address": {
            "type": "boolean",
            "default": False,
            "description": "A public (floating) address for every server; only in the internet zone.",
        },
        "firewall_template_ids": {
            "type": "array",
            "maxItems": MAX_TEMPLATES,
            "description": "Firewall templates (GET /firewall/templates), each by its id or its name.",
            "items": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 64}]},
        },
        "firewall_rules": {
            "type": "array",
            "maxItems": MAX_RULES,
            "description": "Rules of the department's own, each {direction, protocol, port_min, port_max, remote}; "
            "a bad one is 400 `firewall_rule_invalid` naming it (`firewall_rules[1].port_min`).  With no template "
            "and no rule the servers are put in the project's default security group.  A rule open to the whole "
            "internet adds the "
            "operator's approval on the internet zone and is refused (400) on the extranet.",
            "items": {
                "type": "object",
                "required": ["direction", "protocol", "remote"],
                "properties": {
                    "direction": {"type": "string", "enum": ["ingress", "egress"]},
                    "protocol": {"type": "string", "enum": ["tcp", "udp", "icmp", "any"]},
                    "port_min": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
                    "port_max": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
                    "remote": {"type": "string", "description": "A CIDR, department_admin_network or department_only."},
                },
            },
        },
    }
)
_FORM_REQUIRED = ["cloud", "zone", "flavor", "image", "count", "name_prefix", "justification", "expires_on"]
QUOTE_BODY = spec.schema("QuoteBody", {"type": "object", "required": _FORM_REQUIRED, "properties": _FORM_PROPERTIES})
NEW_REQUEST = spec.schema(
    "NewRequest",
    {
        "type": "object",
        "required": _FORM_REQUIRED,
        "properties": {
            **_FORM_PROPERTIES,
            "submit": {"type": "boolean", "default": False, "description": "Submit at once (else a draft)."},
        },
    },
)

LIST_PARAMETERS: list[JSON] = [
    {"name": "state", "in": "query", "schema": {"type": "string", "enum": [s.value for s in RequestState]}},
    {"name": "cloud", "in": "query", "schema": {"type": "string"}, "description": "A cloud's key."},
    {
        "name": "department",
        "in": "query",
        "schema": {"type": "string"},
        "description": "A department's key (operators, finance; department users always get their own).",
    },
    {
        "name": "q",
        "in": "query",
        "schema": {"type": "string", "maxLength": 100},
        "description": "Words to search for (every word must be found), as the list page's search box.",
    },
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}},
]


def _template_refs(body: Body) -> tuple[int | str, ...]:
    raw = body.raw("firewall_template_ids", required=False)
    if raw is None:
        return ()
    valid = isinstance(raw, list) and len(raw) <= MAX_TEMPLATES
    refs: list[int | str] = []
    for ref in raw if valid else ():
        number = isinstance(ref, int) and not isinstance(ref, bool) and 1 <= ref <= MAX_ID
        name = isinstance(ref, str) and 0 < len(ref) <= 64
        if number or name:
            refs.append(ref)
        else:
            valid = False
    if not valid:
        body.problem(f"firewall_template_ids must be a list of at most {MAX_TEMPLATES} template ids or names")
    return tuple(refs)


def _request_form(body: Body) -> RequestForm | None:
    """The form read from ``body``; the firewall's rules are parsed after :meth:`Body.done`
    (see :func:`_with_rules`), so their refusal names the rule and field."""
    form = {
        "cloud_key": body.string("cloud", max_length=64),
        "zone": body.string("zone", max_length=16),
        "flavor_item_id": body.integer("flavor", minimum=1, maximum=MAX_ID),
        "image_item_id": body.integer("image", minimum=1, maximum=MAX_ID),
        "count": body.integer("count", minimum=1, maximum=MAX_COUNT),
        "name_prefix": body.string("name_prefix", max_length=64),
        "justification": body.string("justification", max_length=4000),
        "expires_on": body.date("expires_on"),
        "application_system": body.string("application_system", required=False, max_length=128),
        "legacy_system_id": body.integer("legacy_system_id", required=False, minimum=1, maximum=MAX_ID),
    }
    form["ssh_key_id"] = body.integer("ssh_key_id", required=False, minimum=1, maximum=MAX_ID)
    # Longer than the service's limit in bytes, so the service names the problem (in KiB, UTF-8).
    form["user_data"] = body.string("user_data", required=False, max_length=4 * USER_DATA_MAX_BYTES)
    form["data_disks"] = _data_disks(body)
    form["public_address"] = body.boolean("public_address", default=False)
    form["firewall_templates"] = _template_refs(body)
    body.raw("firewall_rules", required=False)  # read by _with_rules once the rest is checked
    if body.problems:
        return None
    return RequestForm(**form)


def _with_rules(body: Body, form: RequestForm | None) -> RequestForm:
    """``form`` with its firewall rules (RuleInvalid, 400, names the rule and field)."""
    assert form is not None
    rules = parse_rules(body.raw("firewall_rules", required=False), "firewall_rules")
    return dataclasses.replace(form, firewall_rules=tuple(rules))


def _data_disks(body: Body) -> tuple[DataDisk, ...]:
    # Twice the limit still reaches the service, which says how many a VM may have.
    disks = []
    for number, raw in enumerate(body.object_list("data_disks", max_items=2 * sr.MAX_DISKS_PER_VM), start=1):
        field = f"data_disks[{number}]"
        unknown = sorted(set(raw) - {"size_gb", "volume_type"})
        if unknown:
            body.problem(f"{field}: unknown field(s): {', '.join(k[:64] for k in unknown[:10])}")
        size, volume_type = raw.get("size_gb"), raw.get("volume_type")
        if isinstance(size, bool) or not isinstance(size, int):
            body.problem(f"{field}.size_gb must be an integer")
        elif not isinstance(volume_type, str) or not volume_type or len(volume_type) > 255:
            body.problem(f"{field}.volume_type must be a volume type's name")
        else:
            disks.append(DataDisk(size_gb=size, volume_type_name=volume_type))
    return tuple(disks)


@api_route(
    "/requests",
    summary="List requests",
    description="Newest first. Department users see their department's requests only.",
    tags=("requests",),
    parameters=LIST_PARAMETERS,
    response=paged_list_of(REQUEST_SCHEMA),
    errors=(404,),
)
def list_requests() -> Response:
    user = api_user()
    session = request_uow().session
    state = query_choice("state", frozenset(RequestState))
    cloud = query_str("cloud")
    page = query_int("page", default=1, minimum=1, maximum=MAX_PAGE)
    per_page = query_int("per_page", default=25, minimum=1, maximum=MAX_PER_PAGE)
    # 404 when unknown; ignored for a department user (the service says whose requests are listed).
    department_id = sr.department_filter(session, user.actor, query_str("department"))
    listing = listcache.RequestPage.read(
        session,
        user.actor,
        RequestFilter(
            state=state,
            cloud_key=cloud,
            department_id=department_id,
            page=page,
            per_page=per_page,
            q=query_str("q", max_length=MAX_QUERY),
        ),
    )
    return Response(listing.json_body(session, request_json), mimetype="application/json")


@api_route(
    "/requests",
    method="POST",
    summary="Create a request (a draft, or submitted at once)",
    description=(
        "Submitting reserves the quota of every server atomically: when it does not fit, the answer is 409 "
        "`quota_exceeded` naming the resource, the limit and what is free, and nothing is stored."
    ),
    tags=("requests",),
    roles=DEPARTMENT_ROLES,
    request_body=NEW_REQUEST,
    response=REQUEST_DETAIL,
    status=201,
    errors=(409,),
    operation_id="create_request",
)
def create_request() -> tuple[Response, int]:
    body = Body()
    form = _request_form(body)
    submit = body.boolean("submit", default=False)
    body.done()
    form = _with_rules(body, form)
    created = sr.create_request(
        request_uow().session,
        api_user().actor,
        form,
        submit=submit,
        settings=runtime().settings,
        entry_point="api.request",
    )
    return jsonify(request_json(created, detail=True)), 201


@api_route(
    f"/requests/{ID}",
    method="PUT",
    summary="Change a draft (its author only): saved again, or submitted at once",
    description=(
        "The same body and checks as a creation (the classified rule, the catalog, the firewall on its zone; "
        "the quota when submitted).  403 `not_your_turn` for anyone but its author, 404 for another "
        "department's, 409 once it is no longer a draft; a refused change leaves the draft as it was."
    ),
    tags=("requests",),
    roles=DEPARTMENT_ROLES,
    request_body=NEW_REQUEST,
    response=REQUEST_DETAIL,
    errors=(403, 404, 409),
    operation_id="update_request_draft",
)
def update_request_draft(request_id: int) -> Response:
    body = Body()
    form = _request_form(body)
    submit = body.boolean("submit", default=False)
    body.done()
    form = _with_rules(body, form)
    changed = sr.update_draft(
        request_uow().session,
        api_user().actor,
        request_id,
        form,
        submit=submit,
        settings=runtime().settings,
        entry_point="api.request",
    )
    return jsonify(request_json(changed, detail=True))


@api_route(
    "/requests/quote",
    method="POST",
    summary="What a request would cost, need and leave free, and who would approve it",
    description=(
        "Checked like a creation: another department's legacy system is 404, a classified one is 409 "
        "`classified_system` (and audited): a quote never says it fits a request that would be refused."
    ),
    tags=("requests",),
    roles=DEPARTMENT_ROLES,
    request_body=QUOTE_BODY,
    response=QUOTE,
    errors=(404, 409),
    operation_id="quote_request",
)
def quote_request() -> Response:
    body = Body()
    form = _request_form(body)
    body.done()
    form = _with_rules(body, form)
    return jsonify(quote_json(sr.quote(request_uow().session, api_user().actor, form, entry_point="api.quote")))


@api_route(
    f"/requests/{ID}",
    summary="One request with its servers and history",
    tags=("requests",),
    response=REQUEST_DETAIL,
    errors=(404,),
    operation_id="get_request",
)
def get_request(request_id: int) -> Response:
    req = sr.get_request(request_uow().session, api_user().actor, request_id)
    return jsonify(request_json(req, detail=True))


@api_route(
    f"/requests/{ID}/submit",
    method="POST",
    summary="Submit a draft for approval",
    tags=("requests",),
    roles=DEPARTMENT_ROLES,
    response=REQUEST_DETAIL,
    errors=(404, 409),
    operation_id="submit_request",
)
def submit_request(request_id: int) -> Response:
    Body(optional=True).done()
    req = sr.submit_request(
        request_uow().session, api_user().actor, request_id, settings=runtime().settings, entry_point="api.request"
    )
    return jsonify(request_json(req, detail=True))


def _reason(*, required: bool) -> str:
    body = Body(optional=not required)
    reason = body.string("reason", required=required, max_length=REASON_MAX, default="")
    body.done()
    return str(reason or "")


@api_route(
    f"/requests/{ID}/approve",
    method="POST",
    summary="Approve the step that waits for you",
    description='The last approval queues the provisioning. Optional body: `{"reason": "..."}` (a comment).',
    tags=("requests",),
    roles=APPROVER_ROLES,
    response=REQUEST_DETAIL,
    errors=(404, 409),
    operation_id="approve_request",
)
def approve_request(request_id: int) -> Response:
    reason = _reason(required=False)
    req = sr.approve_request(request_uow().session, api_user().actor, request_id, reason=reason)
    return jsonify(request_json(req, detail=True))


@api_route(
    f"/requests/{ID}/reject",
    method="POST",
    summary="Reject the step that waits for you (a reason is required)",
    tags=("requests",),
    roles=APPROVER_ROLES,
    request_body=spec.schema(
        "RejectBody",
        {
            "type": "object",
            "required": ["reason"],
            "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": REASON_MAX}},
        },
    ),
    response=REQUEST_DETAIL,
    errors=(404, 409),
    operation_id="reject_request",
)
def reject_request(request_id: int) -> Response:
    reason = _reason(required=True)
    req = sr.reject_request(request_uow().session, api_user().actor, request_id, reason=reason)
    return jsonify(request_json(req, detail=True))


@api_route(
    f"/requests/{ID}/cancel",
    method="POST",
    summary="Withdraw a request that has not booted anything",
    description='Optional body: `{"reason": "..."}`. The quota it held is released.',
    tags=("requests",),
    roles=(*DEPARTMENT_ROLES, Role.OPERATOR),
    response=REQUEST_DETAIL,
    errors=(404, 409),
    operation_id="cancel_request",
)
def cancel_request(request_id: int) -> Response:
    reason = _reason(required=False)
    req = sr.cancel_request(request_uow().session, api_user().actor, request_id, reason=reason)
    return jsonify(request_json(req, detail=True))
