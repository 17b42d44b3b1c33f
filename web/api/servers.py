"""``/api/v1/servers``: the VMs cloudmgr provisioned, and what can be done to them."""

from __future__ import annotations

from flask import Response, jsonify

from cloudmgr.organisation.models import Role
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.states import ServerState
from web.api.blueprint import api_route, api_user, spec
from web.api.body import MAX_ID, Body, query_choice, query_int
from web.api.serializers import REQUEST_DETAIL, SERVER, request_json, server_json
from web.api.spec import list_of
from web.core.uow import request_uow, run_job_outside_request, runtime

DEPARTMENT_ROLES = (Role.DEPT_STAFF, Role.DEPT_HEAD)
ID = "<int(max=2147483647):server_id>"
MAX_LIMIT = 200

spec.tag(
    "servers", "Servers provisioned for the departments: stop, start, delete, extend, resize, retry; their console."
)

CONSOLE = spec.schema(
    "Console",
    {
        "type": "object",
        "required": ["type", "url"],
        "properties": {
            "type": {"type": "string", "description": "The console's kind, as the cloud names it (novnc)."},
            "url": {"type": "string", "description": "Opens the console in a browser; valid for a short time."},
        },
    },
)
CONSOLE_LOG = spec.schema(
    "ConsoleLog",
    {"type": "object", "required": ["log"], "properties": {"log": {"type": "string"}}},
)


@api_route(
    "/servers",
    summary="List servers",
    description="Newest first, at most `limit` (200). Department users see their department's servers only.",
    tags=("servers",),
    parameters=[
        {"name": "state", "in": "query", "schema": {"type": "string", "enum": [s.value for s in ServerState]}},
        {"name": "request", "in": "query", "schema": {"type": "integer"}, "description": "Only this request's."},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
    ],
    response=list_of(SERVER),
)
def list_servers() -> Response:
    state = query_choice("state", frozenset(ServerState))
    request_id = query_int("request", default=0, minimum=1, maximum=MAX_ID) or None
    limit = query_int("limit", default=MAX_LIMIT, minimum=1, maximum=MAX_LIMIT)
    rows = sr.list_servers(request_uow().session, api_user().actor, state=state, request_id=request_id, limit=limit)
    return jsonify({"items": [server_json(s) for s in rows]})


@api_route(
    f"/servers/{ID}",
    summary="One server",
    tags=("servers",),
    response=SERVER,
    errors=(404,),
    operation_id="get_server",
)
def get_server(server_id: int) -> Response:
    return jsonify(server_json(sr.get_server(request_uow().session, api_user().actor, server_id)))


@api_route(
    f"/servers/{ID}/actions",
    method="POST",
    summary="Stop, start or delete a server",
    description=(
        "Deleting needs the server's name in `confirm` and, when the server has data volumes, `volumes`: "
        "`keep` (detached, left available to the department and counted in its quota) or `delete`; "
        "without it the deletion is refused (400) and nothing changes. The public address is released. "
        "The action runs on the cloud shortly after."
    ),
    tags=("servers",),
    roles=(*DEPARTMENT_ROLES, Role.OPERATOR),
    request_body=spec.schema(
        "ServerAction",
        {
            "type": "object",
            "required": ["action"],
            "properties": {
                "action": {"type": "string", "enum": list(sr.SERVER_ACTIONS)},
                "confirm": {"type": "string", "description": "The server's name (required to delete)."},
                "volumes": {
                    "type": "string",
                    "enum": list(sr.VOLUME_CHOICES),
                    "description": "What becomes of the data volumes (required to delete a server that has some).",
                },
            },
        },
    ),
    response=SERVER,
    status=202,
    errors=(400, 404, 409),
    operation_id="server_action",
)
def server_action(server_id: int) -> tuple[Response, int]:
    body = Body()
    action = body.string("action", max_length=16)
    confirm = body.string("confirm", required=False, max_length=64, default="")
    volumes = body.string("volumes", required=False, max_length=16)
    body.done()
    server = sr.server_action(
        request_uow().session, api_user().actor, server_id, action, confirm=confirm or "", volumes=volumes
    )
    return jsonify(server_json(server)), 202


