"""``/api/v1/departments/<key>/resources``: one department's SSH keys (fingerprints only), data
volumes, firewall groups (one line a rule), public addresses, snapshots, backups and backup
schedules, with the quota ledger's usage of them per cloud (issue 16).  Operators and
administrators read it; ``cloud`` narrows it to one cloud."""

from __future__ import annotations

from flask import Response, jsonify

from cloudmgr.firewall.services import Direction, Protocol, RemoteKind
from cloudmgr.organisation.models import Role
from cloudmgr.resources import services as resources
from web.api.blueprint import api_route, api_user, spec
from web.api.body import query_str
from web.api.spec import JSON
from web.api.storage import VOLUME, volume_json
from web.core.uow import request_uow

VIEWERS = (Role.OPERATOR, Role.ADMIN)

spec.tag("resources", "What a department holds on its clouds, for operators and administrators.")

NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_STRING = {"type": ["string", "null"]}
CLOUD = spec.schema(
    "ResourceCloud",
    {
        "type": "object",
        "required": ["key", "name_zh", "name_en"],
        "properties": {"key": {"type": "string"}, "name_zh": {"type": "string"}, "name_en": {"type": "string"}},
    },
)
RULE_LINE = spec.schema(
    "FirewallRuleLine",
    {
        "type": "object",
        "description": (
            "One rule as it is shown: a rule the cloud keeps once per address family (0.0.0.0/0 and ::/0, "
            "or one security group) is one line with both families."
        ),
        "required": ["direction", "protocol", "port_min", "port_max", "remote_kind", "remote", "families", "sources"],
        "properties": {
            "direction": {"type": "string", "enum": [d.value for d in Direction]},
            "protocol": {"type": "string", "enum": [p.value for p in Protocol]},
            "port_min": NULLABLE_INT,
            "port_max": NULLABLE_INT,
            "remote_kind": {"type": "string", "enum": [k.value for k in RemoteKind]},
            "remote": {
                "type": "string",
                "description": 'The CIDR or group; "" for any address of both families.',
            },
            "families": {"type": "array", "items": {"type": "string", "enum": ["IPv4", "IPv6"]}},
            "sources": {
                "type": "array",
                "items": {"type": "string"},
                "description": 'Template names, "department" for its own rules, "egress" for the open egress added.',
            },
        },
    },
)
COPY = {
    "type": "object",
    "required": ["id", "volume_id", "volume_name", "cloud", "size_gb", "state", "scheduled", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "volume_id": {"type": "integer"},
        "volume_name": {"type": "string"},
        "cloud": {"type": "string"},
        "size_gb": {"type": "integer"},
        "state": {"type": "string", "enum": [s.value for s in resources.CopyState]},
        "fault": NULLABLE_STRING,
        "scheduled": {"type": "boolean"},
        "requested_by": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
DEPARTMENT_RESOURCES = spec.schema(
    "DepartmentResources",
    {
        "type": "object",
        "required": [
            "department",
            "cloud",
            "clouds",
            "ssh_keys",
            "volumes",
            "firewall_groups",
            "public_addresses",
            "snapshots",
            "backups",
            "backup_schedules",
            "usage",
        ],
        "properties": {
            "department": {
                "type": "object",
                "required": ["key", "name_zh", "name_en"],
                "properties": {
                    "key": {"type": "string"},
                    "name_zh": {"type": "string"},
                    "name_en": {"type": "string"},
                },
            },
            "cloud": {"type": ["string", "null"], "description": "The cloud asked for; null: every cloud."},
            "clouds": {"type": "array", "items": CLOUD, "description": "The department's clouds."},
            "ssh_keys": {
                "type": "array",
                "description": "Never the key itself: its type, size and fingerprint.",
                "items": {
                    "type": "object",
                    "required": ["id", "name", "key_type", "bits", "fingerprint", "owner", "created_at"],
                    "properties": {
                        "id": {"type": "integer"},
                        "name": {"type": "string"},
                        "key_type": {"type": "string"},
                        "bits": {"type": "integer"},
                        "fingerprint": {"type": "string"},
                        "owner": {"type": "string"},
                        "created_at": {"type": "string", "format": "date-time"},
                    },
                },
            },
            "volumes": {"type": "array", "items": VOLUME},
            "firewall_groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["request_id", "request_state", "cloud", "zone", "group", "templates", "rules"],
                    "properties": {
                        "request_id": {"type": "integer"},
                        "name_prefix": {"type": "string"},
                        "application_system": NULLABLE_STRING,
                        "request_state": {"type": "string"},
                        "cloud": {"type": "string"},
                        "zone": {"type": "string"},
                        "group": NULLABLE_STRING,
                        "templates": {"type": "array", "items": {"type": "string"}},
                        "rules": {"type": "array", "items": RULE_LINE},
                        "servers": {"type": "integer"},
                        "problem": NULLABLE_STRING,
                    },
                },
            },
            "public_addresses": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "address", "state", "server_id", "cloud"],
                    "properties": {
                        "id": {"type": "integer"},
                        "address": NULLABLE_STRING,
                        "state": {"type": "string", "enum": [s.value for s in resources.AddressState]},
                        "fault": NULLABLE_STRING,
                        "server_id": NULLABLE_INT,
                        "server_name": NULLABLE_STRING,
                        "cloud": {"type": "string"},
                    },
                },
            },
            "snapshots": {"type": "array", "items": COPY},
            "backups": {"type": "array", "items": COPY},
            "backup_schedules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["volume_id", "cloud", "frequency", "weekday", "hour", "keep", "enabled"],
                    "properties": {
                        "volume_id": {"type": "integer"},
                        "volume_name": {"type": "string"},
                        "cloud": {"type": "string"},
                        "frequency": {"type": "string", "enum": [f.value for f in resources.Frequency]},
                        "weekday": {**NULLABLE_INT, "description": "0 = Monday (weekly schedules)."},
                        "hour": {"type": "integer", "description": "In the province's time, UTC+8."},
                        "keep": {"type": "integer"},
                        "enabled": {"type": "boolean"},
                        "next_run_at": {"type": "string", "format": "date-time"},
                    },
                },
            },
            "usage": {
                "type": "array",
                "description": (
                    "Per cloud and resource: what the listing counts and the ledger's used, reserved and limit "
                    "(null: no ledger row, or not counted here). agrees: used <= listed <= used + reserved."
                ),
                "items": {
                    "type": "object",
                    "required": ["cloud", "resources"],
                    "properties": {
                        "cloud": {"type": "string"},
                        "resources": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["resource", "listed", "used", "reserved", "limit", "agrees"],
                                "properties": {
                                    "resource": {"type": "string"},
                                    "listed": NULLABLE_INT,
                                    "used": NULLABLE_INT,
                                    "reserved": NULLABLE_INT,
                                    "limit": NULLABLE_INT,
                                    "agrees": {"type": ["boolean", "null"]},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
)


def _cloud(cloud: resources.CloudRef) -> JSON:
    return {"key": cloud.key, "name_zh": cloud.name_zh, "name_en": cloud.name_en}


def _copy(copy: resources.CopyRow) -> JSON:
    return {
        "id": copy.id,
        "volume_id": copy.volume_id,
        "volume_name": copy.volume_name,
        "cloud": copy.cloud.key,
        "size_gb": copy.size_gb,
        "state": copy.state.value,
        "fault": copy.fault,
        "scheduled": copy.scheduled,
        "requested_by": copy.requested_by,
        "created_at": copy.created_at.isoformat(),
    }


def department_resources_json(found: resources.DepartmentResources) -> JSON:
    return {
        "department": {
            "key": found.department_key,
            "name_zh": found.department_name_zh,
            "name_en": found.department_name_en,
        },
        "cloud": found.cloud.key if found.cloud is not None else None,
        "clouds": [_cloud(cloud) for cloud in found.clouds],
        "ssh_keys": [
            {
                "id": key.id,
                "name": key.name,
                "key_type": key.key_type,
                "bits": key.bits,
                "fingerprint": key.fingerprint,
                "owner": key.owner,
                "created_at": key.created_at.isoformat(),
            }
            for key in found.keys
        ],
        "volumes": [volume_json(volume) for volume in found.volumes],
        "firewall_groups": [
            {
                "request_id": group.request_id,
                "name_prefix": group.name_prefix,
                "application_system": group.application_system,
                "request_state": group.request_state.value,
                "cloud": group.cloud.key,
                "zone": group.zone,
                "group": group.group_name,
                "templates": list(group.templates),
                "rules": [line.as_json() for line in group.lines],
                "servers": group.servers,
                "problem": group.problem,
            }
            for group in found.firewall_groups
        ],
        "public_addresses": [
            {
                "id": address.id,
                "address": address.address,
                "state": address.state.value,
                "fault": address.fault,
                "server_id": address.server_id,
                "server_name": address.server_name,
                "cloud": address.cloud.key,
            }
            for address in found.addresses
        ],
        "snapshots": [_copy(copy) for copy in found.snapshots],
        "backups": [_copy(copy) for copy in found.backups],
        "backup_schedules": [
            {
                "volume_id": schedule.volume_id,
                "volume_name": schedule.volume_name,
                "cloud": schedule.cloud.key,
                "frequency": schedule.frequency.value,
                "weekday": schedule.weekday,
                "hour": schedule.hour,
                "keep": schedule.keep,
                "enabled": schedule.enabled,
                "next_run_at": schedule.next_run_at.isoformat(),
            }
            for schedule in found.schedules
        ],
        "usage": [
            {
                "cloud": usage.cloud.key,
                "resources": [
                    {
                        "resource": line.resource.value,
                        "listed": line.listed,
                        "used": line.used,
                        "reserved": line.reserved,
                        "limit": line.limit,
                        "agrees": line.agrees,
                    }
                    for line in usage.lines
                ],
            }
            for usage in found.usage
        ],
    }


@api_route(
    "/departments/<key>/resources",
    summary="A department's resources",
    description=(
        "The department's SSH keys (fingerprints only), data volumes, firewall groups of its live requests "
        "(one line a rule), public addresses, snapshots, backups and backup schedules, and per cloud the quota "
        "ledger's usage of them beside what is listed. `cloud` narrows it to one cloud. An unknown department "
        "or cloud is 404."
    ),
    tags=("resources",),
    roles=VIEWERS,
    parameters=[{"name": "cloud", "in": "query", "schema": {"type": "string"}, "description": "A cloud's key."}],
    response=DEPARTMENT_RESOURCES,
    errors=(404,),
    operation_id="department_resources",
)
def department_resources(key: str) -> Response:
    found = resources.department_resources(request_uow().session, api_user().actor, key, query_str("cloud"))
    return jsonify(department_resources_json(found))
