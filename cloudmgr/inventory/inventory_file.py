"""Reading an inventory file (an Ansible YAML inventory, or CSV with the same columns) into host entries
and the problems of its form; :mod:`cloudmgr.inventory.importer` checks and imports them."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

#: The columns of the CSV form (and the host variables of the YAML form).
COLUMNS = (
    "hostname",
    "department",
    "server_room",
    "server_room_name_zh",
    "server_room_name_en",
    "server_room_location",
    "application_system",
    "classification",
    "network",
    "os_family",
    "os_name",
    "os_version",
    "vcpus",
    "ram_mb",
    "disk_gb",
    "data_gb",
    "cpu_p95_pct",
    "ram_p95_pct",
    "dependencies",
    "owner_name",
    "owner_contact",
    "ansible_host",
    "due_date",
)


REQUIRED_TEXT = (
    "department",
    "server_room",
    "application_system",
    "os_name",
    "os_version",
    "owner_name",
    "owner_contact",
)


@dataclass
class HostEntry:
    """One host as read from the file: raw values, not validated yet."""

    hostname: str
    values: dict[str, Any]
    where: str = ""  # "line 12" for CSV


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A SafeLoader (libyaml's when present: ten times faster) that refuses duplicate keys
    (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (a host or group may appear once)", key_node.start_mark
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(text: str) -> tuple[list[HostEntry], list[tuple[str, str]]]:
    """Hosts of an Ansible YAML inventory with the variables they inherit from their groups."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        return [], [("(file)", f"not valid YAML: {exc}")]
    except RecursionError:
        return [], [("(file)", "not valid YAML: nested too deeply")]
    if not isinstance(data, dict) or not isinstance(data.get("all"), dict):
        return [], [("(file)", "an Ansible YAML inventory starts with an 'all' group")]
    hosts: list[HostEntry] = []
    problems: list[tuple[str, str]] = []
    seen: dict[str, str] = {}

    def walk(name: str, group: Any, inherited: Mapping[str, Any]) -> None:
        if group is None:
            return
        if not isinstance(group, dict):
            problems.append((f"(group {name})", "a group is a mapping of vars, hosts and children"))
            return
        unknown = set(group) - {"vars", "hosts", "children"}
        if unknown:
            problems.append((f"(group {name})", f"unknown keys {', '.join(sorted(map(str, unknown)))}"))
        group_vars = group.get("vars") or {}
        if not isinstance(group_vars, dict):
            problems.append((f"(group {name})", "vars must be a mapping"))
            group_vars = {}
        merged = {**inherited, **group_vars}
        group_hosts = group.get("hosts") or {}
        if not isinstance(group_hosts, dict):
            problems.append((f"(group {name})", "hosts must be a mapping of host names to their vars"))
            group_hosts = {}
        for hostname, host_vars in group_hosts.items():
            hostname = str(hostname)
            if host_vars is not None and not isinstance(host_vars, dict):
                problems.append((hostname, "host vars must be a mapping"))
                continue
            if hostname in seen:
                problems.append((hostname, f"duplicate hostname (in groups {seen[hostname]} and {name})"))
                continue
            seen[hostname] = name
            hosts.append(HostEntry(hostname, {**merged, **(host_vars or {})}, f"group {name}"))
        children = group.get("children") or {}
        if not isinstance(children, dict):
            problems.append((f"(group {name})", "children must be a mapping of groups"))
            return
        for child_name, child in children.items():
            walk(str(child_name), child, merged)

    walk("all", data["all"], {})
    return hosts, problems


def read_csv(text: str) -> tuple[list[HostEntry], list[tuple[str, str]]]:
    """Hosts of a CSV file with a header row naming the columns (see COLUMNS)."""
    try:
        return _read_csv(text)
    except csv.Error as exc:  # the reader's own refusals: NUL bytes, a field over its size limit …
        return [], [("(file)", f"not valid CSV: {exc}")]


def _read_csv(text: str) -> tuple[list[HostEntry], list[tuple[str, str]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    missing = [c for c in ("hostname", *REQUIRED_TEXT) if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    problems: list[tuple[str, str]] = []
    if missing:
        problems.append(("(header)", f"missing columns: {', '.join(missing)}"))
    if unknown:
        problems.append(("(header)", f"unknown columns: {', '.join(unknown)}"))
    if problems:
        return [], problems
    hosts: list[HostEntry] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if None in row:
            problems.append((row.get("hostname") or f"(line {line})", f"line {line}: more cells than columns"))
            continue
        hostname = (row.get("hostname") or "").strip()
        if not hostname:
            problems.append((f"(line {line})", "hostname is empty"))
            continue
        if hostname in seen:
            problems.append((hostname, f"line {line}: duplicate hostname (first on line {seen[hostname]})"))
            continue
        seen[hostname] = line
        values: dict[str, Any] = {k: v.strip() for k, v in row.items() if k != "hostname" and v is not None}
        values = {k: v for k, v in values.items() if v != "" or k in REQUIRED_TEXT}
        if "dependencies" in values:
            values["dependencies"] = [d for d in re.split(r"[\s,;]+", values["dependencies"]) if d]
        hosts.append(HostEntry(hostname, values, f"line {line}"))
    return hosts, problems


def read_inventory(text: str, *, filename: str) -> tuple[list[HostEntry], list[tuple[str, str]]]:
    """Read by the file's extension: .csv is CSV, anything else (.yml, .yaml) YAML."""
    if filename.lower().endswith(".csv"):
        return read_csv(text)
    return read_yaml(text)
