"""Capacity per base with the targets' forecasts, snapshots, and in-cloud consolidation runs (operators)."""

from __future__ import annotations

from flask import Response, jsonify

from cloudmgr.capacity import consolidation
from cloudmgr.capacity.services import take_snapshots
from cloudmgr.organisation.models import Role
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body
from web.api.spec import list_of
from web.common.capacity import capacity_config, forecast_json, overview, run_json, snapshot_json, totals_json
from web.core.uow import request_uow, run_job_outside_request, runtime

OPERATORS = (Role.OPERATOR,)

spec.tag("capacity", "Physical capacity per data-centre base, the targets and their forecast, consolidation runs.")

_INT = {"type": "integer"}
_TOTALS_PROPS = {
    name: _INT
    for name in (
        "physical_servers",
        "vcpus_total",
        "vcpus_used",
        "ram_mb_total",
        "ram_mb_used",
        "disk_gb_total",
        "disk_gb_used",
    )
}
_HOST = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "state": {"type": "string"}}
    | {k: _INT for k in _TOTALS_PROPS if k != "physical_servers"},
}
CAPACITY_SOURCE = spec.schema(
    "CapacitySource",
    {
        "type": "object",
        "description": "The newest snapshot of one source: an OpenStack endpoint (placement) or a CSV import.",
        "properties": {
            "source": {"type": "string", "enum": ["placement", "csv"]},
            "endpoint": {"type": "string"},
            "clouds": {"type": "array", "items": {"type": "string"}},
            "taken_at": {"type": "string", "format": "date-time"},
            "hosts": {"type": "array", "items": _HOST},
        }
        | _TOTALS_PROPS,
    },
)
CAPACITY_BASE = spec.schema(
    "CapacityBase",
    {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "name_zh": {"type": "string"},
            "name_en": {"type": "string"},
            "totals": {
                "type": "object",
                "properties": _TOTALS_PROPS
                | {"headroom": {"type": "object", "properties": {"vcpus": _INT, "ram_mb": _INT, "disk_gb": _INT}}},
            },
            "sources": {"type": "array", "items": CAPACITY_SOURCE},
        },
    },
)
_DATE_OR_NULL = {"type": ["string", "null"], "format": "date"}
CAPACITY_TARGET = spec.schema(
    "CapacityTarget",
    {
        "type": "object",
        "description": "A target and its forecast: a least-squares line through the daily server counts; "
        "earliest/latest use the slope ± 2 standard errors. expected is null when not enough data or not "
        "reached at the current rate; on_time is null when unknown.",
        "properties": {
            "date": {"type": "string", "format": "date"},
            "servers": _INT,
            "label_zh": {"type": "string"},
            "label_en": {"type": "string"},
            "current": _INT,
            "reached": {"type": "boolean"},
            "expected": _DATE_OR_NULL,
            "earliest": _DATE_OR_NULL,
            "latest": _DATE_OR_NULL,
            "servers_per_day": {"type": ["number", "null"]},
            "points": _INT,
            "on_time": {"type": ["boolean", "null"]},
        },
    },
)
CAPACITY = spec.schema(
    "Capacity",
    {
        "type": "object",
        "properties": {
            "bases": {"type": "array", "items": CAPACITY_BASE},
            "targets": {"type": "array", "items": CAPACITY_TARGET},
            "trend": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"date": {"type": "string", "format": "date"}, "servers": _INT},
                },
            },
        },
    },
)
SNAPSHOT_RESULT = spec.schema(
    "CapacitySnapshotResult",
    {
        "type": "object",
        "properties": {"snapshots": _INT, "hosts": _INT, "problems": {"type": "array", "items": {"type": "string"}}},
    },
)
_MOVE = {
    "type": "object",
    "properties": {
        "server_id": {"type": "string"},
        "vm": {"type": "string"},
        "from": {"type": "string"},
        "to": {"type": "string"},
        "kind": {
            "type": "string",
            "enum": ["live", "cold"],
            "description": "live: a running server; cold: a stopped one, moved while off and left off.",
        },
    },
}
_RUN_PROPS = {
    "id": _INT,
    "cloud": {"type": "string"},
    "state": {"type": "string", "enum": ["planned", "running", "stopping", "stopped", "done", "failed"]},
    "next_wave": _INT,
    "wave_count": _INT,
    "moves_done": _INT,
    "moves_failed": _INT,
    "last_error": {"type": ["string", "null"]},
    "created_by": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"},
    "started_by": {"type": ["string", "null"]},
    "started_at": {"type": ["string", "null"], "format": "date-time"},
    "finished_at": {"type": ["string", "null"], "format": "date-time"},
    "summary": {
        "type": "object",
        "description": "moves vs min_moves_bound, emptied vs max_emptiable, the method and solver status; "
        "vms counts every consumer holding a Placement allocation, fixed those that cannot move (their hosts are "
        "never emptied), cold_moves the stopped servers moved while off.",
    },
}
RUN_SUMMARY = spec.schema("ConsolidationRunSummary", {"type": "object", "properties": _RUN_PROPS})
RUN = spec.schema(
    "ConsolidationRun",
    {
        "type": "object",
        "properties": _RUN_PROPS
        | {
            "waves": {"type": "array", "items": {"type": "array", "items": _MOVE}},
            "emptied": {"type": "array", "items": {"type": "string"}},
        },
    },
)
RUN_ID = "/consolidation-runs/<int(max=2147483647):run_id>"


