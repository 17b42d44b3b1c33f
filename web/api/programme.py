"""Migration waves (operators) and the programme against its deadlines (operators and finance;
department users see their own department only)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from cloudmgr.organisation.models import Role
from cloudmgr.programme import services as waves
from cloudmgr.programme import tracking
from cloudmgr.programme.models import MigrationWave
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body, query_choice, query_str
from web.api.spec import list_of
from web.common.programme import WAVE_STATES, programme_config
from web.core.uow import request_uow, run_job_outside_request, runtime

OPERATORS = (Role.OPERATOR,)
EVERYONE = (Role.OPERATOR, Role.FINANCE, Role.DEPT_HEAD, Role.DEPT_STAFF)
MAX_SYSTEMS = waves.MAX_MEMBERS

spec.tag("programme", "Migration waves of legacy systems and the cloud programme against its deadlines.")

_STR = {"type": "string"}
_INT = {"type": "integer"}
_DATE = {"type": "string", "format": "date"}
_MEMBER = {
    "type": "object",
    "properties": {
        "id": _INT,
        "hostname": _STR,
        "department": _STR,
        "state": _STR,
        "complexity_score": _INT,
        "vcpus": _INT,
        "ram_mb": _INT,
    },
}
WAVE = spec.schema(
    "MigrationWave",
    {
        "type": "object",
        "properties": {
            "id": _INT,
            "name": _STR,
            "cloud": _STR,
            "zone": {"type": "string", "enum": ["internet", "extranet"]},
            "window_start": _DATE,
            "window_end": _DATE,
            "state": {"type": "string", "enum": list(WAVE_STATES)},
            "state_reason": {"type": ["string", "null"]},
            "systems": {"type": "integer", "description": "how many systems the wave holds"},
            "created_by": _STR,
            "created_at": {"type": "string", "format": "date-time"},
            "checked_by": {"type": ["string", "null"]},
            "started_by": {"type": ["string", "null"]},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "members": {"type": "array", "items": _MEMBER, "description": "easy to hard (one wave only)"},
            "check": {
                "type": ["object", "null"],
                "description": "the last check: fits, quota per department (needs, free, shortfall), "
                "capacity (hosts, hosts_free, hosts_used, hosts_needed, free, demand), unplaced systems "
                "with the reason, problems, warnings",
            },
        },
    },
)
_ROW = {
    "type": "object",
    "properties": {k: _INT for k in ("in_scope", "done", "remaining", "overdue", "at_risk", "percent_done")}
    | {"key": _STR, "name_zh": _STR, "name_en": _STR},
}
_SERIES = {"type": "array", "items": {"type": "object", "properties": {"date": _DATE, "remaining": _INT}}}
BURNDOWN = spec.schema(
    "ProgrammeBurndown",
    {
        "type": "object",
        "properties": {
            "period": {"type": "string", "enum": ["day", "week"]},
            "start": _DATE,
            "deadline": _DATE,
            "today": _DATE,
            "in_scope": _INT,
            "actual": _SERIES,
            "ideal": _SERIES,
        },
    },
)
_FLAG = {
    "type": "object",
    "properties": {
        "system_id": _INT,
        "hostname": _STR,
        "department": _STR,
        "state": _STR,
        "deadline": _DATE,
        "days": _INT,
        "reason": {"type": "string", "enum": ["overdue", "not_in_wave", "wave_too_late"]},
        "wave_id": {"type": ["integer", "null"]},
    },
}
PROGRAMME = spec.schema(
    "Programme",
    {
        "type": "object",
        "properties": {
            "today": _DATE,
            "deadlines": {"type": "object"},
            "in_scope": _INT,
            "done": _INT,
            "remaining": _INT,
            "percent_done": _INT,
            "out_of_scope": _INT,
            "overdue": _INT,
            "at_risk": _INT,
            "by_state": {"type": "object", "additionalProperties": _INT},
            "rooms_total": _INT,
            "rooms_closed": _INT,
            "departments": {"type": "array", "items": _ROW},
            "cities": {"type": "array", "items": _ROW},
            "counties": {"type": "array", "items": _ROW},
            "overdue_systems": {"type": "array", "items": _FLAG},
            "at_risk_systems": {"type": "array", "items": _FLAG},
            "rooms": {"type": "array", "items": {"type": "object"}},
            "burndown": BURNDOWN,
        },
    },
)

WAVE_ID = "/waves/<int(max=2147483647):wave_id>"


class WaveBody(Body):
    def systems(self, name: str) -> list[int | str]:
        value = self._get(name, True)
        if value is None:
            return []
        if not isinstance(value, list) or not value or len(value) > MAX_SYSTEMS:
            self.problems.append(f"{name} must be a list of 1 to {MAX_SYSTEMS} system ids or hostnames")
            return []
        out: list[int | str] = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int | str):
                self.problems.append(f"{name}: {item!r} is neither a system id nor a hostname")
            elif isinstance(item, int) and not 1 <= item <= 2147483647:
                self.problems.append(f"{name}: {item} is not a system id")
            elif isinstance(item, str) and not 1 <= len(item) <= 128:
                self.problems.append(f"{name}: hostnames have 1 to 128 characters")
            else:
                out.append(item)
        return out


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def wave_json(wave: MigrationWave, *, members: bool = True, count: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": wave.id,
        "name": wave.name,
        "cloud": wave.cloud.key,
        "zone": wave.zone,
        "window_start": wave.window_start.isoformat(),
        "window_end": wave.window_end.isoformat(),
        "state": wave.state,
        # What happened: the state, or for a finished wave done / done_partly / done_none.
        "outcome": wave.outcome,
        "state_reason": wave.state_reason,
        "systems": count if count is not None else len(wave.members),
        "created_by": wave.created_by,
        "created_at": wave.created_at.isoformat(),
        "checked_by": wave.checked_by,
        "started_by": wave.started_by,
        "started_at": _iso(wave.started_at),
        "finished_at": _iso(wave.finished_at),
    }
    if members:
        out["members"] = [
            {
                "id": s.id,
                "hostname": s.hostname,
                "department": s.department.key,
                "state": s.state,
                "complexity_score": s.complexity_score,
                "vcpus": s.vcpus,
                "ram_mb": s.ram_mb,
            }
            for s in waves.members_easy_first(request_uow().session, wave)
        ]
        out["check"] = wave.check_result
    return out


def _wave(wave_id: int) -> Response:
    return jsonify(wave_json(waves.get_wave(request_uow().session, wave_id)))


@api_route(
    "/waves",
    summary="Migration waves, newest first",
    tags=("programme",),
    roles=OPERATORS,
    response=list_of(WAVE),
    parameters=({"name": "state", "in": "query", "schema": {"type": "string", "enum": list(WAVE_STATES)}},),
)
def list_waves() -> Response:
    state = query_choice("state", frozenset(WAVE_STATES))
    session = request_uow().session
    found = waves.list_waves(session, state=state)
    counts = waves.member_counts(session, [w.id for w in found])
    return jsonify({"items": [wave_json(w, members=False, count=counts.get(w.id, 0)) for w in found]})


@api_route(
    "/waves",
    method="POST",
    summary="Create a draft wave",
    tags=("programme",),
    roles=OPERATORS,
    request_body=spec.schema(
        "WaveCreateBody",
        {
            "type": "object",
            "required": ["name", "cloud", "zone", "window_start", "window_end"],
            "properties": {
                "name": _STR,
                "cloud": _STR,
                "zone": {"type": "string", "enum": ["internet", "extranet"]},
                "window_start": _DATE,
                "window_end": _DATE,
            },
        },
    ),
    response=WAVE,
    status=201,
    errors=(400,),
    operation_id="create_wave",
)
def create_wave() -> tuple[Response, int]:
    body = Body()
    name = body.string("name", max_length=128)
    cloud = body.string("cloud", max_length=64)
    zone = body.string("zone", max_length=16)
    start = body.date("window_start")
    end = body.date("window_end")
    body.done()
    wave = waves.create_wave(
        request_uow().session,
        name=name,
        cloud_key=cloud,
        zone=zone,
        window_start=start,
        window_end=end,
        actor=api_user().actor,
    )
    return jsonify(wave_json(wave)), 201


@api_route(
    WAVE_ID,
    summary="One wave: its systems (easy to hard) and its last check",
    tags=("programme",),
    roles=OPERATORS,
    response=WAVE,
    errors=(404,),
)
def get_wave(wave_id: int) -> Response:
    return _wave(wave_id)


@api_route(
    WAVE_ID + "/systems",
    method="POST",
    summary="Add systems (ids or hostnames) to a draft or checked wave: all or none",
    tags=("programme",),
    roles=OPERATORS,
    request_body=spec.schema(
        "WaveSystemsBody",
        {
            "type": "object",
            "required": ["systems"],
            "properties": {"systems": {"type": "array", "items": {"type": ["integer", "string"]}}},
        },
    ),
    response=WAVE,
    errors=(400, 404, 409),
    description="A classified system is refused (409 classified_system) and the refusal audited.",
    operation_id="add_wave_systems",
)
def add_wave_systems(wave_id: int) -> Response:
    body = WaveBody()
    refs = body.systems("systems")
    body.done()
    waves.add_systems(request_uow().session, wave_id, refs, actor=api_user().actor)
    return _wave(wave_id)


@api_route(
    WAVE_ID + "/check",
    method="POST",
    summary="Check the wave against the departments' quotas and the cloud's free capacity",
    tags=("programme",),
    roles=OPERATORS,
    response=WAVE,
    errors=(404, 409),
    operation_id="check_wave",
)
def check_wave(wave_id: int) -> Response:
    Body(optional=True).done()
    waves.get_wave(request_uow().session, wave_id)  # 404 before reading the cloud
    rt = runtime()
    # The check's verdict is the answer (it reads the cloud's free capacity now).
    run_job_outside_request(waves.check_wave, rt.db, rt.providers, wave_id, actor=api_user().actor)
    return _wave(wave_id)


@api_route(
    WAVE_ID + "/start",
    method="POST",
    summary="Start a checked wave: its systems migrate (one runbook work item each)",
    tags=("programme",),
    roles=OPERATORS,
    response=WAVE,
    errors=(404, 409),
    operation_id="start_wave",
)
def start_wave(wave_id: int) -> Response:
    Body(optional=True).done()
    waves.start_wave(request_uow().session, wave_id, actor=api_user().actor)
    return _wave(wave_id)


@api_route(
    WAVE_ID + "/cancel",
    method="POST",
    summary="Cancel a draft or checked wave (its systems go back to legacy)",
    tags=("programme",),
    roles=OPERATORS,
    request_body=spec.schema("WaveCancelBody", {"type": "object", "properties": {"reason": _STR}}),
    response=WAVE,
    errors=(404, 409),
    operation_id="cancel_wave",
)
def cancel_wave(wave_id: int) -> Response:
    body = Body(optional=True)
    reason = body.string("reason", required=False, max_length=1000, default="")
    body.done()
    waves.cancel_wave(request_uow().session, wave_id, actor=api_user().actor, reason=reason)
    return _wave(wave_id)


# --- the programme -------------------------------------------------------------------------------


def _department_scope() -> tuple[int | None, str | None]:
    """(department id, key) the caller may see (the service decides: a department user's own)."""
    key = query_str("department", max_length=64)
    department = tracking.visible_department(request_uow().session, api_user().actor, key)
    return (department.id, department.key) if department else (None, None)


def _programme(period: str) -> tuple[tracking.Figures, tracking.Burndown]:
    department_id, department_key = _department_scope()
    config = programme_config()
    session = request_uow().session
    figures = tracking.compute(session, config, tracking.today(), department_id=department_id)
    burn = tracking.burndown(session, config, figures, period=period, department_key=department_key)
    return figures, burn


_PROGRAMME_PARAMS = (
    {"name": "department", "in": "query", "schema": _STR, "description": "operators and finance: one department"},
    {"name": "period", "in": "query", "schema": {"type": "string", "enum": ["day", "week"], "default": "day"}},
)


@api_route(
    "/programme",
    summary="Progress against the deadlines: by department, city and county; overdue, at risk; rooms; burndown",
    tags=("programme",),
    roles=EVERYONE,
    response=PROGRAMME,
    parameters=_PROGRAMME_PARAMS,
    errors=(404,),
    description="Department users see their own department only.",
)
def programme() -> Response:
    period = query_choice("period", frozenset({"day", "week"})) or "day"
    figures, burn = _programme(period)
    config = figures.config
    return jsonify(
        {
            **figures.summary(),
            "deadlines": {
                "start": config.start.isoformat(),
                "cloud": config.cloud.date.isoformat(),
                "rooms": config.rooms.date.isoformat(),
                "at_risk_days": config.at_risk_days,
            },
            "departments": [r.as_dict() for r in figures.departments],
            "cities": [r.as_dict() for r in figures.cities],
            "counties": [r.as_dict() for r in figures.counties],
            "overdue_systems": [x.as_dict() for x in figures.overdue],
            "at_risk_systems": [x.as_dict() for x in figures.at_risk],
            "rooms": [r.as_dict() for r in figures.rooms],
            "burndown": burn.as_dict(),
        }
    )


@api_route(
    "/programme/burndown",
    summary="The burndown series: remaining in-scope systems per day or week, and the ideal line",
    tags=("programme",),
    roles=EVERYONE,
    response=BURNDOWN,
    parameters=_PROGRAMME_PARAMS,
    errors=(404,),
)
def programme_burndown() -> Response:
    period = query_choice("period", frozenset({"day", "week"})) or "day"
    _figures, burn = _programme(period)
    return jsonify(burn.as_dict())
