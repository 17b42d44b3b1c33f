"""``/api/v1/volumes`` and ``/api/v1/servers/<id>/public-address``: a department's data volumes and
its servers' public addresses after provisioning (issue 16).

Each change answers 202 with the volume (or address) in the state of the change under way; a
``storage`` work item makes it on the cloud and the state then says how it ended (``failed``
with a ``fault`` naming the cloud's reason, the quota given back).  Refusals name the field:
``{"error": "storage_invalid", "message": "size_gb: ..."}``.  Department staff and heads act on
their department's; operators see every department's and may detach, delete and release.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from cloudmgr.organisation import services as org
from cloudmgr.organisation.models import Role
from cloudmgr.storage import services as storage
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body, query_str
from web.api.spec import JSON, list_of
from web.core.uow import request_uow

DEPARTMENT_ROLES = (Role.DEPT_STAFF, Role.DEPT_HEAD)
READERS = (*DEPARTMENT_ROLES, Role.OPERATOR)
VOLUME_PATH = "/volumes/<int(max=2147483647):volume_id>"
SERVER_PATH = "/servers/<int(max=2147483647):server_id>/public-address"

spec.tag("storage", "A department's data volumes and its servers' public addresses.")

VOLUME = spec.schema(
    "Volume",
    {
        "type": "object",
        "required": ["id", "name", "cloud", "size_gb", "volume_type", "state", "server_id", "department_id"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "cloud": {"type": "string"},
            "department_id": {"type": "integer"},
            "size_gb": {"type": "integer"},
            "volume_type": {"type": ["string", "null"]},
            "state": {"type": "string", "enum": [s.value for s in storage.VolumeState]},
            "fault": {"type": ["string", "null"], "description": "Why the last change failed."},
            "server_id": {"type": ["integer", "null"], "description": "The server it is attached to."},
            "server_name": {"type": ["string", "null"]},
            "volume_id": {"type": ["string", "null"], "description": "The cloud's id."},
            "monthly_price": {"type": ["string", "null"], "description": "Yuan per month at the type's price."},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
)

ADDRESS = spec.schema(
    "PublicAddress",
    {
        "type": "object",
        "required": ["server_id", "address", "state"],
        "properties": {
            "server_id": {"type": "integer"},
            "address": {"type": ["string", "null"]},
            "state": {"type": "string", "enum": [s.value for s in storage.AddressState]},
            "fault": {"type": ["string", "null"]},
        },
    },
)


def volume_json(volume: storage.VolumeInfo) -> JSON:
    return {
        "id": volume.id,
        "name": volume.name,
        "cloud": volume.cloud_key,
        "department_id": volume.department_id,
        "size_gb": volume.size_gb,
        "volume_type": volume.volume_type,
        "state": volume.state.value,
        "fault": volume.fault,
        "server_id": volume.server_id,
        "server_name": volume.server_name,
        "volume_id": volume.volume_id,
        "monthly_price": str(volume.monthly_price) if volume.monthly_price is not None else None,
        "created_at": volume.created_at.isoformat(),
    }


def address_json(address: storage.AddressInfo) -> JSON:
    return {
        "server_id": address.server_id,
        "address": address.address,
        "state": address.state.value,
        "fault": address.fault,
    }


@api_route(
    "/volumes",
    summary="Data volumes",
    description=(
        "Department users get their department's volumes, attached or not. Operators get every department's, "
        "or one department's with `department`."
    ),
    tags=("storage",),
    roles=READERS,
    parameters=[
        {"name": "department", "in": "query", "schema": {"type": "string"}, "description": "Operators: only this."}
    ],
    response=list_of(VOLUME),
    errors=(404,),
    operation_id="list_volumes",
)
def list_volumes() -> Response:
    actor = api_user().actor
    session = request_uow().session
    department_key = query_str("department") if not actor.is_department else None
    department_id = org.get_department(session, department_key).id if department_key is not None else None
    found = storage.list_volumes(session, actor, department_id=department_id)
    return jsonify({"items": [volume_json(v) for v in found]})


@api_route(
    "/volumes",
    method="POST",
    summary="Create a data volume",
    description=(
        "An empty volume of `size_gb` GB (1 to 2048) of `volume_type`, a type offered on `cloud` (a cloud of "
        "your department). Holds 1 volume and its GB of the department's quota (409 `quota_exceeded` when it "
        "does not fit); the volume is `available` once the cloud made it."
    ),
    tags=("storage",),
    roles=DEPARTMENT_ROLES,
    request_body=spec.schema(
        "VolumeBody",
        {
            "type": "object",
            "required": ["name", "size_gb", "cloud", "volume_type"],
            "properties": {
                "name": {"type": "string", "maxLength": storage.NAME_MAX},
                "size_gb": {"type": "integer", "minimum": storage.MIN_GB, "maximum": storage.MAX_GB},
                "cloud": {"type": "string"},
                "volume_type": {"type": "string", "description": "The cloud's name of an offered volume type."},
            },
        },
    ),
    response=VOLUME,
    status=202,
    errors=(409,),
    operation_id="create_volume",
)
def create_volume() -> tuple[Response, int]:
    body = Body()
    name = body.string("name", max_length=storage.NAME_MAX)
    size = _size(body)
    cloud = body.string("cloud", max_length=64)
    volume_type = body.string("volume_type", max_length=255)
    body.done()
    made = storage.create_volume(
        request_uow().session,
        api_user().actor,
        name=name,
        size_gb=size,
        cloud_key=cloud,
        volume_type_name=volume_type,
    )
    return jsonify(volume_json(made)), 202


def _size(body: Body) -> Any:
    """The size as sent: the service says what a size may be (and names the field)."""
    size = body.raw("size_gb")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        body.problem("size_gb: a whole number of GB")
    return size


@api_route(
    VOLUME_PATH,
    summary="A data volume",
    description="Another department's volume is not found (404).",
    tags=("storage",),
    roles=READERS,
    response=VOLUME,
    errors=(404,),
    operation_id="get_volume",
)
def get_volume(volume_id: int) -> Response:
    return jsonify(volume_json(storage.get_volume(request_uow().session, api_user().actor, volume_id)))


@api_route(
    VOLUME_PATH,
    method="DELETE",
    summary="Delete a data volume",
    description="Only a volume attached to no server (detach it first: 409). Its quota is given back once it is gone.",
    tags=("storage",),
    roles=READERS,
    response=VOLUME,
    status=202,
    errors=(404, 409),
    operation_id="delete_volume",
)
def delete_volume(volume_id: int) -> tuple[Response, int]:
    return jsonify(volume_json(storage.delete_volume(request_uow().session, api_user().actor, volume_id))), 202


@api_route(
    f"{VOLUME_PATH}/attach",
    method="POST",
    summary="Attach a data volume to a server",
    description="To one of the department's active servers on the volume's cloud (`server_id`).",
    tags=("storage",),
    roles=DEPARTMENT_ROLES,
    request_body=spec.schema(
        "AttachVolumeBody",
        {"type": "object", "required": ["server_id"], "properties": {"server_id": {"type": "integer"}}},
    ),
    response=VOLUME,
    status=202,
    errors=(404, 409),
    operation_id="attach_volume",
)
def attach_volume(volume_id: int) -> tuple[Response, int]:
    body = Body()
    server_id = body.integer("server_id", minimum=1)
    body.done()
    attached = storage.attach_volume(request_uow().session, api_user().actor, volume_id, server_id)
    return jsonify(volume_json(attached)), 202


@api_route(
    f"{VOLUME_PATH}/detach",
    method="POST",
    summary="Detach a data volume from its server",
    tags=("storage",),
    roles=READERS,
    response=VOLUME,
    status=202,
    errors=(404, 409),
    operation_id="detach_volume",
)
def detach_volume(volume_id: int) -> tuple[Response, int]:
    Body(optional=True).done()
    return jsonify(volume_json(storage.detach_volume(request_uow().session, api_user().actor, volume_id))), 202


@api_route(
    f"{VOLUME_PATH}/extend",
    method="POST",
    summary="Extend a data volume",
    description="To `size_gb`, more than it has and at most 2048; the extra GB are held in the quota until it grew.",
    tags=("storage",),
    roles=DEPARTMENT_ROLES,
    request_body=spec.schema(
        "ExtendVolumeBody",
        {"type": "object", "required": ["size_gb"], "properties": {"size_gb": {"type": "integer"}}},
    ),
    response=VOLUME,
    status=202,
    errors=(404, 409),
    operation_id="extend_volume",
)
def extend_volume(volume_id: int) -> tuple[Response, int]:
    body = Body()
    size = _size(body)
    body.done()
    extended = storage.extend_volume(request_uow().session, api_user().actor, volume_id, size)
    return jsonify(volume_json(extended)), 202


@api_route(
    SERVER_PATH,
    method="POST",
    summary="Ask for a public address for a server",
    description=(
        "Only for an active server in the internet zone (another zone: 400 naming `zone`). Holds 1 floating IP "
        "of the department's quota."
    ),
    tags=("storage",),
    roles=DEPARTMENT_ROLES,
    response=ADDRESS,
    status=202,
    errors=(404, 409),
    operation_id="request_public_address",
)
def request_public_address(server_id: int) -> tuple[Response, int]:
    Body(optional=True).done()
    address = storage.request_public_address(request_uow().session, api_user().actor, server_id)
    return jsonify(address_json(address)), 202


@api_route(
    SERVER_PATH,
    method="DELETE",
    summary="Release a server's public address",
    tags=("storage",),
    roles=READERS,
    response=ADDRESS,
    status=202,
    errors=(404, 409),
    operation_id="release_public_address",
)
def release_public_address(server_id: int) -> tuple[Response, int]:
    address = storage.release_public_address(request_uow().session, api_user().actor, server_id)
    return jsonify(address_json(address)), 202