@api_route(
    "/capacity",
    summary="Capacity per base (totals, sources, hosts) and the targets with their forecast",
    tags=("capacity",),
    roles=OPERATORS,
    response=CAPACITY,
)
def capacity() -> Response:
    config = capacity_config()
    data = overview(request_uow().session, config)
    return jsonify(
        {
            "bases": [
                {
                    "key": b.key,
                    "name_zh": b.name_zh,
                    "name_en": b.name_en,
                    "totals": totals_json(b.totals),
                    "sources": [snapshot_json(s) for s in b.snapshots],
                }
                for b in data.bases
            ],
            "targets": [forecast_json(f) for f in data.forecasts],
            "trend": [{"date": d.isoformat(), "servers": n} for d, n in data.trend],
        }
    )


@api_route(
    "/capacity/snapshots",
    method="POST",
    summary="Read every OpenStack endpoint's Placement now and store a snapshot of each",
    tags=("capacity",),
    roles=OPERATORS,
    response=SNAPSHOT_RESULT,
    status=201,
    operation_id="take_capacity_snapshots",
)
def take_capacity_snapshots() -> tuple[Response, int]:
    Body(optional=True).done()
    rt = runtime()
    # The operator asked for the capacity as it is now: the answer is the snapshot itself.
    result = run_job_outside_request(take_snapshots, rt.db, rt.providers, capacity_config())
    return jsonify({"snapshots": result.snapshots, "hosts": result.hosts, "problems": result.problems}), 201


@api_route(
    "/consolidation-runs",
    summary="Consolidation runs, newest first",
    tags=("capacity",),
    roles=OPERATORS,
    response=list_of(RUN_SUMMARY),
)
def list_consolidation_runs() -> Response:
    runs = consolidation.list_runs(request_uow().session)
    return jsonify({"items": [run_json(r, waves=False) for r in runs]})


@api_route(
    "/consolidation-runs",
    method="POST",
    summary="Plan a consolidation run of one cloud from its live state (nothing moves until it is started)",
    tags=("capacity",),
    roles=OPERATORS,
    request_body=spec.schema(
        "ConsolidationRunBody",
        {
            "type": "object",
            "required": ["cloud"],
            "properties": {
                "cloud": {"type": "string"},
                "max_wave": {"type": "integer", "minimum": 1, "maximum": 500, "default": 5},
            },
        },
    ),
    response=RUN,
    status=201,
    errors=(404,),
    operation_id="create_consolidation_run",
)
def create_consolidation_run() -> tuple[Response, int]:
    body = Body()
    cloud = body.string("cloud", max_length=64)
    max_wave = body.integer("max_wave", required=False, minimum=1, maximum=500)
    body.done()
    rt = runtime()
    # The plan is the answer: it is made from the cloud's live placement while the operator waits.
    run_id = run_job_outside_request(
        consolidation.plan_run,
        rt.db,
        rt.providers,
        cloud,
        actor=api_user().actor,
        max_wave=5 if max_wave is None else max_wave,
    )
    return jsonify(run_json(consolidation.get_run(request_uow().session, run_id))), 201


@api_route(
    RUN_ID,
    summary="One consolidation run with its waves",
    tags=("capacity",),
    roles=OPERATORS,
    response=RUN,
    errors=(404,),
)
def get_consolidation_run(run_id: int) -> Response:
    return jsonify(run_json(consolidation.get_run(request_uow().session, run_id)))


