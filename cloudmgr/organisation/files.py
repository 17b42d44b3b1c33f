"""Reading the organisation files: the clouds file and the departments file.

The "1+14+N" clouds are data, not code.  Both files are validated completely before
anything is written, and every problem is reported with the file and entry it is in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cloudmgr.organisation.errors import OrganisationFileInvalid
from cloudmgr.organisation.models import CloudKind, Level, ZoneKind
from cloudmgr.text import bidi_problem

_KEY_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True, slots=True)
class CloudEntry:
    key: str
    name_zh: str
    name_en: str
    kind: CloudKind
    level: Level
    city: str | None
    os_cloud: str
    region: str | None
    zones: Mapping[ZoneKind, str]
    quota_drift_policy: str = "repair"
    approval_policy: Mapping[str, Any] = field(default_factory=dict)
    # The network floating IPs come from (optional: a cloud without one offers no public address).
    external_network: str | None = None


APPROVAL_ROLES = ("dept_head", "operator", "finance")
DEFAULT_APPROVAL_POLICY: dict[str, Any] = {"steps": ["dept_head", "operator"], "finance_above_yuan": 10000}


@dataclass(frozen=True, slots=True)
class DepartmentEntry:
    key: str
    name_zh: str
    name_en: str
    level: Level
    city: str | None
    county: str | None
    clouds: tuple[str, ...]


class _Problems:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{self.path}: {where}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise OrganisationFileInvalid("\n".join(self.items))


def _load_list(path: Path, top_key: str) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OrganisationFileInvalid(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OrganisationFileInvalid(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get(top_key), list):
        raise OrganisationFileInvalid(f"{path}: expected a mapping with a '{top_key}' list")
    return list(data[top_key])


def _text(problems: _Problems, where: str, entry: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = entry.get(name)
    if value is None or value == "":
        if required:
            problems.add(where, f"'{name}' is required")
        return None
    if not isinstance(value, str):
        problems.add(where, f"'{name}' must be text")
        return None
    bidi = bidi_problem(f"'{name}'", value)
    if bidi is not None:
        problems.add(where, bidi)
        return None
    return value.strip()


def _key(problems: _Problems, where: str, entry: Mapping[str, Any], seen: set[str]) -> str | None:
    key = _text(problems, where, entry, "key")
    if key is None:
        return None
    if not set(key) <= _KEY_CHARS or len(key) > 64:
        problems.add(where, f"key {key!r} must be lower-case letters, digits and '-' (at most 64)")
    if key in seen:
        problems.add(where, f"duplicate key {key!r}")
    seen.add(key)
    return key


def _choice(problems: _Problems, where: str, entry: Mapping[str, Any], name: str, enum_cls: Any) -> Any:
    value = _text(problems, where, entry, name)
    if value is None:
        return None
    try:
        return enum_cls(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum_cls)
        problems.add(where, f"'{name}' must be one of {allowed}, not {value!r}")
        return None


def read_clouds_file(path: Path) -> list[CloudEntry]:
    problems = _Problems(path)
    seen: set[str] = set()
    entries: list[CloudEntry] = []
    for index, raw in enumerate(_load_list(path, "clouds")):
        where = f"clouds[{index}]"
        if not isinstance(raw, dict):
            problems.add(where, "each cloud must be a mapping")
            continue
        key = _key(problems, where, raw, seen)
        where = f"clouds[{index}] ({key})" if key else where
        name_zh = _text(problems, where, raw, "name_zh")
        name_en = _text(problems, where, raw, "name_en")
        kind = _choice(problems, where, raw, "kind", CloudKind)
        level = _choice(problems, where, raw, "level", Level)
        city = _text(problems, where, raw, "city", required=False)
        if level in {Level.CITY, Level.COUNTY} and not city:
            problems.add(where, f"a {level.value} cloud needs 'city'")
        os_cloud = _text(problems, where, raw, "os_cloud")
        region = _text(problems, where, raw, "region", required=False)
        zones_raw = raw.get("zones")
        zones: dict[ZoneKind, str] = {}
        if not isinstance(zones_raw, dict) or not zones_raw:
            problems.add(where, "'zones' must map internet and/or extranet to a Neutron network name")
        else:
            for zone_name, network in zones_raw.items():
                try:
                    zone = ZoneKind(zone_name)
                except ValueError:
                    problems.add(
                        where,
                        f"zone {zone_name!r} is not internet or extranet "
                        "(classified systems belong on the intranet, never on this cloud)",
                    )
                    continue
                if not isinstance(network, str) or not network:
                    problems.add(where, f"zone {zone_name!r} needs a network name")
                    continue
                zones[zone] = network
        drift_policy = raw.get("quota_drift", "repair")
        if drift_policy not in {"repair", "alert"}:
            problems.add(where, f"'quota_drift' must be repair or alert, not {drift_policy!r}")
        approval = _approval_policy(problems, where, raw.get("approval"))
        external_network = _text(problems, where, raw, "external_network", required=False)
        if key and name_zh and name_en and kind and level and os_cloud and zones:
            entries.append(
                CloudEntry(
                    key,
                    name_zh,
                    name_en,
                    kind,
                    level,
                    city,
                    os_cloud,
                    region,
                    zones,
                    str(drift_policy),
                    approval,
                    external_network,
                )
            )
    problems.raise_if_any()
    return entries


def _approval_policy(problems: _Problems, where: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return dict(DEFAULT_APPROVAL_POLICY)
    if not isinstance(raw, dict):
        problems.add(where, "'approval' must be a mapping with 'steps' and optionally 'finance_above_yuan'")
        return dict(DEFAULT_APPROVAL_POLICY)
    steps = raw.get("steps", DEFAULT_APPROVAL_POLICY["steps"])
    if (
        not isinstance(steps, list)
        or not steps
        or any(s not in APPROVAL_ROLES for s in steps)
        or len(set(steps)) != len(steps)
    ):
        problems.add(where, f"'approval.steps' must list distinct roles among {', '.join(APPROVAL_ROLES)}")
        steps = DEFAULT_APPROVAL_POLICY["steps"]
    threshold = raw.get("finance_above_yuan")
    if threshold is not None and (not isinstance(threshold, int | float) or threshold < 0):
        problems.add(where, "'approval.finance_above_yuan' must be a non-negative number")
        threshold = None
    return {"steps": list(steps), "finance_above_yuan": threshold}


def read_departments_file(path: Path, cloud_keys: Sequence[str]) -> list[DepartmentEntry]:
    problems = _Problems(path)
    seen: set[str] = set()
    known_clouds = set(cloud_keys)
    entries: list[DepartmentEntry] = []
    for index, raw in enumerate(_load_list(path, "departments")):
        where = f"departments[{index}]"
        if not isinstance(raw, dict):
            problems.add(where, "each department must be a mapping")
            continue
        key = _key(problems, where, raw, seen)
        where = f"departments[{index}] ({key})" if key else where
        name_zh = _text(problems, where, raw, "name_zh")
        name_en = _text(problems, where, raw, "name_en")
        level = _choice(problems, where, raw, "level", Level)
        city = _text(problems, where, raw, "city", required=False)
        county = _text(problems, where, raw, "county", required=False)
        if level in {Level.CITY, Level.COUNTY} and not city:
            problems.add(where, f"a {level.value} department needs 'city'")
        if level == Level.COUNTY and not county:
            problems.add(where, "a county department needs 'county'")
        clouds_raw = raw.get("clouds", [])
        if not isinstance(clouds_raw, list) or not all(isinstance(c, str) for c in clouds_raw):
            problems.add(where, "'clouds' must be a list of cloud keys")
            clouds_raw = []
        for cloud_key in clouds_raw:
            if cloud_key not in known_clouds:
                problems.add(where, f"unknown cloud {cloud_key!r}")
        if key and name_zh and name_en and level:
            entries.append(DepartmentEntry(key, name_zh, name_en, level, city, county, tuple(clouds_raw)))
    problems.raise_if_any()
    return entries
