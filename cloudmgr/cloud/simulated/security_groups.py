"""The simulated Neutron's security groups: a "default" group per project made on first
use (with Neutron's rules), groups converged to a set of rules checked the way Neutron
checks them, the security-group quota, and a server's groups changed like Nova does."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Sequence
from typing import Any

from cloudmgr.cloud.checks import canonical_rule
from cloudmgr.cloud.errors import CloudBadRequest, CloudConflict, CloudNotFound, CloudQuotaExceeded
from cloudmgr.cloud.simulated.quotas import quota_of
from cloudmgr.cloud.simulated.records import find_live, iso, live_servers, now, require_project, touch
from cloudmgr.cloud.simulated.store import SimulatedStore
from cloudmgr.cloud.types import ALLOW_ALL_EGRESS, REMOTE_GROUP_SELF, UNLIMITED, SecurityGroup, SecurityRule

DEFAULT_GROUP = "default"

#: Protocols Neutron knows by name; any other is a number 0-255.
PROTOCOL_NAMES = frozenset(
    {"tcp", "udp", "icmp", "icmpv6", "ipv6-icmp", "sctp", "ah", "esp", "gre", "igmp", "ipip", "udplite", "vrrp"}
)
PORT_PROTOCOLS = frozenset({"tcp", "udp", "sctp", "udplite", "6", "17", "132", "136"})
ICMP_PROTOCOLS = frozenset({"icmp", "icmpv6", "ipv6-icmp", "1", "58"})

#: Neutron's rules of a project's default group (its two ingress-from-self rules, IPv4
#: and IPv6, read as one rule: a rule's ethertype follows its CIDR).
DEFAULT_GROUP_RULES = (SecurityRule("ingress", remote_group=REMOTE_GROUP_SELF), *ALLOW_ALL_EGRESS)


def _bad_rule(action: str, detail: str) -> CloudBadRequest:
    return CloudBadRequest(f"{action} rejected as invalid", detail, status_code=400)


def check_rule(state: dict[str, Any], project_id: str, rule: SecurityRule, action: str) -> None:
    """CloudBadRequest (CloudNotFound for a missing remote group) where Neutron says so."""
    if rule.direction not in ("ingress", "egress"):
        raise _bad_rule(action, f"Invalid input for direction. Reason: {rule.direction!r} is not in ingress, egress.")
    protocol = rule.protocol
    known = protocol is None or protocol in PROTOCOL_NAMES or (protocol.isdigit() and 0 <= int(protocol) <= 255)
    if not known:
        raise _bad_rule(action, f"Security group rule protocol {protocol} not supported.")
    port_min, port_max = rule.port_min, rule.port_max
    if port_min is not None or port_max is not None:
        if protocol is None:
            raise _bad_rule(action, "Must also specify protocol if port range is given.")
        if protocol in PORT_PROTOCOLS:
            for port in (port_min, port_max):
                if port is not None and not 1 <= port <= 65535:
                    raise _bad_rule(action, f"Invalid value for port {port}.")
            if port_min is None or port_max is None or port_min > port_max:
                raise _bad_rule(action, "For TCP/UDP protocols, port_range_min must be <= port_range_max")
        elif protocol in ICMP_PROTOCOLS:
            for label, value in (("type", port_min), ("code", port_max)):
                if value is not None and not 0 <= value <= 255:
                    raise _bad_rule(action, f"Invalid value for ICMP {label} {value}.")
            if port_min is None:
                raise _bad_rule(action, "ICMP code (port_range_max) given without an ICMP type (port_range_min).")
        else:
            raise _bad_rule(action, f"Ports cannot be given for protocol {protocol}.")
    if rule.remote_cidr is not None and rule.remote_group is not None:
        raise _bad_rule(action, "Only remote_ip_prefix or remote_group_id may be provided.")
    if rule.remote_cidr is not None:
        try:
            ipaddress.ip_network(rule.remote_cidr, strict=False)
        except ValueError:
            raise _bad_rule(action, f"'{rule.remote_cidr}' is not a valid IP subnet.") from None
    if rule.remote_group not in (None, REMOTE_GROUP_SELF):
        remote = state.setdefault("security_groups", {}).get(rule.remote_group)
        if remote is None or remote["project_id"] != project_id:
            raise CloudNotFound(f"{action} failed: not found", f"Security group {rule.remote_group} does not exist")


def _rule_record(rule: SecurityRule) -> dict[str, Any]:
    return {
        "direction": rule.direction,
        "protocol": rule.protocol,
        "port_min": rule.port_min,
        "port_max": rule.port_max,
        "remote_cidr": rule.remote_cidr,
        "remote_group": rule.remote_group,
    }


def _new_group(state: dict[str, Any], project_id: str, name: str, description: str) -> dict[str, Any]:
    group = {
        "id": str(uuid.uuid4()),
        "name": name,
        "description": description,
        "project_id": project_id,
        "created_at": iso(now()),
        "rules": [_rule_record(r) for r in (DEFAULT_GROUP_RULES if name == DEFAULT_GROUP else ALLOW_ALL_EGRESS)],
    }
    state["security_groups"][group["id"]] = group
    return group


def project_groups(state: dict[str, Any], project_id: str) -> list[dict[str, Any]]:
    """The project's groups, its default one made first if missing (as Neutron does)."""
    groups = [g for g in state.setdefault("security_groups", {}).values() if g["project_id"] == project_id]
    if not any(g["name"] == DEFAULT_GROUP for g in groups):
        groups.append(_new_group(state, project_id, DEFAULT_GROUP, "Default security group"))
    return sorted(groups, key=lambda g: (g["created_at"], g["id"]))


