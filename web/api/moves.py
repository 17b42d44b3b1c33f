"""Moves inside and between clouds (operators): create, list, get, confirm, revert, resume."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from cloudmgr.moves import services
from cloudmgr.moves.models import Move
from cloudmgr.moves.states import MESSAGES_KEY, MoveKind, MoveState
from cloudmgr.organisation.models import Role
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body, query_choice
from web.api.spec import list_of
from web.core.uow import request_uow, run_job_outside_request, runtime

OPERATORS = (Role.OPERATOR,)
MOVE_ID = "/moves/<int(max=2147483647):move_id>"
KINDS = [k.value for k in MoveKind]
STATES = [s.value for s in MoveState]

spec.tag("moves", "Live and cold migration, host drain and cross-cloud moves, run step by step and resumable.")

_STR = {"type": "string"}
_STR_OR_NULL = {"type": ["string", "null"]}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
STEP = {
    "type": "object",
    "properties": {
        "name": _STR,
        "state": {"type": "string", "enum": ["pending", "running", "done", "failed"]},
        "attempts": {"type": "integer"},
        "seconds": {"type": ["number", "null"]},
        "started_at": _TIME_OR_NULL,
        "finished_at": _TIME_OR_NULL,
        "result": {"type": "object", "description": "what the step found or created (ids)"},
        "error": _STR_OR_NULL,
    },
}
_MOVE_PROPS: dict[str, Any] = {
    "id": {"type": "integer"},
    "kind": {"type": "string", "enum": KINDS},
    "state": {"type": "string", "enum": STATES},
    "state_reason": _STR_OR_NULL,
    "cloud": _STR,
    "server_id": _STR_OR_NULL,
    "server_name": _STR_OR_NULL,
    "source_host": _STR_OR_NULL,
    "target_host": _STR_OR_NULL,
    "target_cloud": _STR_OR_NULL,
    "current_step": _STR_OR_NULL,
    "parent_id": {"type": ["integer", "null"]},
    "reason": _STR,
    "created_by": _STR,
    "created_at": {"type": "string", "format": "date-time"},
    "started_at": _TIME_OR_NULL,
    "finished_at": _TIME_OR_NULL,
    "steps": {"type": "array", "items": STEP},
}
MOVE_SUMMARY = spec.schema("MoveSummary", {"type": "object", "properties": _MOVE_PROPS})
MOVE = spec.schema(
    "Move",
    {
        "type": "object",
        "properties": _MOVE_PROPS
        | {
            "resources": {"type": "object", "description": "ids the steps created (snapshot, images, target server)"},
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "at": {"type": "string", "format": "date-time"},
                        "actor": _STR,
                        "action": _STR,
                        "from": _STR,
                        "to": _STR,
                        "reason": _STR_OR_NULL,
                    },
                },
            },
            "children": {"type": "array", "items": MOVE_SUMMARY},
            "checksums": {
                "type": "array",
                "description": "a cross-cloud move's images as carried: size, SHA-256 of the download, and the "
                "source and target clouds' own hashes (algo, value), which equal the download's",
                "items": {"type": "object"},
            },
        },
    },
)
MOVE_BODY = spec.schema(
    "MoveBody",
    {
        "type": "object",
        "required": ["kind", "cloud", "reason"],
        "description": "live/cold: server_id (target_host optional, cold: auto_confirm); drain: host "
        "(disable_host, keep_disabled, only_managed); cross_cloud: server_id and target_cloud (department, zone); "
        "system: department, application_system and target_cloud (zone): every server of the legacy system.",
        "properties": {
            "kind": {"type": "string", "enum": KINDS},
            "cloud": _STR,
            "reason": _STR,
            "server_id": _STR,
            "target_host": _STR,
            "auto_confirm": {"type": "boolean", "default": False},
            "host": _STR,
            "disable_host": {"type": "boolean", "default": True},
            "keep_disabled": {"type": "boolean", "default": False},
            "only_managed": {"type": "boolean", "default": False},
            "target_cloud": _STR,
            "department": _STR,
            "zone": {"type": "string", "enum": ["internet", "extranet"]},
            "application_system": _STR,
        },
    },
)
ACTION_BODY = spec.schema("MoveActionBody", {"type": "object", "properties": {"reason": _STR}})


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def move_json(move: Move, *, detail: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": move.id,
        "kind": move.kind,
        "state": move.state,
        "state_reason": move.state_reason,
        "cloud": move.cloud.key,
        "server_id": move.server_id,
        "server_name": move.server_name,
        "source_host": move.source_host,
        "target_host": move.target_host,
        "target_cloud": move.target_cloud.key if move.target_cloud else None,
        "current_step": move.current_step,
        "parent_id": move.parent_id,
        "reason": move.reason,
        "created_by": move.created_by,
        "created_at": _iso(move.created_at),
        "started_at": _iso(move.started_at),
        "finished_at": _iso(move.finished_at),
        "steps": [
            {
                "name": s.name,
                "state": s.state,
                "attempts": s.attempts,
                "seconds": s.seconds,
                "started_at": _iso(s.started_at),
                "finished_at": _iso(s.finished_at),
                "result": s.result or {},
                "error": s.error,
            }
            for s in move.steps
        ],
    }
    if detail:
        data["resources"] = {k: v for k, v in (move.resources or {}).items() if k not in ("metadata", MESSAGES_KEY)}
        data["events"] = [
            {"at": _iso(e.at), "actor": e.actor, "action": e.action, "from": e.from_state, "to": e.to_state,
             "reason": e.reason}
            for e in move.events
        ]  # fmt: skip
        data["children"] = [move_json(c) for c in move.children]
        data["checksums"] = services.checksum_rows(move.resources or {})
    return data


@api_route(
    "/moves",
    summary="Moves, newest first (a drain's per-server moves are in its children)",
    tags=("moves",),
    roles=OPERATORS,
    response=list_of(MOVE_SUMMARY),
    parameters=(
        {"name": "state", "in": "query", "schema": {"type": "string", "enum": STATES}},
        {"name": "kind", "in": "query", "schema": {"type": "string", "enum": KINDS}},
    ),
)
def list_moves() -> Response:
    state = query_choice("state", frozenset(STATES))
    kind = query_choice("kind", frozenset(KINDS))
    moves = services.list_moves(request_uow().session, state=state, kind=kind)
    return jsonify({"items": [move_json(m) for m in moves]})


@api_route(
    "/moves",
    method="POST",
    summary="Start a move: stored and audited at once, run by the scheduler's workers after the commit",
    tags=("moves",),
    roles=OPERATORS,
    request_body=MOVE_BODY,
    response=MOVE,
    status=202,
    errors=(404, 409),
    operation_id="create_move",
)
def create_move() -> tuple[Response, int]:
    body = Body()
    kind = body.string("kind", max_length=16)
    cloud = body.string("cloud", max_length=64)
    reason = body.string("reason", max_length=2000)
    if kind is not None and kind not in KINDS:
        body.problem(f"kind must be one of {', '.join(KINDS)}")
    args: dict[str, Any] = {}
    if kind in ("live", "cold"):
        args["server_id"] = body.string("server_id", max_length=64)
        args["target_host"] = body.string("target_host", required=False, max_length=255)
        args["auto_confirm"] = body.boolean("auto_confirm", default=False) if kind == "cold" else False
    elif kind == "drain":
        args["host"] = body.string("host", max_length=255)
        args["disable_host"] = body.boolean("disable_host", default=True)
        args["keep_disabled"] = body.boolean("keep_disabled", default=False)
        args["only_managed"] = body.boolean("only_managed", default=False)
    elif kind == "system":
        args["department_key"] = body.string("department", max_length=64)
        args["application_system"] = body.string("application_system", max_length=128)
        args["target_cloud_key"] = body.string("target_cloud", max_length=64)
        zone = body.string("zone", required=False, max_length=16)
        if zone is not None and zone not in ("internet", "extranet"):
            body.problem("zone must be internet or extranet")
        args["target_zone"] = zone
    elif kind == "cross_cloud":
        args["server_id"] = body.string("server_id", max_length=64)
        args["target_cloud_key"] = body.string("target_cloud", max_length=64)
        args["target_department_key"] = body.string("department", required=False, max_length=64)
        zone = body.string("zone", required=False, max_length=16)
        if zone is not None and zone not in ("internet", "extranet"):
            body.problem("zone must be internet or extranet")
        args["target_zone"] = zone
    body.done()
    rt = runtime()
    actor = api_user().actor
    # Starting a move reads the cloud (the server, its host, the other hosts' room) so the
    # answer says at once whether it can be done; the move itself runs in a work item.
    if kind == "drain":
        move_id = run_job_outside_request(
            services.start_drain, rt.db, rt.providers, cloud_key=cloud, actor=actor, reason=reason, **args
        )
    elif kind == "system":
        move_id = run_job_outside_request(
            services.start_system_move, rt.db, rt.providers, cloud_key=cloud, actor=actor, reason=reason, **args
        )
    elif kind == "cross_cloud":
        move_id = run_job_outside_request(
            services.start_cross_cloud_move, rt.db, rt.providers, cloud_key=cloud, actor=actor, reason=reason, **args
        )
    else:
        move_id = run_job_outside_request(
            services.start_migration,
            rt.db,
            rt.providers,
            kind=kind,
            cloud_key=cloud,
            actor=actor,
            reason=reason,
            **args,
        )
    return jsonify(move_json(services.get_move(request_uow().session, move_id), detail=True)), 202


@api_route(MOVE_ID, summary="One move with its steps, events and children", tags=("moves",), roles=OPERATORS,
           response=MOVE, errors=(404,))  # fmt: skip
def get_move(move_id: int) -> Response:
    return jsonify(move_json(services.get_move(request_uow().session, move_id), detail=True))


def _action(move_id: int, action: str) -> tuple[Response, int]:
    body = Body(optional=True)
    reason = body.string("reason", required=False, max_length=2000)
    body.done()
    session = request_uow().session
    services.get_move(session, move_id)  # 404 first
    actor = api_user().actor
    {"confirm": services.confirm, "revert": services.revert, "resume": services.resume}[action](
        session, move_id, actor=actor, reason=reason
    )
    session.flush()
    session.expire_all()
    return jsonify(move_json(services.get_move(session, move_id), detail=True)), 202


@api_route(MOVE_ID + "/confirm", method="POST", summary="Confirm a cold migration waiting in awaiting_confirm",
           tags=("moves",), roles=OPERATORS, request_body=ACTION_BODY, response=MOVE, status=202, errors=(404, 409),
           operation_id="confirm_move")  # fmt: skip
def confirm_move(move_id: int) -> tuple[Response, int]:
    return _action(move_id, "confirm")


@api_route(MOVE_ID + "/revert", method="POST",
           summary="Send a cold migration back to its source host, or undo a failed cross-cloud move",
           tags=("moves",), roles=OPERATORS, request_body=ACTION_BODY, response=MOVE, status=202, errors=(404, 409),
           operation_id="revert_move")  # fmt: skip
def revert_move(move_id: int) -> tuple[Response, int]:
    return _action(move_id, "revert")


@api_route(MOVE_ID + "/resume", method="POST", summary="Carry a failed or interrupted move on from where it stopped",
           tags=("moves",), roles=OPERATORS, request_body=ACTION_BODY, response=MOVE, status=202, errors=(404, 409),
           operation_id="resume_move")  # fmt: skip
def resume_move(move_id: int) -> tuple[Response, int]:
    return _action(move_id, "resume")
