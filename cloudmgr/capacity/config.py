"""The capacity file: data-centre bases (which clouds they host) and the dated targets.

bases:
  - key: zhangbei
    name_zh: 张北
    name_en: Zhangbei
    clouds: [province-base, gov-affairs]
targets:
  - {date: 2018-12-31, servers: 1500000, label_zh: …, label_en: …}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from cloudmgr.capacity.errors import CapacityFileInvalid


@dataclass(frozen=True)
class BaseEntry:
    key: str
    name_zh: str
    name_en: str
    clouds: tuple[str, ...]
    aggregates: tuple[tuple[str, str], ...] = ()  # (cloud key, Nova aggregate name)


@dataclass(frozen=True)
class Target:
    date: date
    servers: int
    label_zh: str
    label_en: str


@dataclass(frozen=True)
class CapacityConfig:
    bases: tuple[BaseEntry, ...]
    targets: tuple[Target, ...]

    def base_of_cloud(self, cloud_key: str) -> str | None:
        return next((b.key for b in self.bases if cloud_key in b.clouds), None)

    def aggregate_bases(self, cloud_keys: Sequence[str]) -> dict[str, str]:
        """Aggregate name -> base, for the aggregates mapped on any of these clouds."""
        return {name: b.key for b in self.bases for cloud, name in b.aggregates if cloud in cloud_keys}


def read_capacity_file(path: Path, cloud_keys: set[str] | None = None) -> CapacityConfig:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CapacityFileInvalid(f"{path}: {exc}") from exc
    problems: list[str] = []
    if not isinstance(data, dict):
        raise CapacityFileInvalid(f"{path}: expected 'bases' and 'targets'")
    bases = []
    seen_clouds: dict[str, str] = {}
    seen_aggregates: set[tuple[str, str]] = set()
    for i, raw in enumerate(data.get("bases") or []):
        if not isinstance(raw, dict) or not raw.get("key") or not raw.get("name_zh") or not raw.get("name_en"):
            problems.append(f"{path}: bases[{i}] needs key, name_zh and name_en")
            continue
        clouds = tuple(str(c) for c in raw.get("clouds") or [])
        for cloud in clouds:
            if cloud_keys is not None and cloud not in cloud_keys:
                problems.append(f"{path}: bases[{i}] ({raw['key']}): unknown cloud {cloud!r}")
            if cloud in seen_clouds:
                problems.append(f"{path}: cloud {cloud!r} is in two bases ({seen_clouds[cloud]}, {raw['key']})")
            seen_clouds[cloud] = str(raw["key"])
        aggregates = []
        for j, agg in enumerate(raw.get("aggregates") or []):
            if not isinstance(agg, dict) or not agg.get("cloud") or not agg.get("name"):
                problems.append(f"{path}: bases[{i}].aggregates[{j}] needs cloud and name")
                continue
            if cloud_keys is not None and agg["cloud"] not in cloud_keys:
                problems.append(f"{path}: bases[{i}].aggregates[{j}]: unknown cloud {agg['cloud']!r}")
            pair = (str(agg["cloud"]), str(agg["name"]))
            if pair in seen_aggregates:
                problems.append(f"{path}: aggregate {pair[1]!r} of {pair[0]} is in two bases")
            seen_aggregates.add(pair)
            aggregates.append(pair)
        bases.append(BaseEntry(str(raw["key"]), str(raw["name_zh"]), str(raw["name_en"]), clouds, tuple(aggregates)))
    targets = []
    for i, raw in enumerate(data.get("targets") or []):
        when, servers = (raw or {}).get("date"), (raw or {}).get("servers")
        if not isinstance(when, date) or not isinstance(servers, int) or servers <= 0:
            problems.append(f"{path}: targets[{i}] needs a date (YYYY-MM-DD) and a positive whole number of servers")
            continue
        targets.append(Target(when, servers, str(raw.get("label_zh", "")), str(raw.get("label_en", ""))))
    if problems:
        raise CapacityFileInvalid("\n".join(problems))
    return CapacityConfig(tuple(bases), tuple(sorted(targets, key=lambda t: t.date)))
