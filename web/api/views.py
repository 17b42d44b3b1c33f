"""``/api/v1``: who am I, the clouds, the departments, and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flask import Response, jsonify, request

from cloudmgr.errors import ValidationFailed
from cloudmgr.identity import services as identity
from cloudmgr.organisation import services as org
from cloudmgr.organisation.errors import UnknownUser
from cloudmgr.organisation.models import ApiToken, Cloud, Department, Level, Role, User
from cloudmgr.quotas import services as quotas
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body
from web.api.spec import JSON, list_of
from web.core.uow import request_uow, runtime

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
            "reachability": {
                "type": "object",
                "description": "Whether cloudmgr's calls reach the cloud (issue 17): unreachable_since is set "
                "while they do not; its requests then wait and are provisioned when it is back.",
                "required": ["reachable", "unreachable_since", "last_success_at", "last_failure_at", "failure_kind"],
                "properties": {
                    "reachable": {"type": "boolean"},
                    "unreachable_since": {"type": ["string", "null"], "format": "date-time"},
                    "last_success_at": {"type": ["string", "null"], "format": "date-time"},
                    "last_failure_at": {"type": ["string", "null"], "format": "date-time"},
                    "failure_kind": {"type": ["string", "null"], "enum": ["refused", "lost", None]},
                },
            },
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
    session = request_uow().session
    statuses = {s.cloud_key: s for s in org.cloud_statuses(session)}
    return items(
        {**cloud_json(c), "reachability": reachability_json(statuses.get(c.key))}
        for c in org.visible_clouds(session, api_user().actor)
    )


def reachability_json(status: org.CloudStatus | None) -> JSON:
    def at(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "reachable": status is None or status.reachable,
        "unreachable_since": at(status.unreachable_since) if status else None,
        "last_success_at": at(status.last_success_at) if status else None,
        "last_failure_at": at(status.last_failure_at) if status else None,
        "failure_kind": status.failure_kind if status and not status.reachable else None,
    }


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


UPDATE_USER_BODY = spec.schema(
    "UpdateUserBody",
    {
        "type": "object",
        "properties": {
            "display_name": {"type": "string", "maxLength": 128, "description": "Empty: the username."},
            "email": {"type": ["string", "null"], "maxLength": 255},
            "role": {"type": "string", "enum": [role.value for role in Role]},
            "department": {
                "type": ["string", "null"],
                "description": "The department's key: required for department staff and heads, null for the "
                "other roles (left out: kept, or null when the new role has no department).",
            },
            "reason": {
                "type": "string",
                "maxLength": REASON_MAX,
                "description": "Required when the role or department changes (kept in the audit log).",
            },
        },
    },
)
RESET_PASSWORD_BODY = spec.schema(
    "ResetPasswordBody",
    {
        "type": "object",
        "required": ["reason"],
        "properties": {
            "reason": {"type": "string", "minLength": 1, "maxLength": REASON_MAX},
            "password": {
                "type": "string",
                "maxLength": 256,
                "description": "The new password (the password policy applies); left out: a temporary one is made.",
            },
        },
    },
)
PASSWORD_RESET = spec.schema(
    "PasswordReset",
    {
        "type": "object",
        "required": ["user", "generated"],
        "properties": {
            "user": USER,
            "generated": {"type": "boolean"},
            "password": {
                "type": "string",
                "description": "The temporary password, only when one was made: shown once, never stored in clear.",
            },
        },
    },
)
DELETED_USER = spec.schema(
    "DeletedUser",
    {"type": "object", "required": ["deleted"], "properties": {"deleted": {"type": "string"}}},
)


@api_route(
    f"/users/{USER_ID}/update",
    method="POST",
    summary="Change a user's name, email, role or department",
    description="Administrators only. A role or department change needs a reason, is refused for one's own account "
    "(409 `own_account`) or the last active administrator (409 `last_administrator`), and ends the user's sessions "
    "and API tokens. Every change is audited with its before and after.",
    tags=("identity",),
    roles=(Role.ADMIN,),
    request_body=UPDATE_USER_BODY,
    response=USER,
    errors=(404, 409),
    operation_id="update_user",
)
def update_user(user_id: int) -> Response:
    session = request_uow().session
    user = org.get_user(session, user_id)
    if user is None:
        raise UnknownUser(f"no user with id {user_id}")
    body = Body()
    given = set(request.get_json(silent=True) or {})  # an object: Body() refused anything else
    display_name = body.string("display_name", required=False, max_length=128, default=user.display_name)
    email = body.string("email", required=False, max_length=255, default=None)
    role_text = body.string("role", required=False, max_length=16, default=user.role)
    department = body.string("department", required=False, max_length=64, default=None)
    reason = body.string("reason", required=False, max_length=REASON_MAX, default="")
    if role_text not in {r.value for r in Role}:
        body.problem(f"role must be one of {', '.join(r.value for r in Role)}")
    body.done()
    if "email" not in given:
        email = user.email
    role = Role(role_text)
    if "department" not in given:
        current = user.department.key if user.department else None
        department = current if role.needs_department else None
    updated = org.update_user(
        session,
        api_user().actor,
        user_id,
        display_name=display_name,
        email=email,
        role=role,
        department_key=department,
        reason=str(reason),
    )
    return jsonify(user_json(updated))


@api_route(
    f"/users/{USER_ID}/reset-password",
    method="POST",
    summary="Reset a user's password: the one sent, or a temporary one answered once",
    description="Administrators only, never their own (409 `own_account`: use the password form), never an account "
    "of Keystone or LDAP (409). The user's sessions end and their API tokens are revoked. Audited without the "
    "password.",
    tags=("identity",),
    roles=(Role.ADMIN,),
    request_body=RESET_PASSWORD_BODY,
    response=PASSWORD_RESET,
    errors=(404, 409),
    operation_id="reset_user_password",
)
def reset_user_password(user_id: int) -> Response:
    body = Body()
    reason = body.string("reason", max_length=REASON_MAX)
    password = body.string("password", required=False, max_length=256, default=None)
    body.done()
    session = request_uow().session
    new = identity.reset_password(session, api_user().actor, user_id, new_password=password, reason=str(reason))
    user = org.get_user(session, user_id)
    assert user is not None
    answer: JSON = {"user": user_json(user), "generated": not password}
    if not password:
        answer["password"] = new
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@api_route(
    f"/users/{USER_ID}",
    method="DELETE",
    summary="Delete a user without recorded work",
    description="Administrators only; never one's own account (409 `own_account`) nor the last active administrator "
    "(409 `last_administrator`). A user named by recorded work (requests, keys, purchases …) is refused with 409 "
    "`user_has_history`: disable them instead. Their API tokens go with them. Audited with the reason.",
    tags=("identity",),
    roles=(Role.ADMIN,),
    request_body=ACCOUNT_ACTION_BODY,
    response=DELETED_USER,
    errors=(404, 409),
    operation_id="delete_user",
)
def delete_user(user_id: int) -> Response:
    reason = _account_reason()
    return jsonify({"deleted": org.delete_user(request_uow().session, api_user().actor, user_id, reason=reason)})


ORGANISATION_IMPORT_BODY = spec.schema(
    "OrganisationImportBody",
    {
        "type": "object",
        "properties": {
            "sync_clouds": {
                "type": "boolean",
                "description": "Also queue the clouds' sync (networks, projects, catalog) for the worker.",
            }
        },
    },
)
ORGANISATION_IMPORTED = spec.schema(
    "OrganisationImported",
    {
        "type": "object",
        "required": ["clouds", "departments", "clouds_added", "departments_added", "links_added", "sync_work_item"],
        "properties": {
            "clouds": {"type": "integer"},
            "departments": {"type": "integer"},
            "clouds_added": {"type": "integer"},
            "departments_added": {"type": "integer"},
            "links_added": {"type": "integer"},
            "sync_work_item": {
                "type": ["integer", "null"],
                "description": "The queued clouds' sync (its result is on the admin's clouds page).",
            },
        },
    },
)
QUOTAS_APPLY_QUEUED = spec.schema(
    "QuotasApplyQueued",
    {
        "type": "object",
        "required": ["sizes", "department_quotas", "work_item"],
        "properties": {
            "sizes": {"type": "integer"},
            "department_quotas": {"type": "integer"},
            "work_item": {"type": "integer", "description": "The queued apply, run by the worker."},
        },
    },
)


@api_route(
    "/organisation/import",
    method="POST",
    summary="Import the clouds and departments files now (cloudmgr org import)",
    description="Administrators only. Both files are checked before anything is written (400 naming each problem). "
    "With `sync_clouds`, `cloudmgr clouds sync` is queued for the worker in the same transaction.",
    tags=("organisation",),
    roles=(Role.ADMIN,),
    request_body=ORGANISATION_IMPORT_BODY,
    response=ORGANISATION_IMPORTED,
    operation_id="import_organisation",
)
def import_organisation() -> Response:
    body = Body(optional=True)
    sync = body.boolean("sync_clouds", default=False)
    body.done()
    settings = runtime().settings
    done = org.import_organisation_files(
        request_uow().session, settings.clouds_file, settings.departments_file, actor=api_user().actor, sync_clouds=sync
    )
    return jsonify(
        {
            "clouds": done.clouds,
            "departments": done.departments,
            "clouds_added": done.summary.clouds_added,
            "departments_added": done.summary.departments_added,
            "links_added": done.summary.links_added,
            "sync_work_item": done.sync_item_id,
        }
    )


@api_route(
    "/quotas/apply",
    method="POST",
    summary="Check the quota files now and queue their apply (cloudmgr quotas apply)",
    description="Administrators only. Invalid files: 400 listing each problem (file:line: message), nothing queued. "
    "The worker applies them to the ledger and the clouds.",
    tags=("quotas",),
    roles=(Role.ADMIN,),
    response=QUOTAS_APPLY_QUEUED,
    operation_id="apply_quota_files",
)
def apply_quota_files() -> Response:
    queued = quotas.queue_apply(request_uow().session, runtime().settings.quotas_dir, actor=api_user().actor)
    return jsonify({"sizes": queued.sizes, "department_quotas": queued.entries, "work_item": queued.item_id})


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
