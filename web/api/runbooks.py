"""Migration runbooks (issue 6): a system's runs and their live events; start or retry a step.

Operators only.  Starting a step queues it (``202``): a scheduler worker runs its playbook
and the events appear in ``GET /runbook-runs/<id>/events?after=<last event id>``.
"""

from __future__ import annotations

from flask import Response, jsonify

from cloudmgr.inventory.services import get_system
from cloudmgr.organisation.models import Role
from cloudmgr.runbooks.models import Step
from cloudmgr.runbooks.services import events_after, get_run, list_runs, request_step
from web.api.blueprint import api_route, api_user, spec
from web.api.body import query_int
from web.api.spec import list_of
from web.common.runbook_json import event_json, run_json
from web.core.uow import request_uow

OPERATORS = (Role.OPERATOR,)
SYSTEM_ID = "<int(max=2147483647):system_id>"
RUN_ID = "<int(max=2147483647):run_id>"
STEP = "<step>"

spec.tag("runbooks", "Migration runbooks: Ansible playbook runs per legacy system and step, with their events.")

_TIME = {"type": ["string", "null"], "format": "date-time"}
RUN = spec.schema(
    "RunbookRun",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "system_id": {"type": "integer"},
            "wave_id": {"type": ["integer", "null"]},
            "step": {"type": "string", "enum": [s.value for s in Step]},
            "state": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "rolled_back"]},
            "rc": {"type": ["integer", "null"]},
            "changed": {"type": ["integer", "null"], "description": "tasks that changed something"},
            "actor": {"type": "string"},
            "reason": {"type": ["string", "null"]},
            "rollback_of": {"type": ["integer", "null"], "description": "the failed run this rollback undoes"},
            "artifacts_path": {"type": ["string", "null"]},
            "event_count": {"type": "integer"},
            "created_at": _TIME,
            "started_at": _TIME,
            "finished_at": _TIME,
        },
    },
)
EVENT = spec.schema(
    "RunbookEvent",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "event": {"type": "string", "description": "ansible-runner's event name"},
            "host": {"type": ["string", "null"]},
            "play": {"type": ["string", "null"]},
            "task": {"type": ["string", "null"]},
            "status": {
                "type": ["string", "null"],
                "enum": [None, "ok", "changed", "failed", "ignored", "unreachable", "skipped"],
            },
            "message": {"type": ["string", "null"]},
            "created_at": _TIME,
        },
    },
)
EVENTS = spec.schema(
    "RunbookEvents",
    {
        "type": "object",
        "required": ["run", "items"],
        "properties": {"run": RUN, "items": {"type": "array", "items": EVENT}},
    },
)


@api_route(
    f"/systems/{SYSTEM_ID}/runbook",
    summary="A legacy system's runbook runs, newest first",
    tags=("runbooks",),
    roles=OPERATORS,
    response=list_of(RUN),
    errors=(404,),
)
def list_runbook_runs(system_id: int) -> Response:
    session = request_uow().session
    system = get_system(session, system_id)
    return jsonify({"items": [run_json(r) for r in list_runs(session, system.id)]})


@api_route(
    f"/systems/{SYSTEM_ID}/runbook/{STEP}",
    method="POST",
    summary="Start (or retry) one runbook step of a legacy system",
    description=(
        "Queues the step; a worker runs its playbook. 409 when the system already has a step under way "
        "(runbook_busy), when the step cannot run in the system's state (runbook_step_not_allowed: e.g. "
        "decommission before a verified cutover) or for a classified system at provision (classified_system). "
        "A failed cutover or verify is rolled back at once."
    ),
    tags=("runbooks",),
    roles=OPERATORS,
    response=RUN,
    status=202,
    errors=(400, 404, 409),
)
def start_runbook_step(system_id: int, step: str) -> tuple[Response, int]:
    session = request_uow().session
    run = request_step(session, system_id, step, actor=api_user().actor)
    return jsonify(run_json(run)), 202


@api_route(
    f"/runbook-runs/{RUN_ID}",
    summary="One runbook run",
    tags=("runbooks",),
    roles=OPERATORS,
    response=RUN,
    errors=(404,),
)
def get_runbook_run(run_id: int) -> Response:
    return jsonify(run_json(get_run(request_uow().session, run_id)))


@api_route(
    f"/runbook-runs/{RUN_ID}/events",
    summary="A run's events after a given event id (poll it while the run is queued or running)",
    tags=("runbooks",),
    roles=OPERATORS,
    parameters=(
        {
            "name": "after",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 0},
            "description": "the id of the last event already seen",
        },
    ),
    response=EVENTS,
    errors=(400, 404),
)
def runbook_run_events(run_id: int) -> Response:
    after = query_int("after", default=0, minimum=0, maximum=2_147_483_647)
    session = request_uow().session
    run = get_run(session, run_id)
    return jsonify({"run": run_json(run), "items": [event_json(e) for e in events_after(session, run.id, after)]})
