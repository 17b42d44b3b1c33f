"""Neutron's security groups of a department project, converged to a given set of rules,
and a running server's groups changed through Nova."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from cloudmgr.cloud.checks import canonical_rule, is_self_reference
from cloudmgr.cloud.errors import CloudBadRequest, CloudNotFound
from cloudmgr.cloud.openstack.connection import OpenStackConnection
from cloudmgr.cloud.types import REMOTE_GROUP_SELF, SecurityGroup, SecurityRule

#: Neutron makes this group in every project and keeps it; cloudmgr leaves it alone.
DEFAULT_GROUP = "default"


def to_rule(group_id: str, raw: Mapping[str, Any]) -> SecurityRule:
    """A Neutron rule (a dict, as listed inside its group) as our canonical rule."""
    remote_group = raw.get("remote_group_id")
    remote_cidr = raw.get("remote_ip_prefix")
    if remote_group is None and remote_cidr is None:
        remote_cidr = "::/0" if raw.get("ethertype") == "IPv6" else "0.0.0.0/0"
    return canonical_rule(
        SecurityRule(
            direction=str(raw.get("direction")),
            protocol=raw.get("protocol"),
            port_min=raw.get("port_range_min"),
            port_max=raw.get("port_range_max"),
            remote_cidr=remote_cidr,
            remote_group=REMOTE_GROUP_SELF if remote_group == group_id else remote_group,
        )
    )


def to_security_group(group: Any) -> SecurityGroup:
    group_id = str(group.id)
    return SecurityGroup(
        id=group_id,
        name=str(group.name or ""),
        rules=frozenset(to_rule(group_id, r) for r in group.security_group_rules or ()),
        description=str(group.description or ""),
        project_id=group.project_id,
    )


def _check_group_name(name: str, action: str) -> None:
    if not name or not name.strip() or len(name) > 255:
        raise CloudBadRequest(f"{action} rejected as invalid", "a group name of 1 to 255 characters is required")
    if name == DEFAULT_GROUP:
        raise CloudBadRequest(f"{action} rejected as invalid", "the project's default group belongs to Neutron")


class OpenStackSecurityGroups(OpenStackConnection):
    def _find_group_raw(self, project_id: str, name: str) -> Any | None:
        groups = list(self._admin.network.security_groups(project_id=project_id, name=name))
        # Two concurrent first calls can both create it: everyone then uses the oldest.
        return min(groups, key=lambda g: (str(g.created_at or ""), str(g.id))) if groups else None

    def ensure_security_group(
        self, project_id: str, name: str, description: str, rules: Sequence[SecurityRule]
    ) -> SecurityGroup:
        action = f"ensure security group {name} of project {project_id}"
        _check_group_name(name, action)
        wanted = {canonical_rule(r) for r in rules}
        self._require_project(project_id)
        network = self._admin.network

        def converge() -> Any:
            # Looking up first makes the whole call safe to repeat after any failure.
            group = self._find_group_raw(project_id, name)
            if group is None:
                group = network.create_security_group(project_id=project_id, name=name, description=description)
            elif (group.description or "") != description:
                group = network.update_security_group(group, description=description)
            group_id = str(group.id)
            present = {r["id"]: to_rule(group_id, r) for r in group.security_group_rules or ()}
            # Add before removing, so a rule Neutron refuses leaves the old rules in force.
            for rule in wanted - set(present.values()):
                network.create_security_group_rule(
                    security_group_id=group_id,
                    project_id=project_id,
                    direction=rule.direction,
                    ether_type=rule.ethertype,
                    protocol=rule.protocol,
                    port_range_min=rule.port_min,
                    port_range_max=rule.port_max,
                    remote_ip_prefix=rule.remote_cidr,
                    remote_group_id=group_id if is_self_reference(rule) else rule.remote_group,
                )
            for rule_id, rule in present.items():
                if rule not in wanted:
                    network.delete_security_group_rule(rule_id, ignore_missing=True)
            return network.get_security_group(group_id)

        return to_security_group(self._call(action, converge))

    def delete_security_group(self, project_id: str, name: str) -> None:
        action = f"delete security group {name} of project {project_id}"
        _check_group_name(name, action)

        def delete() -> None:
            group = self._find_group_raw(project_id, name)
            if group is not None:
                self._admin.network.delete_security_group(group, ignore_missing=True)

        self._call(action, delete)

    def list_security_groups(self, project_id: str) -> list[SecurityGroup]:
        self._require_project(project_id)
        groups = self._call(
            f"list security groups of project {project_id}",
            lambda: list(self._admin.network.security_groups(project_id=project_id)),
        )
        return sorted((to_security_group(g) for g in groups), key=lambda g: (g.name, g.id))

    def set_server_security_groups(self, server_id: str, names: Sequence[str]) -> None:
        wanted = set(names)
        server = self._call(f"get server {server_id}", lambda: self._admin.compute.get_server(server_id))
        if not server.project_id:
            raise CloudNotFound(f"server {server_id} has no project")
        # Nova looks a group's name up in the caller's project: act as the server's project.
        compute = self._project_conn(str(server.project_id)).compute
        current = {str(g.get("name")) for g in server.security_groups or ()}
        for name in sorted(wanted - current):
            self._call(
                f"add security group {name} to server {server_id}",
                functools.partial(compute.add_security_group_to_server, server_id, name),
            )
        for name in sorted(current - wanted):
            self._call(
                f"remove security group {name} from server {server_id}",
                functools.partial(compute.remove_security_group_from_server, server_id, name),
            )
