"""``/api/v1/keys``: a department user's SSH public keys; operators read them per department (issue 16).

A refused key answers 400 with an ``error`` code naming the problem (``ssh_private_key_refused``
for a pasted private key, ``ssh_key_invalid`` otherwise) and an English message that never
quotes the text sent.
"""

from __future__ import annotations

from flask import Response, jsonify

from cloudmgr.keys import services as keys
from cloudmgr.organisation import services as org
from cloudmgr.organisation.models import Role
from web.api.blueprint import api_route, api_user, spec
from web.api.body import Body, query_str
from web.api.spec import JSON, list_of
from web.core.uow import request_uow

DEPARTMENT_ROLES = (Role.DEPT_STAFF, Role.DEPT_HEAD)
# What the body reader lets through: the service refuses anything longer than a key, but must
# see a pasted private key (longer than a public key) to say that it is one.
BODY_TEXT_MAX = 65536

spec.tag("keys", "SSH public keys that department users put on the servers they request.")

SSH_KEY = spec.schema(
    "SshKey",
    {
        "type": "object",
        "required": ["id", "name", "key_type", "bits", "fingerprint", "public_key", "comment", "created_at", "owner"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "key_type": {"type": "string", "enum": [t.value for t in keys.KeyType]},
            "bits": {"type": "integer"},
            "fingerprint": {"type": "string", "description": 'As OpenSSH prints it: "SHA256:…".'},
            "public_key": {"type": "string", "description": "`<type> <base64>`, without the comment."},
            "comment": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "owner": {"type": "string", "description": "The username of the user who keeps the key."},
        },
    },
)


def key_json(key: keys.KeyInfo) -> JSON:
    return {
        "id": key.id,
        "name": key.name,
        "key_type": key.key_type.value,
        "bits": key.bits,
        "fingerprint": key.fingerprint,
        "public_key": key.public_key,
        "comment": key.comment,
        "created_at": key.created_at.isoformat(),
        "owner": key.owner_username,
    }


@api_route(
    "/keys",
    summary="SSH public keys",
    description=(
        "Department users get their own keys. Operators get every user's keys, of one department with "
        "`department` (read only)."
    ),
    tags=("keys",),
    roles=(*DEPARTMENT_ROLES, Role.OPERATOR),
    parameters=[
        {"name": "department", "in": "query", "schema": {"type": "string"}, "description": "Operators: only this."}
    ],
    response=list_of(SSH_KEY),
    errors=(404,),
    operation_id="list_ssh_keys",
)
def list_ssh_keys() -> Response:
    actor = api_user().actor
    session = request_uow().session
    if keys.may_keep_keys(actor):
        found = keys.list_keys(session, actor)
    else:
        department_key = query_str("department")
        department_id = org.get_department(session, department_key).id if department_key is not None else None
        found = keys.list_department_keys(session, actor, department_id)
    return jsonify({"items": [key_json(key) for key in found]})


@api_route(
    "/keys",
    method="POST",
    summary="Add an SSH public key",
    description=(
        "`public_key` is one line of an OpenSSH .pub file: ssh-ed25519, ecdsa-sha2-nistp256/384/521, or "
        "ssh-rsa of at least 2048 bits. A private key is refused (`ssh_private_key_refused`) and not stored."
    ),
    tags=("keys",),
    roles=DEPARTMENT_ROLES,
    request_body=spec.schema(
        "SshKeyBody",
        {
            "type": "object",
            "required": ["name", "public_key"],
            "properties": {
                "name": {"type": "string", "maxLength": keys.NAME_MAX},
                "public_key": {"type": "string", "maxLength": keys.MAX_TEXT_LENGTH},
            },
        },
    ),
    response=SSH_KEY,
    status=201,
    errors=(409,),
    operation_id="create_ssh_key",
)
def create_ssh_key() -> tuple[Response, int]:
    body = Body()
    name = body.string("name", max_length=keys.NAME_MAX)
    text = body.string("public_key", max_length=BODY_TEXT_MAX)
    body.done()
    added = keys.add_key(request_uow().session, api_user().actor, name, text)
    return jsonify(key_json(added)), 201


@api_route(
    "/keys/<int(max=2147483647):key_id>",
    method="DELETE",
    summary="Delete one of your SSH public keys",
    description="Servers that already have the key keep it. Another user's key is not found (404).",
    tags=("keys",),
    roles=DEPARTMENT_ROLES,
    status=204,
    errors=(404,),
    operation_id="delete_ssh_key",
)
def delete_ssh_key(key_id: int) -> tuple[str, int]:
    keys.delete_key(request_uow().session, api_user().actor, key_id)
    return "", 204
