"""Human names of the domain's codes (roles, levels, cloud kinds, zones, places), translatable.

Templates use them through the ``label_*`` filters registered by :func:`init_app`, e.g.
``{{ cloud.kind|label_kind }}``.  Unknown codes are shown as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from flask import Flask, g, has_request_context
from flask_babel import format_decimal, gettext
from flask_babel import lazy_gettext as _l

ROLE_LABELS: Mapping[str, object] = {
    "dept_staff": _l("Department IT staff"),
    "dept_head": _l("Department head"),
    "operator": _l("Cloud operator"),
    "finance": _l("Finance reviewer"),
    "admin": _l("Administrator"),
}

LEVEL_LABELS: Mapping[str, object] = {
    "province": _l("Province"),
    "city": _l("City"),
    "county": _l("County"),
}

KIND_LABELS: Mapping[str, object] = {
    "base": _l("Base cloud (the 1)"),
    "industry": _l("Industry cloud (the 14)"),
    "other": _l("Cloud added by need (the N)"),
}

ZONE_LABELS: Mapping[str, object] = {
    "internet": _l("Internet"),
    "extranet": _l("E-government extranet"),
}

# The province's eleven prefecture-level cities and the counties in the organisation files.
PLACE_LABELS: Mapping[str, object] = {
    "shijiazhuang": _l("Shijiazhuang"),
    "tangshan": _l("Tangshan"),
    "qinhuangdao": _l("Qinhuangdao"),
    "handan": _l("Handan"),
    "xingtai": _l("Xingtai"),
    "baoding": _l("Baoding"),
    "zhangjiakou": _l("Zhangjiakou"),
    "chengde": _l("Chengde"),
    "cangzhou": _l("Cangzhou"),
    "langfang": _l("Langfang"),
    "hengshui": _l("Hengshui"),
    "qianan": _l("Qian'an"),
    "zhengding": _l("Zhengding"),
}


REQUEST_STATE_LABELS: Mapping[str, object] = {
    "draft": _l("Draft"),
    "submitted": _l("Waiting for approval"),
    "approved": _l("Approved"),
    "provisioning": _l("Provisioning"),
    "active": _l("Delivered"),
    "partially_active": _l("Partially delivered"),
    "failed": _l("Failed"),
    "rejected": _l("Rejected"),
    "cancelled": _l("Cancelled"),
    "retired": _l("Retired"),
}

SERVER_STATE_LABELS: Mapping[str, object] = {
    "pending": _l("Pending"),
    "building": _l("Building"),
    "active": _l("Running"),
    "stopped": _l("Stopped"),
    "error": _l("Error"),
    "cancelled": _l("Cancelled"),
    "deleting": _l("Deleting"),
    "deleted": _l("Deleted"),
}

# The ledger's resources (RAM is shown in GB).
RESOURCE_LABELS: Mapping[str, object] = {
    "cores": _l("vCPU cores"),
    "ram_mb": _l("Memory (GB)"),
    "instances": _l("Server count"),
    "networks": _l("Networks"),
    "floating_ips": _l("Floating IPs"),
    "volumes": _l("Volumes"),
    "volume_gb": _l("Volume storage (GB)"),
    "snapshots": _l("Volume snapshots"),
    "backups": _l("Volume backups"),
    "security_groups": _l("Security groups"),
    "security_group_rules": _l("Security group rules"),
}

# What happened to a request (RequestEvent.action).
EVENT_LABELS: Mapping[str, object] = {
    "create": _l("Created"),
    "submit": _l("Submitted"),
    "approve": _l("Approved"),
    "reject": _l("Rejected"),
    "cancel": _l("Cancelled"),
    "retry": _l("Retried"),
    "provision": _l("Provisioning started"),
    "provisioned": _l("Provisioning finished"),
    "resize": _l("Resize"),
    "retire": _l("Retired"),
    "resume": _l("Resumed"),
}

CHANGE_STATE_LABELS: Mapping[str, object] = {
    "pending": _l("Waiting for an operator"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
}

DRIFT_ACTION_LABELS: Mapping[str, object] = {
    "repaired": _l("Repaired"),
    "alerted": _l("Reported"),
}

REQUEST_KIND_LABELS: Mapping[str, object] = {
    "create": _l("New servers"),
    "resize": _l("Resize"),
}

# The colour of a state badge: ok (green), pending (amber), bad (red), off (grey).
_STATE_CLASSES: Mapping[str, str] = {
    "draft": "off",
    "submitted": "pending",
    "approved": "pending",
    "provisioning": "pending",
    "active": "ok",
    "partially_active": "warn",
    "failed": "bad",
    "rejected": "bad",
    "cancelled": "off",
    "retired": "off",
    "pending": "pending",
    "building": "pending",
    "stopped": "off",
    "error": "bad",
    "deleting": "pending",
    "deleted": "off",
    "repaired": "ok",
    "alerted": "warn",
}


def _lookup(table: Mapping[str, object], code: object) -> str:
    if code is None or code == "":
        return ""
    key = str(getattr(code, "value", code))
    if not has_request_context():
        return str(table.get(key, key))
    # A list page asks for the same few labels hundreds of times, and each lazy string
    # looks the locale up again: resolve each once per request.
    cache: dict[tuple[int, str], str] = g.setdefault("_resolved_labels", {})
    resolved = cache.get((id(table), key))
    if resolved is None:
        resolved = cache[(id(table), key)] = str(table.get(key, key))
    return resolved


def role_label(code: object) -> str:
    return _lookup(ROLE_LABELS, code)


def level_label(code: object) -> str:
    return _lookup(LEVEL_LABELS, code)


def kind_label(code: object) -> str:
    return _lookup(KIND_LABELS, code)


def zone_label(code: object) -> str:
    return _lookup(ZONE_LABELS, code)


def place_label(code: object) -> str:
    return _lookup(PLACE_LABELS, code)


def request_state_label(code: object) -> str:
    return _lookup(REQUEST_STATE_LABELS, code)


def server_state_label(code: object) -> str:
    return _lookup(SERVER_STATE_LABELS, code)


def resource_label(code: object) -> str:
    return _lookup(RESOURCE_LABELS, code)


def event_label(code: object) -> str:
    return _lookup(EVENT_LABELS, code)


def change_state_label(code: object) -> str:
    return _lookup(CHANGE_STATE_LABELS, code)


def drift_action_label(code: object) -> str:
    return _lookup(DRIFT_ACTION_LABELS, code)


def request_kind_label(code: object) -> str:
    return _lookup(REQUEST_KIND_LABELS, code)


# The quota files' named sizes (quotas/sizes.yaml); another name is shown as the file writes it.
MB_PER_GB = 1024


def gb(mb: int | None) -> str:
    """Megabytes as gigabytes, without a needless ``.0``: 2048 -> ``2``, 512 -> ``0.5``."""
    if mb is None:
        return "—"
    value = Decimal(mb) / MB_PER_GB
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


QUOTA_SIZE_LABELS: Mapping[str, object] = {
    "small": _l("Small"),
    "medium": _l("Medium"),
    "large": _l("Large"),
    "xlarge": _l("Extra large"),
}


def quota_size_label(name: str, limits: Mapping[str, int] | None = None) -> str:
    """``small`` → 小型; with its limits (the ledger's units, RAM in MB):
    小型：16 核 / 32 GB 内存 / 8 台云主机 / 500 GB 云硬盘 / 2 个公网地址."""
    label = _lookup(QUOTA_SIZE_LABELS, name)
    if not limits:
        return label
    parts = []
    if "cores" in limits:
        parts.append(gettext("%(n)d cores", n=limits["cores"]))
    if "ram_mb" in limits:
        parts.append(gettext("%(gb)s GB memory", gb=gb(limits["ram_mb"])))
    if "instances" in limits:
        parts.append(gettext("%(n)d servers", n=limits["instances"]))
    if "volume_gb" in limits:
        parts.append(gettext("%(gb)s GB volumes", gb=format_decimal(limits["volume_gb"])))
    if "floating_ips" in limits:
        parts.append(gettext("%(n)d public addresses", n=limits["floating_ips"]))
    text: str = gettext("%(size)s: %(limits)s", size=label, limits=" / ".join(parts))
    return text


CAPACITY_SOURCE_LABELS: Mapping[str, object] = {
    "live": _l("read live from the cloud"),
    "snapshot": _l("from the latest capacity snapshot"),
    "none": _l("no capacity data"),
}


def capacity_source_label(code: object) -> str:
    return _lookup(CAPACITY_SOURCE_LABELS, code)


def state_class(code: object) -> str:
    """The CSS class of a state badge: ``state state-ok`` …"""
    key = str(getattr(code, "value", code))
    return f"state state-{_STATE_CLASSES.get(key, 'off')}"


def init_app(app: Flask) -> None:
    app.add_template_filter(role_label, "label_role")
    app.add_template_filter(level_label, "label_level")
    app.add_template_filter(kind_label, "label_kind")
    app.add_template_filter(zone_label, "label_zone")
    app.add_template_filter(place_label, "label_place")
    app.add_template_filter(request_state_label, "label_request_state")
    app.add_template_filter(server_state_label, "label_server_state")
    app.add_template_filter(resource_label, "label_resource")
    app.add_template_filter(event_label, "label_event")
    app.add_template_filter(change_state_label, "label_change_state")
    app.add_template_filter(drift_action_label, "label_drift_action")
    app.add_template_filter(request_kind_label, "label_request_kind")
    app.add_template_filter(state_class, "state_class")
    app.add_template_filter(quota_size_label, "label_quota_size")
    app.add_template_filter(capacity_source_label, "label_capacity_source")