@api_route(
    f"/servers/{ID}/extend",
    method="POST",
    summary="Move a server's expiry date later",
    tags=("servers",),
    roles=(*DEPARTMENT_ROLES, Role.OPERATOR),
    request_body=spec.schema(
        "ExtendBody",
        {
            "type": "object",
            "required": ["expires_on"],
            "properties": {"expires_on": {"type": "string", "format": "date"}},
        },
    ),
    response=SERVER,
    errors=(404, 409),
    operation_id="extend_server",
)
def extend_server(server_id: int) -> Response:
    body = Body()
    expires_on = body.date("expires_on")
    body.done()
    server = sr.extend_expiry(request_uow().session, api_user().actor, server_id, expires_on)
    return jsonify(server_json(server))


@api_route(
    f"/servers/{ID}/resize",
    method="POST",
    summary="Ask for another flavor (a request of its own, through the approval chain)",
    tags=("servers",),
    roles=DEPARTMENT_ROLES,
    request_body=spec.schema(
        "ResizeBody",
        {
            "type": "object",
            "required": ["flavor", "justification"],
            "properties": {
                "flavor": {"type": "integer", "description": "A flavor's catalog item id on the server's cloud."},
                "justification": {"type": "string", "maxLength": 4000},
            },
        },
    ),
    response=REQUEST_DETAIL,
    status=201,
    errors=(404, 409),
    operation_id="resize_server",
)
def resize_server(server_id: int) -> tuple[Response, int]:
    body = Body()
    flavor = body.integer("flavor", minimum=1)
    justification = body.string("justification", max_length=4000)
    body.done()
    created = sr.request_resize(
        request_uow().session,
        api_user().actor,
        server_id,
        flavor,
        justification=justification,
        settings=runtime().settings,
        entry_point="api.resize",
    )
    return jsonify(request_json(created, detail=True)), 201


@api_route(
    f"/servers/{ID}/retry",
    method="POST",
    summary="Create a failed server again",
    description="A new attempt with a new idempotency key and a new quota reservation.",
    tags=("servers",),
    roles=(Role.OPERATOR,),
    response=SERVER,
    status=202,
    errors=(404, 409),
    operation_id="retry_server",
)
def retry_server(server_id: int) -> tuple[Response, int]:
    Body(optional=True).done()
    server = sr.retry_server(request_uow().session, api_user().actor, server_id)
    return jsonify(server_json(server)), 202


@api_route(
    f"/servers/{ID}/console",
    summary="A remote console (noVNC) of a running server",
    description="Each call asks the cloud for a new, short-lived console URL and is audited.",
    tags=("servers",),
    roles=(*DEPARTMENT_ROLES, Role.OPERATOR),
    response=CONSOLE,
    errors=(404, 409, 502),
    operation_id="open_server_console",
)
def open_server_console(server_id: int) -> Response:
    actor = api_user().actor
    target = sr.console_target(request_uow().session, actor, server_id)
    rt = runtime()
    console = run_job_outside_request(sr.open_console, rt.db, rt.providers, target, actor=actor)
    return jsonify({"type": console.type, "url": console.url})


@api_route(
    f"/servers/{ID}/console-log",
    summary="The last lines of a server's console output",
    description="Running, stopped or failed servers that were created on the cloud.",
    tags=("servers",),
    roles=(*DEPARTMENT_ROLES, Role.OPERATOR),
    parameters=[
        {
            "name": "lines",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": sr.MAX_LOG_LINES, "default": sr.DEFAULT_LOG_LINES},
        }
    ],
    response=CONSOLE_LOG,
    errors=(404, 409, 502),
    operation_id="read_server_console_log",
)
def read_server_console_log(server_id: int) -> Response:
    lines = query_int("lines", default=sr.DEFAULT_LOG_LINES, minimum=1, maximum=sr.MAX_LOG_LINES)
    target = sr.console_target(request_uow().session, api_user().actor, server_id, log_only=True)
    log = run_job_outside_request(sr.read_console_log, runtime().providers, target, lines)
    return jsonify({"log": log})
