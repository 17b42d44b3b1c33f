"""``/api/v1/volumes/<id>/snapshots|backups|backup-schedule``, ``/snapshots/<id>[/restore]`` and
``/backups/<id>[/restore]``: a department volume's snapshots and backups; ``/servers/<id>/snapshots``
and ``/server-snapshots/<id>[/restore]``: a server's snapshots, restored by rebuilding the server
(issue 16).

Each POST (and DELETE) records the change and answers 202: the cloud makes it shortly after, and
the copy's ``state`` goes from ``pending`` to ``ready`` (or ``failed``, with a ``fault``), or from
``deleting`` to gone.  Another department's volume, server or copy is not found (404); a full
quota answers 409 ``quota_exceeded``; bad input 400 naming the field (``copy_invalid``), a server or
copy in the wrong state 409 (``copy_conflict``).
"""

from __future__ import annotations

from flask import Response, jsonify

from cloudmgr.backups import services as backups
from cloudmgr.errors import NotFound
from cloudmgr.organisation.models import Role
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body
from web.api.spec import JSON, list_of
from web.core.uow import request_uow

ACTORS = (Role.DEPT_STAFF, Role.DEPT_HEAD, Role.OPERATOR)
VOLUME = "/volumes/<int(max=2147483647):volume_id>"
COPY_ID = "<int(max=2147483647):copy_id>"

spec.tag(
    "backups",
    "Snapshots and backups of a department's volumes, the schedule that backs a volume up, and its servers' snapshots.",
)

_COPY_PROPERTIES: JSON = {
    "id": {"type": "integer"},
    "volume_id": {"type": "integer", "description": "Our volume's id (as in /volumes/{id})."},
    "tag": {"type": "string", "description": "The idempotency tag the cloud holds it by."},
    "size_gb": {"type": "integer"},
    "state": {"type": "string", "enum": [s.value for s in backups.CopyState]},
    "fault": {"type": ["string", "null"]},
    "requested_by": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"},
}
SNAPSHOT = spec.schema(
    "VolumeSnapshot",
    {"type": "object", "required": list(_COPY_PROPERTIES), "properties": _COPY_PROPERTIES},
)
BACKUP = spec.schema(
    "VolumeBackup",
    {
        "type": "object",
        "required": [*_COPY_PROPERTIES, "schedule_id"],
        "properties": {
            **_COPY_PROPERTIES,
            "schedule_id": {"type": ["integer", "null"], "description": "null: made by hand."},
        },
    },
)
RESTORED = spec.schema(
    "RestoredVolume",
    {
        "type": "object",
        "required": ["volume_id", "state", "size_gb"],
        "properties": {
            "volume_id": {"type": "integer", "description": "The new volume of the department."},
            "state": {"type": "string"},
            "size_gb": {"type": "integer"},
        },
    },
)
_SCHEDULE_FIELDS: JSON = {
    "frequency": {"type": "string", "enum": [f.value for f in backups.Frequency]},
    "weekday": {
        "type": ["integer", "null"],
        "minimum": 0,
        "maximum": 6,
        "description": "Weekly: 0 Monday … 6 Sunday.",
    },
    "hour": {"type": "integer", "minimum": 0, "maximum": 23, "description": "In UTC+8."},
    "keep": {"type": "integer", "minimum": 1, "maximum": backups.KEEP_MAX},
    "enabled": {"type": "boolean"},
}
SCHEDULE = spec.schema(
    "BackupSchedule",
    {
        "type": "object",
        "required": ["frequency", "weekday", "hour", "keep", "enabled", "next_run_at"],
        "properties": {**_SCHEDULE_FIELDS, "next_run_at": {"type": "string", "format": "date-time"}},
    },
)


