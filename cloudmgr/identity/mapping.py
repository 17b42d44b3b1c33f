"""From what Keystone or LDAP says about an account to a cloudmgr role and department."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cloudmgr.identity.errors import MappingFileInvalid, NoMappedRole
from cloudmgr.organisation.models import Role

# Strongest first: a user holding several mapped roles gets the first of these.
ROLE_PRECEDENCE: tuple[Role, ...] = (Role.ADMIN, Role.OPERATOR, Role.FINANCE, Role.DEPT_HEAD, Role.DEPT_STAFF)


@dataclass(frozen=True)
class Claims:
    """What an external backend said about an account that authenticated."""

    source: str
    subject: str  # Keystone user id or LDAP DN
    username: str  # the local username the account gets
    display_name: str
    email: str | None = None
    domain: str | None = None  # Keystone domain name
    department_hint: str | None = None  # LDAP department attribute
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SourceMapping:
    roles: Mapping[str, Role] = field(default_factory=dict)
    groups: Mapping[str, Role] = field(default_factory=dict)
    departments: Mapping[str, str] = field(default_factory=dict)
    department_domain_pattern: str | None = None


@dataclass(frozen=True)
class IdentityMapping:
    keystone: SourceMapping = field(default_factory=SourceMapping)
    ldap: SourceMapping = field(default_factory=SourceMapping)

    def for_source(self, source: str) -> SourceMapping:
        return self.keystone if source == "keystone" else self.ldap


@dataclass(frozen=True)
class Mapped:
    role: Role
    department_key: str | None


def _roles(where: str, raw: Any) -> dict[str, Role]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MappingFileInvalid(f"{where}: expected a mapping of names to roles")
    out: dict[str, Role] = {}
    for name, role in raw.items():
        try:
            out[str(name).lower()] = Role(str(role))
        except ValueError:
            valid = ", ".join(r.value for r in Role)
            raise MappingFileInvalid(f"{where}.{name}: {role!r} is not a role ({valid})") from None
    return out


def _strings(where: str, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MappingFileInvalid(f"{where}: expected a mapping of names to department keys")
    return {str(k).lower(): str(v) for k, v in raw.items()}


def _source(where: str, raw: Any) -> SourceMapping:
    if raw is None:
        return SourceMapping()
    if not isinstance(raw, dict):
        raise MappingFileInvalid(f"{where}: expected a mapping")
    unknown = set(raw) - {"roles", "groups", "departments", "department_domain_pattern"}
    if unknown:
        raise MappingFileInvalid(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    pattern = raw.get("department_domain_pattern")
    if pattern is not None and "{key}" not in str(pattern):
        raise MappingFileInvalid(f"{where}.department_domain_pattern must contain {{key}}")
    return SourceMapping(
        roles=_roles(f"{where}.roles", raw.get("roles")),
        groups=_roles(f"{where}.groups", raw.get("groups")),
        departments=_strings(f"{where}.departments", raw.get("departments")),
        department_domain_pattern=str(pattern) if pattern is not None else None,
    )


def parse_mapping(data: Any, *, name: str = "identity mapping") -> IdentityMapping:
    if data is None:
        return IdentityMapping()
    if not isinstance(data, dict):
        raise MappingFileInvalid(f"{name}: expected a mapping with keystone and/or ldap")
    unknown = set(data) - {"keystone", "ldap"}
    if unknown:
        raise MappingFileInvalid(f"{name}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    return IdentityMapping(
        keystone=_source(f"{name}: keystone", data.get("keystone")),
        ldap=_source(f"{name}: ldap", data.get("ldap")),
    )


def load_mapping(path: Path) -> IdentityMapping:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingFileInvalid(f"{path}: cannot read the identity mapping ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingFileInvalid(f"{path}: not valid YAML ({exc})") from exc
    return parse_mapping(data, name=str(path))


def _cn(group: str) -> str | None:
    match = re.match(r"\s*cn=([^,]+)", group, re.IGNORECASE)
    return match.group(1).strip().lower() if match else None


def _department(mapping: SourceMapping, claims: Claims) -> str | None:
    for candidate in (claims.department_hint, claims.domain):
        if not candidate:
            continue
        explicit = mapping.departments.get(candidate.lower())
        if explicit:
            return explicit
    if claims.domain and mapping.department_domain_pattern:
        prefix, _, suffix = mapping.department_domain_pattern.partition("{key}")
        domain = claims.domain
        if domain.startswith(prefix) and domain.endswith(suffix) and len(domain) > len(prefix) + len(suffix):
            return domain[len(prefix) : len(domain) - len(suffix)]
    return None


def resolve(mapping: IdentityMapping, claims: Claims) -> Mapped:
    """The cloudmgr role and department of ``claims``; :class:`NoMappedRole` when there is none."""
    source = mapping.for_source(claims.source)
    granted: set[Role] = set()
    for role_name in claims.roles:
        if (role := source.roles.get(role_name.lower())) is not None:
            granted.add(role)
    for group in claims.groups:
        role = source.groups.get(group.lower())
        if role is None and (cn := _cn(group)) is not None:
            role = source.groups.get(cn)
        if role is not None:
            granted.add(role)
    if not granted:
        raise NoMappedRole("none of your roles or groups gives access to cloudmgr; ask an administrator")
    role = next(r for r in ROLE_PRECEDENCE if r in granted)
    if not role.needs_department:
        return Mapped(role, None)
    department = _department(source, claims)
    if department is None:
        raise NoMappedRole("your account maps to a department role but to no department; ask an administrator")
    return Mapped(role, department)
