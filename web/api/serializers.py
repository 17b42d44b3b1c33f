"""JSON shapes of self-service requests, servers, the catalog and quotas, with their OpenAPI schemas."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import object_session

from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.firewall import services as firewall
from cloudmgr.quotas.models import QuotaChangeRequest, QuotaDrift
from cloudmgr.quotas.resources import RESOURCES, Resource
from cloudmgr.quotas.services import Balance
from cloudmgr.servicerequests.models import ManagedServer, RequestEvent, ServiceRequest
from cloudmgr.servicerequests.services import Quote
from cloudmgr.servicerequests.states import RequestState, ServerState
from web.api.blueprint import api_user, spec
from web.api.spec import JSON

RESOURCE_NAMES = [r.value for r in RESOURCES]

_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
_MONEY = {"type": "string", "description": 'Yuan per month, two decimals, e.g. "360.00".'}
_PER_RESOURCE_INT = {
    "type": "object",
    "description": "Per resource (cores, ram_mb in MB, instances, networks, floating_ips, volumes, "
    "volume_gb in GB, snapshots, backups, security_groups, security_group_rules).",
    "additionalProperties": {"type": "integer"},
}

CATALOG_ITEM = spec.schema(
    "CatalogItem",
    {
        "type": "object",
        "required": ["id", "kind", "cloud_name", "name_zh", "name_en", "monthly_price", "vcpus", "ram_mb", "disk_gb"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {
                "type": "string",
                "enum": [k.value for k in ItemKind],
                "description": "flavor, image, volume (a volume type, priced per GB-month) or address "
                "(the cloud's public address, priced per address-month).",
            },
            "cloud_name": {"type": "string", "description": "The cloud's own name for it."},
            "name_zh": {"type": "string"},
            "name_en": {"type": "string"},
            "monthly_price": _MONEY,
            "vcpus": {"type": "integer"},
            "ram_mb": {"type": "integer"},
            "disk_gb": {"type": "integer"},
        },
    },
)
REQUEST_EVENT = spec.schema(
    "RequestEvent",
    {
        "type": "object",
        "required": ["at", "actor", "action", "step", "from_state", "to_state", "reason"],
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "actor": {"type": "string"},
            "action": {"type": "string", "description": "create, submit, approve, reject, cancel, provision …"},
            "step": {"type": ["string", "null"], "description": "The approval step acted on."},
            "from_state": {"type": "string"},
            "to_state": {"type": "string"},
            "reason": {"type": ["string", "null"]},
        },
    },
)
SERVER = spec.schema(
    "Server",
    {
        "type": "object",
        "required": ["id", "request_id", "name", "state", "fault", "department", "cloud", "zone", "flavor"],
        "properties": {
            "id": {"type": "integer"},
            "request_id": {"type": "integer"},
            "name": {"type": "string"},
            "state": {"type": "string", "enum": [s.value for s in ServerState]},
            "fault": {"type": ["string", "null"], "description": "The cloud's reason when the server failed."},
            "department": {"type": "string"},
            "cloud": {"type": "string"},
            "zone": {"type": "string", "enum": ["internet", "extranet"]},
            "flavor": CATALOG_ITEM,
            "vcpus": {"type": "integer"},
            "ram_mb": {"type": "integer"},
            "cloud_server_id": {"type": ["string", "null"]},
            "host": {
                "type": ["string", "null"],
                "description": "The hypervisor the server runs on; always null for department users.",
            },
            "addresses": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            "expires_on": {"type": "string", "format": "date"},
            "created_at": {"type": "string", "format": "date-time"},
            "active_at": _DATE_TIME,
        },
    },
)
REQUEST = spec.schema(
    "Request",
    {
        "type": "object",
        "required": ["id", "kind", "state", "department", "cloud", "zone", "flavor", "count", "monthly_cost"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["create", "resize"]},
            "state": {"type": "string", "enum": [s.value for s in RequestState]},
            "state_reason": {"type": ["string", "null"]},
            "department": {"type": "string"},
            "cloud": {"type": "string"},
            "zone": {"type": "string"},
            "flavor": CATALOG_ITEM,
            "image": {"oneOf": [CATALOG_ITEM, {"type": "null"}]},
            "count": {"type": "integer"},
            "name_prefix": {"type": "string"},
            "application_system": {"type": ["string", "null"]},
            "legacy_system_id": {"type": ["integer", "null"]},
            "justification": {"type": "string"},
            "expires_on": {"type": "string", "format": "date"},
            "monthly_cost": _MONEY,
            "approval_steps": {"type": "array", "items": {"type": "string"}},
            "current_step": {"type": "integer"},
            "next_role": {"type": ["string", "null"], "description": "The role whose approval is awaited."},
            "target_server_id": {"type": ["integer", "null"]},
            "created_by": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "submitted_at": _DATE_TIME,
            "approved_at": _DATE_TIME,
            "finished_at": _DATE_TIME,
        },
    },
)
REQUEST_DETAIL = spec.schema(
    "RequestDetail",
    {
        "allOf": [
            REQUEST,
            {
                "type": "object",
                "required": ["servers", "events", "ssh_key", "user_data", "data_disks", "public_address"],
                "properties": {
                    "servers": {"type": "array", "items": SERVER},
                    "events": {"type": "array", "items": REQUEST_EVENT},
                    "ssh_key": {
                        "type": ["object", "null"],
                        "description": "The key put on the servers, as copied when the request was made.",
                        "properties": {"name": {"type": "string"}, "fingerprint": {"type": "string"}},
                    },
                    "user_data": {
                        "type": ["object", "null"],
                        "description": "Its size and first line only: user data may carry secrets.",
                        "properties": {"bytes": {"type": "integer"}, "first_line": {"type": "string"}},
                    },
                    "data_disks": {
                        "type": "array",
                        "description": "Each server's data disks.",
                        "items": {
                            "type": "object",
                            "properties": {"size_gb": {"type": "integer"}, "volume_type": {"type": "string"}},
                        },
                    },
                    "public_address": {"type": "boolean"},
                    "firewall": {
                        "type": ["object", "null"],
                        "description": "The firewall a request for new servers asked for (null for a resize): "
                        "its templates, its own rules, the rules its servers get now and why an operator "
                        "approves it (`approval_reasons`); `problem` says why it does not resolve now.",
                        "properties": {
                            "templates": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                                },
                            },
                            "rules": {"type": "array", "items": {"type": "object"}},
                            "group": {"type": ["string", "null"]},
                            "resolved": {"type": "array", "items": {"type": "string"}},
                            "approval_reasons": {"type": "array", "items": {"type": "string"}},
                            "problem": {"type": ["string", "null"]},
                        },
                    },
                },
            },
        ]
    },
)
QUOTE = spec.schema(
    "Quote",
    {
        "type": "object",
        "required": ["monthly_cost", "needs", "free", "limits", "fits", "approval_steps"],
        "properties": {
            "monthly_cost": _MONEY,
            "needs": _PER_RESOURCE_INT,
            "free": _PER_RESOURCE_INT,
            "limits": _PER_RESOURCE_INT,
            "fits": {"type": "boolean", "description": "Whether the request fits in the free quota now."},
            "approval_steps": {"type": "array", "items": {"type": "string"}},
            "firewall_reasons": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Why the firewall adds the operator's approval (empty: it does not).",
            },
        },
    },
)
RESOURCE_BALANCE = spec.schema(
    "ResourceBalance",
    {
        "type": "object",
        "required": ["limit", "reserved", "used", "free", "fill_ratio", "cloud_limit", "cloud_used", "drifted"],
        "properties": {
            "limit": {"type": "integer"},
            "reserved": {"type": "integer"},
            "used": {"type": "integer"},
            "free": {"type": "integer"},
            "fill_ratio": {"type": "number"},
            "cloud_limit": {"type": ["integer", "null"], "description": "Last seen on the cloud."},
            "cloud_used": {"type": ["integer", "null"]},
            "drifted": {"type": "boolean"},
        },
    },
)
QUOTA_BALANCE = spec.schema(
    "QuotaBalance",
    {
        "type": "object",
        "required": ["department", "cloud", "near_full", "drifted", "resources"],
        "properties": {
            "department": {"type": "string"},
            "cloud": {"type": "string"},
            "near_full": {"type": "boolean", "description": "A resource is more than 90% taken."},
            "drifted": {"type": "boolean", "description": "A cloud limit differs from the ledger's."},
            "resources": {
                "type": "object",
                "description": "Per resource; ram_mb in MB.",
                "additionalProperties": RESOURCE_BALANCE,
            },
        },
    },
)
QUOTA_CHANGE = spec.schema(
    "QuotaChange",
    {
        "type": "object",
        "required": ["id", "department", "cloud", "state", "automatic", "requested_limits", "previous_limits"],
        "properties": {
            "id": {"type": "integer"},
            "department": {"type": "string"},
            "cloud": {"type": "string"},
            "target_size": {"type": ["string", "null"]},
            "requested_limits": _PER_RESOURCE_INT,
            "previous_limits": _PER_RESOURCE_INT,
            "reason": {"type": "string"},
            "state": {"type": "string", "enum": ["pending", "approved", "rejected"]},
            "automatic": {"type": "boolean", "description": "Approved at once (one size up, once in 30 days)."},
            "requested_by": {"type": "string"},
            "requested_at": {"type": "string", "format": "date-time"},
            "decided_by": {"type": ["string", "null"]},
            "decided_at": _DATE_TIME,
            "decision_reason": {"type": ["string", "null"]},
        },
    },
)
QUOTA_DRIFT = spec.schema(
    "QuotaDrift",
    {
        "type": "object",
        "required": ["id", "department", "cloud", "resource", "expected", "found", "action", "detected_at"],
        "properties": {
            "id": {"type": "integer"},
            "department": {"type": "string"},
            "cloud": {"type": "string"},
            "resource": {"type": "string", "enum": RESOURCE_NAMES},
            "expected": {"type": "integer", "description": "The ledger's limit."},
            "found": {"type": "integer", "description": "The limit on the cloud."},
            "action": {"type": "string", "enum": ["repaired", "alerted"]},
            "detected_at": {"type": "string", "format": "date-time"},
            "resolved_at": _DATE_TIME,
        },
    },
)


def paged_list_of(item: JSON) -> JSON:
    return {
        "type": "object",
        "required": ["items", "total", "page", "per_page"],
        "properties": {
            "items": {"type": "array", "items": item},
            "total": {"type": "integer"},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
        },
    }


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def money(value: Decimal) -> str:
    return f"{Decimal(value):.2f}"


def catalog_item_json(item: CatalogItem) -> JSON:
    return {
        "id": item.id,
        "kind": item.kind,
        "cloud_name": item.cloud_name,
        "name_zh": item.name_zh,
        "name_en": item.name_en,
        "monthly_price": money(item.monthly_price),
        "vcpus": item.vcpus,
        "ram_mb": item.ram_mb,
        "disk_gb": item.disk_gb,
    }


def event_json(event: RequestEvent) -> JSON:
    return {
        "at": event.at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "step": event.step,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "reason": event.reason,
    }


def server_json(server: ManagedServer) -> JSON:
    return {
        "id": server.id,
        "request_id": server.request_id,
        "name": server.name,
        "state": server.state,
        "fault": server.fault,
        "department": server.department.key,
        "cloud": server.cloud.key,
        "zone": server.zone,
        "flavor": catalog_item_json(server.flavor),
        "vcpus": server.vcpus,
        "ram_mb": server.ram_mb,
        "cloud_server_id": server.server_id,
        # the caller's role decides (Actor.sees_hypervisors): departments are not shown the hosts
        "host": server.host if api_user().actor.sees_hypervisors else None,
        "addresses": {k: [str(a) for a in v] for k, v in (server.addresses or {}).items()},
        "expires_on": _day(server.expires_on),
        "created_at": _dt(server.created_at),
        "active_at": _dt(server.active_at),
    }


def request_json(req: ServiceRequest, *, detail: bool = False) -> JSON:
    body: JSON = {
        "id": req.id,
        "kind": req.kind,
        "state": req.state,
        "state_reason": req.state_reason,
        "department": req.department.key,
        "cloud": req.cloud.key,
        "zone": req.zone,
        "flavor": catalog_item_json(req.flavor),
        "image": catalog_item_json(req.image) if req.image is not None else None,
        "count": req.count,
        "name_prefix": req.name_prefix,
        "application_system": req.application_system,
        "legacy_system_id": req.legacy_system_id,
        "justification": req.justification,
        "expires_on": _day(req.expires_on),
        "monthly_cost": money(req.monthly_cost),
        "approval_steps": list(req.approval_steps or []),
        "current_step": req.current_step,
        "next_role": req.next_role,
        "target_server_id": req.target_server_id,
        "created_by": req.created_by,
        "created_at": _dt(req.created_at),
        "submitted_at": _dt(req.submitted_at),
        "approved_at": _dt(req.approved_at),
        "finished_at": _dt(req.finished_at),
    }
    if detail:
        body["servers"] = [server_json(s) for s in req.servers]
        body["events"] = [event_json(e) for e in req.events]
        body.update(_choices_json(req))
    return body


#: How much of the user data's first line a request's JSON shows.
USER_DATA_FIRST_LINE = 120


def _choices_json(req: ServiceRequest) -> JSON:
    user_data = None
    if req.user_data:
        first_line = req.user_data.split("\n", 1)[0][:USER_DATA_FIRST_LINE]
        user_data = {"bytes": len(req.user_data.encode("utf-8")), "first_line": first_line}
    key = None if req.ssh_key_name is None else {"name": req.ssh_key_name, "fingerprint": req.ssh_key_fingerprint}
    return {
        "ssh_key": key,
        "user_data": user_data,
        "data_disks": [{"size_gb": d["size_gb"], "volume_type": d["volume_type"]} for d in req.data_disks or []],
        "public_address": bool(req.public_address),
        "firewall": _firewall_json(req),
    }


def _firewall_json(req: ServiceRequest) -> JSON | None:
    session = object_session(req)
    if req.kind != "create" or session is None:
        return None
    chosen = firewall.request_firewall(session, req.id, req.department, req.zone)
    plan = chosen.plan
    return {
        "templates": [{"id": t.id, "name": t.name} for t in chosen.templates],
        "rules": [rule.as_json() for rule in chosen.own_rules],
        "group": plan.group_name if plan else None,
        "resolved": [rule.describe() for rule in plan.rules] if plan else [],
        "approval_reasons": list(plan.approval_reasons) if plan else [],
        "problem": chosen.problem,
    }


def _per_resource(values: Mapping[Any, int]) -> dict[str, int]:
    return {str(getattr(k, "value", k)): int(v) for k, v in values.items()}


def quote_json(quote: Quote) -> JSON:
    return {
        "monthly_cost": money(quote.monthly_cost),
        "needs": _per_resource(quote.needs),
        "free": _per_resource(quote.free),
        "limits": _per_resource(quote.limits),
        "fits": quote.fits,
        "approval_steps": list(quote.approval_steps),
        "firewall_reasons": list(quote.firewall_reasons),
    }


def balance_json(balance: Balance) -> JSON:
    # Per resource, the properties' arithmetic inline: the quota overview serialises every
    # department × cloud × resource on each call.
    resources: dict[str, Any] = {}
    near_full = drifted = False
    name = _RESOURCE_NAME
    for rb in balance.resources.values():
        limit, reserved, used, cloud_limit = rb.limit, rb.reserved, rb.used, rb.cloud_limit
        taken = used + reserved
        fill = taken / limit if limit else (1.0 if taken else 0.0)
        resource_drifted = cloud_limit is not None and cloud_limit != limit
        if fill > 0.9:
            near_full = True
        if resource_drifted:
            drifted = True
        resources[name[rb.resource]] = {
            "limit": limit,
            "reserved": reserved,
            "used": used,
            "free": max(limit - taken, 0),
            "fill_ratio": round(fill, 4),
            "cloud_limit": cloud_limit,
            "cloud_used": rb.cloud_used,
            "drifted": resource_drifted,
        }
    return {
        "department": balance.department_key,
        "cloud": balance.cloud_key,
        "near_full": near_full,
        "drifted": drifted,
        "resources": resources,
    }


# A resource's name by member: an enum's .value is a descriptor call, slow in a loop.
_RESOURCE_NAME: dict[Resource, str] = {r: r.value for r in Resource}


def change_json(change: QuotaChangeRequest) -> JSON:
    return {
        "id": change.id,
        "department": change.department.key,
        "cloud": change.cloud.key,
        "target_size": change.target_size,
        "requested_limits": _per_resource(change.requested_limits),
        "previous_limits": _per_resource(change.previous_limits),
        "reason": change.reason,
        "state": change.state,
        "automatic": change.automatic,
        "requested_by": change.requested_by,
        "requested_at": _dt(change.requested_at),
        "decided_by": change.decided_by,
        "decided_at": _dt(change.decided_at),
        "decision_reason": change.decision_reason,
    }


def drift_json(drift: QuotaDrift) -> JSON:
    return {
        "id": drift.id,
        "department": drift.department.key,
        "cloud": drift.cloud.key,
        "resource": drift.resource,
        "expected": drift.expected,
        "found": drift.found,
        "action": drift.action,
        "detected_at": _dt(drift.detected_at),
        "resolved_at": _dt(drift.resolved_at),
    }