SERVER_SNAPSHOT = spec.schema(
    "ServerSnapshot",
    {
        "type": "object",
        "required": ["id", "server_id", "name", "tag", "state", "size_bytes", "created_at", "restore_state"],
        "properties": {
            "id": {"type": "integer"},
            "server_id": {"type": "integer", "description": "Our server's id (as in /servers/{id})."},
            "name": {"type": "string"},
            "tag": {"type": "string", "description": "The idempotency tag the cloud holds the image by."},
            "image_id": {"type": ["string", "null"], "description": "The cloud's image id, once made."},
            "size_bytes": {"type": ["integer", "null"]},
            "state": {"type": "string", "enum": [s.value for s in backups.CopyState]},
            "fault": {"type": ["string", "null"]},
            "requested_by": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "restore_state": {
                "type": ["string", "null"],
                "enum": [*(s.value for s in backups.RestoreState), None],
                "description": "The last restore of the server from it; null: never restored.",
            },
            "restore_fault": {"type": ["string", "null"]},
            "restored_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
)


def _server_snapshot_json(record: backups.ServerSnapshotRecord) -> JSON:
    return {
        "id": record.id,
        "server_id": record.server_row_id,
        "name": record.name,
        "tag": record.tag,
        "image_id": record.image_id,
        "size_bytes": record.size_bytes,
        "state": record.state.value,
        "fault": record.fault,
        "requested_by": record.requested_by,
        "created_at": record.created_at.isoformat(),
        "restore_state": record.restore_state.value if record.restore_state is not None else None,
        "restore_fault": record.restore_fault,
        "restored_at": record.restored_at.isoformat() if record.restored_at is not None else None,
    }


def _copy_json(record: backups.VolumeSnapshotRecord | backups.VolumeBackupRecord) -> JSON:
    found: JSON = {
        "id": record.id,
        "volume_id": record.volume_row_id,
        "tag": record.tag,
        "size_gb": record.size_gb,
        "state": record.state.value,
        "fault": record.fault,
        "requested_by": record.requested_by,
        "created_at": record.created_at.isoformat(),
    }
    if isinstance(record, backups.VolumeBackupRecord):
        found["schedule_id"] = record.schedule_id
    return found


def _schedule_json(schedule: backups.BackupSchedule) -> JSON:
    return {
        "frequency": schedule.frequency.value,
        "weekday": schedule.weekday,
        "hour": schedule.hour,
        "keep": schedule.keep,
        "enabled": schedule.enabled,
        "next_run_at": schedule.next_run_at.isoformat(),
    }


@api_route(
    f"{VOLUME}/snapshots",
    summary="A volume's snapshots",
    tags=("backups",),
    response=list_of(SNAPSHOT),
    errors=(404,),
    operation_id="list_volume_snapshots",
)
def list_volume_snapshots(volume_id: int) -> Response:
    found = backups.list_snapshots(request_uow().session, api_user().actor, volume_id)
    return jsonify({"items": [_copy_json(s) for s in found]})


@api_route(
    f"{VOLUME}/snapshots",
    method="POST",
    summary="Snapshot a volume",
    description="Takes one snapshot and the volume's size in GB of the department's quota.",
    tags=("backups",),
    roles=ACTORS,
    response=SNAPSHOT,
    status=202,
    errors=(404, 409),
    operation_id="create_volume_snapshot",
)
def create_volume_snapshot(volume_id: int) -> tuple[Response, int]:
    record = backups.take_snapshot(request_uow().session, api_user().actor, volume_id)
    return jsonify(_copy_json(record)), 202


@api_route(
    f"/snapshots/{COPY_ID}/restore",
    method="POST",
    summary="Restore a snapshot to a new volume",
    description="The source volume is untouched; the new volume is the department's, not attached.",
    tags=("backups",),
    roles=ACTORS,
    response=RESTORED,
    status=202,
    errors=(404, 409),
    operation_id="restore_volume_snapshot",
)
def restore_volume_snapshot(copy_id: int) -> tuple[Response, int]:
    volume = backups.restore_snapshot(request_uow().session, api_user().actor, copy_id)
    return jsonify({"volume_id": volume.id, "state": volume.state.value, "size_gb": volume.size_gb}), 202


@api_route(
    f"{VOLUME}/backups",
    summary="A volume's backups",
    tags=("backups",),
    response=list_of(BACKUP),
    errors=(404,),
    operation_id="list_volume_backups",
)
def list_volume_backups(volume_id: int) -> Response:
    found = backups.list_backups(request_uow().session, api_user().actor, volume_id)
    return jsonify({"items": [_copy_json(b) for b in found]})


@api_route(
    f"{VOLUME}/backups",
    method="POST",
    summary="Back a volume up now",
    description="A backup made by hand is kept until removed; a schedule prunes only its own.",
    tags=("backups",),
    roles=ACTORS,
    response=BACKUP,
    status=202,
    errors=(404, 409),
    operation_id="create_volume_backup",
)
def create_volume_backup(volume_id: int) -> tuple[Response, int]:
    record = backups.back_up_now(request_uow().session, api_user().actor, volume_id)
    return jsonify(_copy_json(record)), 202


@api_route(
    f"/backups/{COPY_ID}/restore",
    method="POST",
    summary="Restore a backup to a new volume",
    description="The backed-up volume is untouched; the new volume is the department's, not attached.",
    tags=("backups",),
    roles=ACTORS,
    response=RESTORED,
    status=202,
    errors=(404, 409),
    operation_id="restore_volume_backup",
)
def restore_volume_backup(copy_id: int) -> tuple[Response, int]:
    volume = backups.restore_backup(request_uow().session, api_user().actor, copy_id)
    return jsonify({"volume_id": volume.id, "state": volume.state.value, "size_gb": volume.size_gb}), 202


@api_route(
    f"{VOLUME}/backup-schedule",
    summary="A volume's backup schedule",
    tags=("backups",),
    response=SCHEDULE,
    errors=(404,),
    operation_id="get_backup_schedule",
)
def get_backup_schedule(volume_id: int) -> Response:
    schedule = backups.get_schedule(request_uow().session, api_user().actor, volume_id)
    if schedule is None:
        raise NotFound(f"volume {volume_id} has no backup schedule")
    return jsonify(_schedule_json(schedule))


@api_route(
    f"{VOLUME}/backup-schedule",
    method="PUT",
    summary="Set a volume's backup schedule",
    description="Daily or weekly at `hour` (UTC+8); the newest `keep` scheduled backups are kept.",
    tags=("backups",),
    roles=ACTORS,
    request_body=spec.schema(
        "BackupScheduleBody",
        {"type": "object", "required": ["frequency", "hour", "keep"], "properties": _SCHEDULE_FIELDS},
    ),
    response=SCHEDULE,
    errors=(404, 409),
    operation_id="set_backup_schedule",
)
def set_backup_schedule(volume_id: int) -> Response:
    body = Body()
    frequency = body.string("frequency", max_length=16)
    hour = body.integer("hour", maximum=23)
    keep = body.integer("keep", minimum=1, maximum=backups.KEEP_MAX)
    weekday = body.integer("weekday", required=False, maximum=6)
    enabled = body.boolean("enabled", default=True)
    body.done()
    form = backups.ScheduleForm(frequency, hour, keep, weekday=weekday, enabled=enabled)
    return jsonify(_schedule_json(backups.set_schedule(request_uow().session, api_user().actor, volume_id, form)))


@api_route(
    f"{VOLUME}/backup-schedule",
    method="DELETE",
    summary="Stop backing a volume up on a schedule",
    description="The backups it made stay.",
    tags=("backups",),
    roles=ACTORS,
    status=204,
    errors=(404,),
    operation_id="delete_backup_schedule",
)
def delete_backup_schedule(volume_id: int) -> tuple[str, int]:
    backups.delete_schedule(request_uow().session, api_user().actor, volume_id)
    return "", 204


@api_route(
    f"/snapshots/{COPY_ID}",
    method="DELETE",
    summary="Delete a volume's snapshot",
    description=(
        "A ready or failed snapshot; not while it is being made or a volume is being made from it (409). "
        "Its snapshot and its GB go back to the department's quota once the cloud has deleted it."
    ),
    tags=("backups",),
    roles=ACTORS,
    response=SNAPSHOT,
    status=202,
    errors=(404, 409),
    operation_id="delete_volume_snapshot",
)
def delete_volume_snapshot(copy_id: int) -> tuple[Response, int]:
    record = backups.delete_volume_snapshot(request_uow().session, api_user().actor, copy_id)
    return jsonify(_copy_json(record)), 202


@api_route(
    f"/backups/{COPY_ID}",
    method="DELETE",
    summary="Delete a volume's backup",
    description=(
        "A backup made by hand (or left by a removed schedule), or a failed one; a ready backup of a schedule "
        "is its schedule's to prune beyond `keep` (409). Its backup goes back to the quota once deleted."
    ),
    tags=("backups",),
    roles=ACTORS,
    response=BACKUP,
    status=202,
    errors=(404, 409),
    operation_id="delete_volume_backup",
)
def delete_volume_backup(copy_id: int) -> tuple[Response, int]:
    record = backups.delete_backup(request_uow().session, api_user().actor, copy_id)
    return jsonify(_copy_json(record)), 202


# --- a server's snapshots ------------------------------------------------------------------------

SERVER = "/servers/<int(max=2147483647):server_id>"


@api_route(
    f"{SERVER}/snapshots",
    summary="A server's snapshots",
    tags=("backups",),
    response=list_of(SERVER_SNAPSHOT),
    errors=(404,),
    operation_id="list_server_snapshots",
)
def list_server_snapshots(server_id: int) -> Response:
    found = backups.list_server_snapshots(request_uow().session, api_user().actor, server_id)
    return jsonify({"items": [_server_snapshot_json(s) for s in found]})


@api_route(
    f"{SERVER}/snapshots",
    method="POST",
    summary="Snapshot a server",
    description=(
        "An image of the server's root disk (running or stopped; one snapshot or restore of a server at a "
        "time), in the department's project. Takes one of the department's snapshots quota."
    ),
    tags=("backups",),
    roles=ACTORS,
    request_body=spec.schema(
        "ServerSnapshotBody",
        {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "maxLength": backups.SNAPSHOT_NAME_MAX}},
        },
    ),
    response=SERVER_SNAPSHOT,
    status=202,
    errors=(400, 404, 409),
    operation_id="create_server_snapshot",
)
def create_server_snapshot(server_id: int) -> tuple[Response, int]:
    body = Body()
    name = body.string("name", max_length=1000)
    body.done()
    record = backups.take_server_snapshot(request_uow().session, api_user().actor, server_id, name)
    return jsonify(_server_snapshot_json(record)), 202


