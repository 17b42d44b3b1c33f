"""``/api/v1/firewall``: the firewall templates operators keep and departments choose from, and a
department's admin network (issue 16).

A refused rule answers 400 ``firewall_rule_invalid`` with a message that starts with the field
(``rules[1].port_max: …``).
"""

from __future__ import annotations

from typing import NamedTuple

from flask import Response, jsonify

from cloudmgr.firewall import services as firewall
from cloudmgr.firewall.services import (
    MAX_RULES,
    PORT_MAX,
    PORT_MIN,
    Direction,
    Protocol,
    RuleSpec,
    SymbolicRemote,
    parse_rules,
)
from cloudmgr.organisation.models import Role
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body
from web.api.spec import JSON, list_of
from web.core.uow import request_uow

spec.tag("firewall", "Firewall templates (security group rules) for the servers departments request.")

RULE = spec.schema(
    "FirewallRule",
    {
        "type": "object",
        "required": ["direction", "protocol", "remote"],
        "properties": {
            "direction": {"type": "string", "enum": [d.value for d in Direction]},
            "protocol": {"type": "string", "enum": [p.value for p in Protocol]},
            "port_min": {
                "type": ["integer", "null"],
                "minimum": PORT_MIN,
                "maximum": PORT_MAX,
                "description": "Required for tcp and udp; absent for icmp and any.",
            },
            "port_max": {
                "type": ["integer", "null"],
                "minimum": PORT_MIN,
                "maximum": PORT_MAX,
                "description": "Defaults to port_min.",
            },
            "remote": {
                "type": "string",
                "description": "An IPv4 or IPv6 CIDR (no host bits), or " + " / ".join(s.value for s in SymbolicRemote),
            },
        },
    },
)

TEMPLATE = spec.schema(
    "FirewallTemplate",
    {
        "type": "object",
        "required": ["id", "name", "description_zh", "description_en", "rules", "requests_using", "updated_at"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "description_zh": {"type": "string"},
            "description_en": {"type": "string"},
            "rules": {"type": "array", "items": RULE},
            "requests_using": {"type": "integer", "description": "Requests that name it (it cannot be deleted)."},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
)

TEMPLATE_BODY = spec.schema(
    "FirewallTemplateBody",
    {
        "type": "object",
        "required": ["name", "rules"],
        "properties": {
            "name": {"type": "string", "maxLength": firewall.NAME_MAX},
            "description_zh": {"type": "string", "maxLength": firewall.DESCRIPTION_MAX},
            "description_en": {"type": "string", "maxLength": firewall.DESCRIPTION_MAX},
            "rules": {"type": "array", "items": RULE, "maxItems": MAX_RULES},
        },
    },
)

TEMPLATE_ID = "<int(max=2147483647):template_id>"


def template_json(template: firewall.TemplateInfo) -> JSON:
    return {
        "id": template.id,
        "name": template.name,
        "description_zh": template.description_zh,
        "description_en": template.description_en,
        "rules": [rule.as_json() for rule in template.rules],
        "requests_using": template.requests_using,
        "updated_at": template.updated_at.isoformat(),
    }


class TemplateFields(NamedTuple):
    name: str
    description_zh: str
    description_en: str
    rules: list[RuleSpec]


def _template_fields(body: Body) -> TemplateFields:
    # Wide limits here: the service refuses what is too long, naming the field.
    name = body.string("name", max_length=256)
    description_zh = body.string("description_zh", required=False, max_length=4096, default="")
    description_en = body.string("description_en", required=False, max_length=4096, default="")
    raw_rules = body.raw("rules")
    body.done()
    return TemplateFields(name, description_zh, description_en, parse_rules(raw_rules))


@api_route(
    "/firewall/templates",
    summary="Firewall templates",
    description="Every template with its rules; anyone logged in reads them (departments choose from them).",
    tags=("firewall",),
    response=list_of(TEMPLATE),
    operation_id="list_firewall_templates",
)
def list_firewall_templates() -> Response:
    return jsonify({"items": [template_json(t) for t in firewall.list_templates(request_uow().session)]})


@api_route(
    "/firewall/templates",
    method="POST",
    summary="Create a firewall template",
    tags=("firewall",),
    roles=(Role.OPERATOR,),
    request_body=TEMPLATE_BODY,
    response=TEMPLATE,
    status=201,
    errors=(409,),
    operation_id="create_firewall_template",
)
def create_firewall_template() -> tuple[Response, int]:
    fields = _template_fields(Body())
    created = firewall.create_template(request_uow().session, api_user().actor, **fields._asdict())
    return jsonify(template_json(created)), 201


@api_route(
    f"/firewall/templates/{TEMPLATE_ID}",
    method="PUT",
    summary="Replace a firewall template's name, descriptions and rules",
    tags=("firewall",),
    roles=(Role.OPERATOR,),
    request_body=TEMPLATE_BODY,
    response=TEMPLATE,
    errors=(404, 409),
    operation_id="update_firewall_template",
)
def update_firewall_template(template_id: int) -> Response:
    fields = _template_fields(Body())
    updated = firewall.update_template(
        request_uow().session,
        api_user().actor,
        template_id,
        **fields._asdict(),
    )
    return jsonify(template_json(updated))


@api_route(
    f"/firewall/templates/{TEMPLATE_ID}",
    method="DELETE",
    summary="Delete a firewall template no request names",
    tags=("firewall",),
    roles=(Role.OPERATOR,),
    status=204,
    errors=(404, 409),
    operation_id="delete_firewall_template",
)
def delete_firewall_template(template_id: int) -> tuple[str, int]:
    firewall.delete_template(request_uow().session, api_user().actor, template_id)
    return "", 204


@api_route(
    "/departments/<key>/admin-network",
    method="PUT",
    summary="Set a department's admin network",
    description=(
        "The CIDR the department administers its servers from: what the `department_admin_network` remote "
        "means. `null` or an empty string clears it."
    ),
    tags=("firewall",),
    roles=(Role.ADMIN,),
    request_body=spec.schema(
        "AdminNetworkBody",
        {"type": "object", "required": ["admin_cidr"], "properties": {"admin_cidr": {"type": ["string", "null"]}}},
    ),
    response={"type": "object", "properties": {"admin_cidr": {"type": ["string", "null"]}}},
    errors=(404,),
    operation_id="set_department_admin_network",
)
def set_department_admin_network(key: str) -> Response:
    body = Body()
    cidr = body.string("admin_cidr", required=False, max_length=64)
    body.done()
    value = firewall.set_admin_network(request_uow().session, api_user().actor, key, cidr)
    return jsonify({"admin_cidr": value})
