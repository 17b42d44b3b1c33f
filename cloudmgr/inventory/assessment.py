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
from cloudmgr.messages import N_, Message


@dataclass(frozen=True)
class Reason:
    code: str
    points: int
    message: Message

    @property
    def detail(self) -> str:
        """The reason in English (the CLI, the API)."""
        return str(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "points": self.points, "detail": self.detail, **self.message.as_dict()}


def _reason(code: str, points: int, msgid: str, **params: Any) -> Reason:
    return Reason(code, points, Message(msgid, params))


def _major(version: str) -> int | None:
    match = re.match(r"\s*(\d+)", version)
    return int(match.group(1)) if match else None


def os_reasons(os_family: str, os_name: str, os_version: str) -> list[Reason]:
    """End-of-life or unusual guests: no image, no drivers, no vendor support on the cloud."""
    name = os_name.lower()
    label = f"{os_name} {os_version}".strip()
    major = _major(os_version)
    if os_family == "windows":
        reasons = [
            _reason("windows_drivers", 15, N_("%(os)s: virtio drivers must be injected before conversion"), os=label)
        ]
        if major is not None and major <= 2003:
            reasons.append(
                _reason("os_end_of_life", 40, N_("%(os)s is long out of support; no virtio drivers for it"), os=label)
            )
        elif major is not None and major <= 2008:
            reasons.append(_reason("os_end_of_life", 30, N_("%(os)s is out of support"), os=label))
        elif major is not None and major <= 2012:
            reasons.append(_reason("os_end_of_life", 10, N_("%(os)s is out of support"), os=label))
        return reasons
    if os_family == "other":
        return [
            _reason(
                "os_unsupported", 50, N_("%(os)s does not run on the cloud's x86 hypervisors: re-platform"), os=label
            )
        ]
    if major is None:
        return [_reason("os_unknown_version", 10, N_("%(os)s: version not recognised"), os=label)]
    if "centos" in name or "red hat" in name or "rhel" in name:
        if major <= 6:
            return [
                _reason("os_end_of_life", 30, N_("%(os)s is out of support (no current images or drivers)"), os=label)
            ]
        if major == 7:
            return [_reason("os_end_of_life", 10, N_("%(os)s is out of support"), os=label)]
    elif "suse" in name or "sles" in name:
        if major <= 11:
            return [_reason("os_end_of_life", 25, N_("%(os)s is out of support"), os=label)]
        if major == 12:
            return [_reason("os_end_of_life", 10, N_("%(os)s is near the end of its support"), os=label)]
    elif "ubuntu" in name:
        if major < 16:
            return [_reason("os_end_of_life", 30, N_("%(os)s is out of support"), os=label)]
        if major < 20:
            return [_reason("os_end_of_life", 10, N_("%(os)s is out of standard support"), os=label)]
    elif "kylin" in name or "uos" in name:
        return [_reason("os_domestic", 5, N_("%(os)s: needs a matching image on the cloud"), os=label)]
    return []


def size_reasons(vcpus: int, ram_mb: int) -> list[Reason]:
    reasons = []
    if vcpus > 16:
        reasons.append(
            _reason("large_cpu", 10, N_("%(vcpus)s vCPU: larger than the clouds' usual flavors"), vcpus=vcpus)
        )
    if ram_mb > 128 * 1024:
        reasons.append(_reason("large_ram", 15, N_("%(gb)s GB RAM"), gb=ram_mb // 1024))
    elif ram_mb > 64 * 1024:
        reasons.append(_reason("large_ram", 10, N_("%(gb)s GB RAM"), gb=ram_mb // 1024))
    return reasons


def data_reasons(data_gb: int) -> list[Reason]:
    if data_gb >= 2000:
        return [
            _reason(
                "data_volume", 25, N_("%(gb)s GB of data to replicate: long sync, short cutover window"), gb=data_gb
            )
        ]
    if data_gb >= 1000:
        return [_reason("data_volume", 15, N_("%(gb)s GB of data to replicate"), gb=data_gb)]
    if data_gb >= 200:
        return [_reason("data_volume", 5, N_("%(gb)s GB of data to replicate"), gb=data_gb)]
    return []


def coupling_reasons(dependencies: Iterable[str], dependants: Iterable[str]) -> list[Reason]:
    reasons = []
    deps = sorted(dependencies)
    users = sorted(dependants)
    if deps:
        reasons.append(
            _reason("dependencies", min(20, 5 * len(deps)), N_("depends on %(hosts)s"), hosts=", ".join(deps))
        )
    if users:
        reasons.append(
            _reason(
                "dependants",
                min(25, 5 * len(users)),
                N_("%(count)s system(s) depend on it: %(hosts)s"),
                count=len(users),
                hosts=", ".join(users),
            )
        )
    return reasons


def use_reasons(cpu_p95_pct: float, ram_p95_pct: float) -> list[Reason]:
    reasons = []
    if cpu_p95_pct >= 80:
        reasons.append(
            _reason("busy_cpu", 10, N_("CPU p95 %(pct)s%%: size up and pick a quiet window"), pct=f"{cpu_p95_pct:g}")
        )
    if ram_p95_pct >= 85:
        reasons.append(_reason("busy_ram", 10, N_("RAM p95 %(pct)s%%: size up"), pct=f"{ram_p95_pct:g}"))
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
