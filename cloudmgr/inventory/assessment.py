"""How hard a legacy system is to move: a complexity score with its reasons.

Run at every import (over every system, since a new host can add dependants to an old one);
operators sort systems from easy to hard and fill the first waves with the easy ones.  Each
reason is ``{"code", "points", "detail"}``; the score is the sum of the points.  The rules
come from what migrations tripped over elsewhere: end-of-life guests without drivers or
images, Windows guests losing their network after conversion without virtio drivers, large
data to replicate, and systems others depend on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.inventory.models import LegacySystem


@dataclass(frozen=True)
class Reason:
    code: str
    points: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "points": self.points, "detail": self.detail}


def _major(version: str) -> int | None:
    match = re.match(r"\s*(\d+)", version)
    return int(match.group(1)) if match else None


def os_reasons(os_family: str, os_name: str, os_version: str) -> list[Reason]:
    """End-of-life or unusual guests: no image, no drivers, no vendor support on the cloud."""
    name = os_name.lower()
    label = f"{os_name} {os_version}".strip()
    major = _major(os_version)
    if os_family == "windows":
        reasons = [Reason("windows_drivers", 15, f"{label}: virtio drivers must be injected before conversion")]
        if major is not None and major <= 2003:
            reasons.append(Reason("os_end_of_life", 40, f"{label} is long out of support; no virtio drivers for it"))
        elif major is not None and major <= 2008:
            reasons.append(Reason("os_end_of_life", 30, f"{label} is out of support"))
        elif major is not None and major <= 2012:
            reasons.append(Reason("os_end_of_life", 10, f"{label} is out of support"))
        return reasons
    if os_family == "other":
        return [Reason("os_unsupported", 50, f"{label} does not run on the cloud's x86 hypervisors: re-platform")]
    if major is None:
        return [Reason("os_unknown_version", 10, f"{label}: version not recognised")]
    if "centos" in name or "red hat" in name or "rhel" in name:
        if major <= 6:
            return [Reason("os_end_of_life", 30, f"{label} is out of support (no current images or drivers)")]
        if major == 7:
            return [Reason("os_end_of_life", 10, f"{label} is out of support")]
    elif "suse" in name or "sles" in name:
        if major <= 11:
            return [Reason("os_end_of_life", 25, f"{label} is out of support")]
        if major == 12:
            return [Reason("os_end_of_life", 10, f"{label} is near the end of its support")]
    elif "ubuntu" in name:
        if major < 16:
            return [Reason("os_end_of_life", 30, f"{label} is out of support")]
        if major < 20:
            return [Reason("os_end_of_life", 10, f"{label} is out of standard support")]
    elif "kylin" in name or "uos" in name:
        return [Reason("os_domestic", 5, f"{label}: needs a matching image on the cloud")]
    return []


def size_reasons(vcpus: int, ram_mb: int) -> list[Reason]:
    reasons = []
    if vcpus > 16:
        reasons.append(Reason("large_cpu", 10, f"{vcpus} vCPU: larger than the clouds' usual flavors"))
    if ram_mb > 128 * 1024:
        reasons.append(Reason("large_ram", 15, f"{ram_mb // 1024} GB RAM"))
    elif ram_mb > 64 * 1024:
        reasons.append(Reason("large_ram", 10, f"{ram_mb // 1024} GB RAM"))
    return reasons


def data_reasons(data_gb: int) -> list[Reason]:
    if data_gb >= 2000:
        return [Reason("data_volume", 25, f"{data_gb} GB of data to replicate: long sync, short cutover window")]
    if data_gb >= 1000:
        return [Reason("data_volume", 15, f"{data_gb} GB of data to replicate")]
    if data_gb >= 200:
        return [Reason("data_volume", 5, f"{data_gb} GB of data to replicate")]
    return []


def coupling_reasons(dependencies: Iterable[str], dependants: Iterable[str]) -> list[Reason]:
    reasons = []
    deps = sorted(dependencies)
    users = sorted(dependants)
    if deps:
        reasons.append(Reason("dependencies", min(20, 5 * len(deps)), f"depends on {', '.join(deps)}"))
    if users:
        reasons.append(
            Reason("dependants", min(25, 5 * len(users)), f"{len(users)} system(s) depend on it: {', '.join(users)}")
        )
    return reasons


def use_reasons(cpu_p95_pct: float, ram_p95_pct: float) -> list[Reason]:
    reasons = []
    if cpu_p95_pct >= 80:
        reasons.append(Reason("busy_cpu", 10, f"CPU p95 {cpu_p95_pct:g}%: size up and pick a quiet window"))
    if ram_p95_pct >= 85:
        reasons.append(Reason("busy_ram", 10, f"RAM p95 {ram_p95_pct:g}%: size up"))
    return reasons


def assess(system: LegacySystem, dependants: Iterable[str]) -> tuple[int, list[Reason]]:
    """The score and its reasons (highest points first) for one system."""
    reasons = [
        *os_reasons(system.os_family, system.os_name, system.os_version),
        *size_reasons(system.vcpus, system.ram_mb),
        *data_reasons(system.data_gb),
        *coupling_reasons(system.dependencies or [], dependants),
        *use_reasons(system.cpu_p95_pct, system.ram_p95_pct),
    ]
    reasons.sort(key=lambda r: (-r.points, r.code))
    return sum(r.points for r in reasons), reasons


def dependants_map(systems: Iterable[LegacySystem]) -> Mapping[str, list[str]]:
    users: dict[str, list[str]] = {}
    for system in systems:
        for dep in system.dependencies or []:
            users.setdefault(dep, []).append(system.hostname)
    return users


def assess_all(session: Session) -> int:
    """Recompute every system's score; returns how many changed."""
    systems = session.scalars(select(LegacySystem)).all()
    users = dependants_map(systems)
    changed = 0
    for system in systems:
        score, reasons = assess(system, users.get(system.hostname, []))
        as_dicts = [r.as_dict() for r in reasons]
        if system.complexity_score != score or system.complexity_reasons != as_dicts:
            system.complexity_score = score
            system.complexity_reasons = as_dicts
            changed += 1
    return changed
