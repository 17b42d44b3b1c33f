"""``/api/v1``: who am I, the clouds, the departments, and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Response, jsonify, request

from cloudmgr.errors import ValidationFailed
from cloudmgr.organisation import services as org
from cloudmgr.organisation.models import ApiToken, Cloud, Department, Level, Role, User
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body
from web.api.spec import JSON, list_of
from web.core.uow import request_uow

# --- schemas ---------------------------------------------------------------------------

spec.schema(
    "Error",
    {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "A stable code: unauthorized, forbidden, not_found, invalid …"},
            "message": {"type": "string", "description": "What went wrong, for people."},
        },
    },
)
DEPARTMENT_REF = spec.schema(
    "DepartmentRef",
    {
        "type": "object",
        "required": ["key", "name_zh", "name_en"],
        "properties": {"key": {"type": "string"}, "name_zh": {"type": "string"}, "name_en": {"type": "string"}},
    },
)
ME = spec.schema(
    "Me",
    {
        "type": "object",
        "required": ["id", "username", "display_name", "role", "department"],
        "properties": {
            "id": {"type": "integer"},
            "username": {"type": "string"},
            "display_name": {"type": "string"},
            "role": {"type": "string", "enum": [role.value for role in Role]},
            "department": {"oneOf": [DEPARTMENT_REF, {"type": "null"}]},
        },
    },
)
ZONE = spec.schema(
    "NetworkZone",
    {
        "type": "object",
        "required": ["zone", "network_name", "network_id"],
        "properties": {
            "zone": {"type": "string", "enum": ["internet", "extranet"]},
            "network_name": {"type": "string"},
            "network_id": {"type": ["string", "null"], "description": "Null until `cloudmgr clouds sync` resolved it."},
        },
    },
)
CLOUD = spec.schema(
    "Cloud",
    {
        "type": "object",
        "required": ["key", "name_zh", "name_en", "kind", "level", "city", "enabled", "synced_at", "zones"],
        "properties": {
            "key": {"type": "string"},
            "name_zh": {"type": "string"},
            "name_en": {"type": "string"},
            "kind": {"type": "string", "enum": ["base", "industry", "other"]},
            "level": {"type": "string", "enum": ["province", "city", "county"]},
            "city": {"type": ["string", "null"]},
            "enabled": {"type": "boolean"},
            "synced_at": {"type": ["string", "null"], "format": "date-time"},
            "zones": {"type": "array", "items": ZONE},
        },
    },
)
DEPARTMENT = spec.schema(
    "Department",
    {
        "type": "object",
        "required": ["key", "name_zh", "name_en", "level", "city", "county", "clouds"],
        "properties": {
            "key": {"type": "string"},
            "name_zh": {"type": "string"},
            "name_en": {"type": "string"},
            "level": {"type": "string", "enum": ["province", "city", "county"]},
            "city": {"type": ["string", "null"]},
            "county": {"type": ["string", "null"]},
            "clouds": {"type": "array", "items": {"type": "string"}, "description": "Keys of the clouds it may use."},
        },
    },
)
USER = spec.schema(
    "User",
    {
        "type": "object",
        "required": ["id", "username", "display_name", "role", "department", "active", "last_login_at"],
        "properties": {
            "id": {"type": "integer"},
            "username": {"type": "string"},
            "display_name": {"type": "string"},
            "email": {"type": ["string", "null"]},
            "role": {"type": "string", "enum": [role.value for role in Role]},
            "department": {"type": ["string", "null"], "description": "The department's key."},
            "active": {"type": "boolean"},
            "last_login_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
)
TOKEN = spec.schema(
    "ApiToken",
    {
        "type": "object",
        "required": ["id", "name", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "prefix": {"type": "string", "description": "The token's first characters (never the token)."},
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "revoked_at": {"type": ["string", "null"], "format": "date-time"},
            "last_used_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
)
REASON_MAX = 500
ACCOUNT_ACTION_BODY = spec.schema(
    "AccountActionBody",
    {
        "type": "object",
        "required": ["reason"],
        "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": REASON_MAX}},
    },
)
REVOKE_TOKENS_BODY = spec.schema(
    "RevokeTokensBody",
    {
        "type": "object",
        "required": ["reason"],
        "properties": {
            "reason": {"type": "string", "minLength": 1, "maxLength": REASON_MAX},
            "token_id": {"type": "integer", "minimum": 1, "description": "Only this token (default: every token)."},
        },
    },
)
REVOKED = spec.schema(
    "TokensRevoked",
    {"type": "object", "required": ["revoked"], "properties": {"revoked": {"type": "integer"}}},
)
spec.tag("identity", "The caller")
spec.tag("organisation", "Clouds and departments")
spec.tag("meta", "The API itself")

# --- serialisation --------------------------------------------------------------------------


def cloud_json(cloud: Cloud) -> JSON:
    return {
        "key": cloud.key,
        "name_zh": cloud.name_zh,
        "name_en": cloud.name_en,
        "kind": cloud.kind,
        "level": cloud.level,
        "city": cloud.city,
        "enabled": cloud.enabled,
        "synced_at": cloud.synced_at.isoformat() if cloud.synced_at else None,
        "zones": [{"zone": z.zone, "network_name": z.network_name, "network_id": z.network_id} for z in cloud.zones],
    }


def department_json(dept: Department) -> JSON:
    return {
        "key": dept.key,
        "name_zh": dept.name_zh,
        "name_en": dept.name_en,
        "level": dept.level,
        "city": dept.city,
        "county": dept.county,
        "clouds": [link.cloud.key for link in sorted(dept.cloud_links, key=lambda link: link.cloud_id)],
    }


def user_json(user: User) -> JSON:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "role": user.role,
        "department": user.department.key if user.department else None,
        "active": user.active,
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def token_json(token: ApiToken) -> JSON:
    def stamp(value: object) -> str | None:
        return value.isoformat() if value is not None else None  # type: ignore[attr-defined]

    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": stamp(token.created_at),
        "expires_at": stamp(token.expires_at),
        "revoked_at": stamp(token.revoked_at),
        "last_used_at": stamp(token.last_used_at),
    }


def items(values: Iterable[JSON]) -> Response:
    return jsonify({"items": list(values)})


# --- endpoints ---------------------------------------------------------------------------------


@api_route("/me", summary="The caller: user, role and department", tags=("identity",), response=ME)
def me() -> Response:
    user = api_user()
    dept = user.department
    return jsonify(
        {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "role": user.role.value,
            "department": {"key": dept.key, "name_zh": dept.name_zh, "name_en": dept.name_en} if dept else None,
        }
    )


@api_route(
    "/clouds",
    summary="The clouds",
    description="Department staff and heads see the clouds their department may use; other roles see all.",
    tags=("organisation",),
    response=list_of(CLOUD),
)
def clouds() -> Response:
    return items(cloud_json(c) for c in org.visible_clouds(request_uow().session, api_user().actor))


LEVEL_PARAMETER: JSON = {
    "name": "level",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": [level.value for level in Level]},
    "description": "Only departments of this level.",
}


@api_route(
    "/departments",
    summary="The departments",
    description="Department staff and heads see only their own department.",
    tags=("organisation",),
    parameters=[LEVEL_PARAMETER],
    response=list_of(DEPARTMENT),
)
def departments() -> Response:
    user = api_user()
    level = request.args.get("level")
    if level is not None and level not in {lv.value for lv in Level}:
        raise ValidationFailed(f"level must be one of {', '.join(lv.value for lv in Level)}, not {level!r}")
    found = org.visible_departments(request_uow().session, user.actor, level=level)
    return items(department_json(d) for d in found)


@api_route(
    "/departments/<key>",
    summary="One department",
    description="Department staff and heads may only read their own department (404 for others).",
    tags=("organisation",),
    response=DEPARTMENT,
    errors=(404,),
)
def department(key: str) -> Response:
    return jsonify(department_json(org.get_visible_department(request_uow().session, api_user().actor, key)))


@api_route(
    "/users",
    summary="The users",
    tags=("identity",),
    roles=(Role.ADMIN,),
    response=list_of(USER),
)
def users() -> Response:
    return items(user_json(u) for u in org.list_users(request_uow().session))


USER_ID = "<int(max=2147483647):user_id>"


def _account_reason() -> str:
    body = Body()
    reason = body.string("reason", max_length=REASON_MAX)
    body.done()
    return str(reason)


@api_route(
    f"/users/{USER_ID}/disable",
    method="POST",
    summary="Disable a user: no log-in; their sessions and API tokens end at once",
    description="Administrators only, never their own account (409 `own_account`). Audited with the reason.",
    tags=("identity",),
    roles=(Role.ADMIN,),
    request_body=ACCOUNT_ACTION_BODY,
    response=USER,
    errors=(404, 409),
    operation_id="disable_user",
)
def disable_user(user_id: int) -> Response:
    reason = _account_reason()
    user = org.set_user_active(request_uow().session, api_user().actor, user_id, active=False, reason=reason)
    return jsonify(user_json(user))


@api_route(
    f"/users/{USER_ID}/enable",
    method="POST",
    summary="Enable a disabled user again (their revoked tokens stay revoked)",
    tags=("identity",),
    roles=(Role.ADMIN,),
    request_body=ACCOUNT_ACTION_BODY,
    response=USER,
    errors=(404,),
    operation_id="enable_user",
)
def enable_user(user_id: int) -> Response:
    reason = _account_reason()
    user = org.set_user_active(request_uow().session, api_user().actor, user_id, active=True, reason=reason)
    return jsonify(user_json(user))


@api_route(
    f"/users/{USER_ID}/tokens",
    summary="A user's API tokens (never the tokens themselves)",
    tags=("identity",),
    roles=(Role.ADMIN,),
    response=list_of(TOKEN),
    errors=(404,),
    operation_id="user_tokens",
)
def user_tokens(user_id: int) -> Response:
    return items(token_json(t) for t in org.list_tokens(request_uow().session, api_user().actor, user_id))


@api_route(
    f"/users/{USER_ID}/revoke-tokens",
    method="POST",
    summary="Revoke a user's API tokens: all, or the one `token_id`",
    tags=("identity",),
    roles=(Role.ADMIN,),
    request_body=REVOKE_TOKENS_BODY,
    response=REVOKED,
    errors=(404,),
    operation_id="revoke_user_tokens",
)
def revoke_user_tokens(user_id: int) -> Response:
    body = Body()
    reason = body.string("reason", max_length=REASON_MAX)
    token_id = body.integer("token_id", required=False, minimum=1)
    body.done()
    revoked = org.revoke_tokens(request_uow().session, api_user().actor, user_id, reason=str(reason), token_id=token_id)
    return jsonify({"revoked": revoked})


@api_route(
    "/openapi.json",
    summary="This API's OpenAPI 3.1 document",
    tags=("meta",),
    public=True,
    response={"type": "object"},
    operation_id="openapi",
)
def openapi() -> Response:
    return jsonify(spec.document())