@api_route(
    RUN_ID + "/start",
    method="POST",
    summary="Start (or resume) a planned or stopped run",
    tags=("capacity",),
    roles=OPERATORS,
    response=RUN,
    errors=(404, 409),
    operation_id="start_consolidation_run",
)
def start_consolidation_run(run_id: int) -> Response:
    Body(optional=True).done()
    run = consolidation.start_run(request_uow().session, run_id, actor=api_user().actor)
    return jsonify(run_json(run))


@api_route(
    RUN_ID + "/stop",
    method="POST",
    summary="Stop a running run: the move under way finishes, then it stops",
    tags=("capacity",),
    roles=OPERATORS,
    response=RUN,
    errors=(404, 409),
    operation_id="stop_consolidation_run",
)
def stop_consolidation_run(run_id: int) -> Response:
    Body(optional=True).done()
    run = consolidation.stop_run(request_uow().session, run_id, actor=api_user().actor)
    return jsonify(run_json(run))


# --- the consolidation planner ---------------------------------------------------------------------

MAX_SERVERS_CSV = 20 * 1024 * 1024


@api_route(
    "/planner",
    method="POST",
    summary="Plan hosts, placements and waves for an inventory of servers (the CSV of `cloudmgr plan consolidate`)",
    tags=("capacity",),
    roles=OPERATORS,
    request_body=spec.schema(
        "PlannerBody",
        {
            "type": "object",
            "required": ["servers_csv", "host_vcpus", "host_ram_gb", "host_disk_gb"],
            "properties": {
                "servers_csv": {
                    "type": "string",
                    "description": "name,vcpus,ram_gb,disk_gb[,cpu_p95,ram_p95,anti_affinity,department,zone,"
                    "classification]",
                },
                "host_vcpus": {"type": "integer", "minimum": 1},
                "host_ram_gb": {"type": "integer", "minimum": 1},
                "host_disk_gb": {"type": "integer", "minimum": 1},
                "cpu_ratio_percent": {"type": "integer", "minimum": 100, "maximum": 1600, "default": 100},
                "ram_ratio_percent": {"type": "integer", "minimum": 100, "maximum": 400, "default": 100},
                "max_wave": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 50},
                "blank_is_non_classified": {
                    "type": "boolean",
                    "default": False,
                    "description": "Plan rows with an empty classification (and not in the legacy inventory) as "
                    "non-classified. By default they are refused as unknown. Rows named after an inventory system "
                    "always take the inventory's classification; classified rows are always refused.",
                },
            },
        },
    ),
    response=spec.schema(
        "ConsolidationPlan",
        {
            "type": "object",
            "properties": {
                "hosts_used": {"type": "integer"},
                "lower_bound": {"type": "integer"},
                "ratio": {"type": "number"},
                "placements": {"type": "object", "additionalProperties": {"type": "integer"}},
                "waves": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
                "refused": {"type": "array", "items": {"type": "object"}},
            },
        },
    ),
    operation_id="plan_consolidation",
)
def plan_consolidation() -> Response:
    body = Body()
    text = body.string("servers_csv", max_length=MAX_SERVERS_CSV)
    vcpus = body.integer("host_vcpus", minimum=1, maximum=100000)
    ram_gb = body.integer("host_ram_gb", minimum=1, maximum=10**8)
    disk_gb = body.integer("host_disk_gb", minimum=1, maximum=10**9)
    cpu_ratio = body.integer("cpu_ratio_percent", required=False, minimum=100, maximum=1600)
    ram_ratio = body.integer("ram_ratio_percent", required=False, minimum=100, maximum=400)
    max_wave = body.integer("max_wave", required=False, minimum=1, maximum=100000)
    blank_is_non_classified = body.boolean("blank_is_non_classified", required=False, default=False)
    body.done()
    # numpy, numba and OR-Tools load here, on first use, not when the app starts.
    from cloudmgr.capacity.planner import HostSpec
    from cloudmgr.capacity.planner.plan import plan_servers_csv

    host = HostSpec(vcpus, float(ram_gb), float(disk_gb), (cpu_ratio or 100) / 100, (ram_ratio or 100) / 100)
    plan = plan_servers_csv(
        request_uow().session,
        text,
        host,
        actor=api_user().actor,
        entry_point="planner.api",
        blank_is_non_classified=bool(blank_is_non_classified),
        max_wave=max_wave or 50,
    )
    return jsonify(plan.as_dict())