@api_route(
    f"/server-snapshots/{COPY_ID}",
    summary="One server snapshot",
    tags=("backups",),
    response=SERVER_SNAPSHOT,
    errors=(404,),
    operation_id="get_server_snapshot",
)
def get_server_snapshot(copy_id: int) -> Response:
    return jsonify(_server_snapshot_json(backups.get_server_snapshot(request_uow().session, api_user().actor, copy_id)))


@api_route(
    f"/server-snapshots/{COPY_ID}/restore",
    method="POST",
    summary="Restore a server from its snapshot",
    description=(
        "Rebuilds the server from the snapshot: its root disk is replaced by the snapshot's and what was "
        "written to it since is lost; its name, addresses, flavor and data volumes stay. `confirm` is the "
        "server's name (400 without it). `restore_state` goes queued, rebuilding, done (or failed)."
    ),
    tags=("backups",),
    roles=ACTORS,
    request_body=spec.schema(
        "ServerRestoreBody",
        {
            "type": "object",
            "required": ["confirm"],
            "properties": {"confirm": {"type": "string", "description": "The server's name."}},
        },
    ),
    response=SERVER_SNAPSHOT,
    status=202,
    errors=(400, 404, 409),
    operation_id="restore_server_snapshot",
)
def restore_server_snapshot(copy_id: int) -> tuple[Response, int]:
    body = Body()
    confirm = body.string("confirm", max_length=1000)
    body.done()
    record = backups.restore_server_snapshot(request_uow().session, api_user().actor, copy_id, confirm=confirm)
    return jsonify(_server_snapshot_json(record)), 202


@api_route(
    f"/server-snapshots/{COPY_ID}",
    method="DELETE",
    summary="Delete a server snapshot",
    description=(
        "A ready or failed snapshot; not while it is being made or the server is rebuilt from it (409). "
        "Its snapshot goes back to the department's quota once the cloud has deleted the image."
    ),
    tags=("backups",),
    roles=ACTORS,
    response=SERVER_SNAPSHOT,
    status=202,
    errors=(404, 409),
    operation_id="delete_server_snapshot",
)
def delete_server_snapshot(copy_id: int) -> tuple[Response, int]:
    record = backups.delete_server_snapshot(request_uow().session, api_user().actor, copy_id)
    return jsonify(_server_snapshot_json(record)), 202
