"""The quota files in ``quotas/``: named sizes and per-department limits per cloud.

Every ``*.yaml`` file in the folder may hold a ``sizes:`` mapping (ordered: each size is
one step up from the one before) and a ``departments:`` mapping::

    sizes:
      small:  {cores: 16, ram_gb: 32, instances: 8, networks: 2, floating_ips: 2, ...}
      medium: {cores: 64, ram_gb: 128, instances: 32, networks: 4, floating_ips: 4, ...}
    departments:
      prov-education:
        province-base: medium             # a size
        education: {size: small, cores: 24, volume_gb: 800}  # a size with explicit limits on top
        health: {cores: 8, ram_gb: 16, ...}  # no size: every resource given

A size, and an entry without a size, names every resource of ``FILE_NAMES`` (the ``...``
above): Nova's cores, ram_gb (GB), instances; Neutron's networks, floating_ips,
security_groups, security_group_rules; Cinder's volumes, volume_gb (GB of volumes and
snapshots), snapshots, backups.

The parser keeps the line of every value, so each problem is reported as
``file:line: message``, and refuses duplicate keys (plain YAML silently keeps the last).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from cloudmgr.quotas.errors import QuotaFilesInvalid
from cloudmgr.quotas.resources import FILE_FACTOR, FILE_NAMES, Resource
from cloudmgr.text import bidi_problem


@dataclass(frozen=True)
class Size:
    name: str
    rank: int  # position in the ladder: one step up is rank + 1
    limits: dict[Resource, int]


@dataclass(frozen=True)
class QuotaEntry:
    department: str
    cloud: str
    size: str | None
    limits: dict[Resource, int]  # complete: every resource has a limit
    file: str
    line: int


@dataclass
class QuotaDefinitions:
    sizes: dict[str, Size] = field(default_factory=dict)
    entries: dict[tuple[str, str], QuotaEntry] = field(default_factory=dict)

    def size_above(self, name: str | None) -> Size | None:
        if name is None or name not in self.sizes:
            return None
        rank = self.sizes[name].rank + 1
        return next((s for s in self.sizes.values() if s.rank == rank), None)

    def size_matching(self, limits: dict[Resource, int]) -> str | None:
        return next((s.name for s in self.sizes.values() if s.limits == limits), None)


class _Reader:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, file: str, node: Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(f"{file}:{line}: {message}")

    def mapping(self, file: str, node: Node, what: str) -> list[tuple[str, ScalarNode, Node]]:
        """The (key, key node, value node) pairs of a mapping, refusing duplicates."""
        if not isinstance(node, MappingNode):
            self.problem(file, node, f"{what} must be a mapping")
            return []
        seen: dict[str, int] = {}
        pairs = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(file, key_node, f"keys of {what} must be plain names")
                continue
            key = str(key_node.value)
            bidi = bidi_problem(f"a key of {what}", key)
            if bidi is not None:
                self.problem(file, key_node, bidi)
                continue
            if key in seen:
                self.problem(file, key_node, f"duplicate key {key!r} in {what} (first at line {seen[key]})")
                continue
            seen[key] = key_node.start_mark.line + 1
            pairs.append((key, key_node, value_node))
        return pairs

    def limit(self, file: str, node: Node, resource_name: str) -> int | None:
        if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:int":
            self.problem(file, node, f"{resource_name} must be a whole number, not {getattr(node, 'value', '?')!r}")
            return None
        value = int(node.value)
        if value < 0:
            self.problem(file, node, f"{resource_name} must not be negative ({value})")
            return None
        return value * FILE_FACTOR.get(FILE_NAMES[resource_name], 1)

    def limits(self, file: str, pairs: Iterable[tuple[str, ScalarNode, Node]], what: str) -> dict[Resource, int]:
        limits: dict[Resource, int] = {}
        for key, key_node, value_node in pairs:
            if key not in FILE_NAMES:
                allowed = ", ".join(FILE_NAMES)
                self.problem(file, key_node, f"unknown resource {key!r} in {what} (known: {allowed})")
                continue
            value = self.limit(file, value_node, key)
            if value is not None:
                limits[FILE_NAMES[key]] = value
        return limits


def _compose(reader: _Reader, path: Path) -> Node | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reader.problems.append(f"{path}:1: cannot read: {exc.strerror}")
        return None
    try:
        node: Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
        return node
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        reader.problems.append(f"{path}:{line}: not valid YAML: {exc.problem}")
        return None


def read_quota_files(folder: Path) -> QuotaDefinitions:
    """Read and check the syntax of every quota file; raise QuotaFilesInvalid listing all problems."""
    reader = _Reader()
    definitions = QuotaDefinitions()
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        raise QuotaFilesInvalid([f"{folder}:1: no quota files (*.yaml)"])
    documents = [(str(path), _compose(reader, path)) for path in paths]

    # Sizes first: department entries refer to them, whichever file they are in.
    for file, root in documents:
        if root is None:
            continue
        for top, top_key_node, value in reader.mapping(file, root, "the file"):
            if top == "sizes":
                for name, name_node, size_node in reader.mapping(file, value, "sizes"):
                    if name in definitions.sizes:
                        reader.problem(file, name_node, f"size {name!r} is defined twice")
                        continue
                    before = len(reader.problems)
                    limits = reader.limits(file, reader.mapping(file, size_node, f"size {name!r}"), f"size {name!r}")
                    missing = [k for k, r in FILE_NAMES.items() if r not in limits]
                    if missing and len(reader.problems) == before:
                        reader.problem(file, name_node, f"size {name!r} lacks {', '.join(missing)}")
                    definitions.sizes[name] = Size(name, len(definitions.sizes), limits)
            elif top != "departments":
                reader.problem(file, top_key_node, f"unknown section {top!r} (expected sizes or departments)")

    for file, root in documents:
        if root is None:
            continue
        for top, _key_node, value in reader.mapping(file, root, "the file"):
            if top != "departments":
                continue
            for dept, _dept_node, clouds_node in reader.mapping(file, value, "departments"):
                for cloud, cloud_node, entry_node in reader.mapping(file, clouds_node, f"department {dept!r}"):
                    key = (dept, cloud)
                    if key in definitions.entries:
                        first = definitions.entries[key]
                        reader.problem(
                            file, cloud_node, f"{dept} on {cloud} is already defined at {first.file}:{first.line}"
                        )
                        continue
                    entry = _entry(reader, definitions, file, dept, cloud, cloud_node, entry_node)
                    if entry is not None:
                        definitions.entries[key] = entry
    if reader.problems:
        raise QuotaFilesInvalid(reader.problems)
    return definitions


def _entry(
    reader: _Reader,
    definitions: QuotaDefinitions,
    file: str,
    dept: str,
    cloud: str,
    cloud_node: ScalarNode,
    node: Node,
) -> QuotaEntry | None:
    line = cloud_node.start_mark.line + 1
    size_name: str | None = None
    explicit: dict[Resource, int] = {}
    if isinstance(node, ScalarNode):
        size_name = str(node.value)
    else:
        pairs = reader.mapping(file, node, f"{dept} on {cloud}")
        size_pairs = [p for p in pairs if p[0] == "size"]
        if size_pairs:
            size_value = size_pairs[0][2]
            size_name = str(size_value.value) if isinstance(size_value, ScalarNode) else None
        explicit = reader.limits(file, [p for p in pairs if p[0] != "size"], f"{dept} on {cloud}")
    limits: dict[Resource, int] = {}
    if size_name is not None:
        size = definitions.sizes.get(size_name)
        if size is None:
            known = ", ".join(definitions.sizes) or "none defined"
            reader.problem(file, node, f"unknown size {size_name!r} (sizes: {known})")
            return None
        limits.update(size.limits)
    limits.update(explicit)
    missing = [name for name, r in FILE_NAMES.items() if r not in limits]
    if missing:
        reader.problem(file, cloud_node, f"{dept} on {cloud} has no size and lacks {', '.join(missing)}")
        return None
    return QuotaEntry(dept, cloud, size_name, limits, file, line)