def find_group(state: dict[str, Any], project_id: str, name_or_id: str) -> dict[str, Any] | None:
    groups = project_groups(state, project_id)
    return next((g for g in groups if g["id"] == name_or_id), None) or next(
        (g for g in groups if g["name"] == name_or_id), None
    )


def to_security_group(group: dict[str, Any]) -> SecurityGroup:
    return SecurityGroup(
        id=group["id"],
        name=group["name"],
        rules=frozenset(SecurityRule(**r) for r in group["rules"]),
        description=group["description"],
        project_id=group["project_id"],
    )


def _check_group_name(name: str, action: str) -> None:
    if not name or not name.strip() or len(name) > 255:
        raise CloudBadRequest(f"{action} rejected as invalid", "a group name of 1 to 255 characters is required")
    if name == DEFAULT_GROUP:
        raise CloudBadRequest(f"{action} rejected as invalid", "the project's default group belongs to Neutron")


class SimulatedSecurityGroups(SimulatedStore):
    def ensure_security_group(
        self, project_id: str, name: str, description: str, rules: Sequence[SecurityRule]
    ) -> SecurityGroup:
        action = f"ensure security group {name} of project {project_id}"
        _check_group_name(name, action)
        wanted = {canonical_rule(r) for r in rules}
        with self._transaction() as state:
            require_project(state, project_id)
            for rule in wanted:
                check_rule(state, project_id, rule, action)
            group = next((g for g in project_groups(state, project_id) if g["name"] == name), None)
            if group is None:
                limit = quota_of(state, project_id).network.security_groups
                if limit != UNLIMITED and len(project_groups(state, project_id)) + 1 > limit:
                    raise CloudQuotaExceeded(
                        f"{action} refused: quota exceeded",
                        "Quota exceeded for resources: ['security_group'].",
                        status_code=409,
                    )
                group = _new_group(state, project_id, name, description)
            group["description"] = description
            group["rules"] = [_rule_record(r) for r in sorted(wanted, key=repr)]
            return to_security_group(group)

    def delete_security_group(self, project_id: str, name: str) -> None:
        action = f"delete security group {name} of project {project_id}"
        _check_group_name(name, action)
        with self._transaction() as state:
            group = next(
                (
                    g
                    for g in state.setdefault("security_groups", {}).values()
                    if g["project_id"] == project_id and g["name"] == name
                ),
                None,
            )
            if group is None:
                return
            users = [s["id"] for s in live_servers(state, project_id) if name in (s.get("security_groups") or ())]
            if users:
                raise CloudConflict(
                    f"{action} refused: conflicts with the resource's current state",
                    f"Security Group {group['id']} in use by servers {', '.join(users)}.",
                    status_code=409,
                )
            del state["security_groups"][group["id"]]

    def list_security_groups(self, project_id: str) -> list[SecurityGroup]:
        with self._transaction() as state:
            require_project(state, project_id)
            groups = [to_security_group(g) for g in project_groups(state, project_id)]
        return sorted(groups, key=lambda g: (g.name, g.id))

    def set_server_security_groups(self, server_id: str, names: Sequence[str]) -> None:
        with self._transaction() as state:
            record = find_live(state, server_id)
            wanted = []
            for name in dict.fromkeys(names):
                group = find_group(state, record["project_id"], name)
                if group is None:
                    raise CloudNotFound(
                        f"add security group {name} to server {server_id} failed: not found",
                        f"Security group {name} not found for project {record['project_id']}.",
                        status_code=404,
                    )
                wanted.append(group["name"])
            if sorted(wanted) != sorted(record.get("security_groups") or ()):
                touch(record, security_groups=sorted(wanted))


def boot_security_groups(state: dict[str, Any], project_id: str, requested: Sequence[str], action: str) -> list[str]:
    """The names of the groups a new server gets (the project's default without any), or
    CloudBadRequest for a group the project does not have, as Nova answers a boot."""
    names = []
    for name_or_id in requested or (DEFAULT_GROUP,):
        group = find_group(state, project_id, name_or_id)
        if group is None:
            raise CloudBadRequest(f"{action} rejected as invalid", f"Security group {name_or_id} not found.")
        names.append(group["name"])
    return sorted(set(names))
