"""Small builders for inventory tests (not fixtures: tests call them inside a unit of work)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.organisation.models import Department


def department(session: Session, key: str = "prov-education") -> Department:
    return session.scalars(select(Department).where(Department.key == key)).one()


def make_system(session: Session, hostname: str, *, dept_key: str = "prov-education", **overrides: Any) -> LegacySystem:
    dept = department(session, dept_key)
    code = f"{dept_key}-room-1"
    room = session.scalars(select(ServerRoom).where(ServerRoom.code == code)).one_or_none()
    if room is None:
        room = ServerRoom(code=code, name_zh=f"{dept.name_zh}机房", name_en=f"{dept.name_en} room", department=dept)
        session.add(room)
    values: dict[str, Any] = {
        "hostname": hostname,
        "department": dept,
        "server_room": room,
        "application_system": "测试系统",
        "classification": "non_classified",
        "network": "extranet",
        "os_family": "linux",
        "os_name": "CentOS",
        "os_version": "7.9",
        "vcpus": 4,
        "ram_mb": 8192,
        "disk_gb": 100,
        "data_gb": 20,
        "cpu_p95_pct": 30.0,
        "ram_p95_pct": 50.0,
        "dependencies": [],
        "owner_name": "张伟",
        "owner_contact": "0311-87001234",
        "state": "legacy",
    }
    values.update(overrides)
    system = LegacySystem(**values)
    session.add(system)
    session.flush()
    return system
