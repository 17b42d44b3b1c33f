"""Planning from the inventory: the capacity planner and target clouds, with the classified rule.

Both paths place legacy systems, so both call
:func:`~cloudmgr.inventory.classification.ensure_placeable`: a classified system is refused
(and the refusal audited in the caller's unit of work, which commits) and never reaches the
planner's placements; the planner refuses classified records again on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.inventory.classification import ensure_placeable
from cloudmgr.inventory.errors import ClassifiedPlacementRefused
from cloudmgr.inventory.models import Classification, LegacySystem, SystemState
from cloudmgr.inventory.services import AUDIT_TARGET, SystemFilter, get_system_by_hostname, list_systems
from cloudmgr.messages import N_, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud

if TYPE_CHECKING:
    from cloudmgr.capacity.planner.model import ConsolidationPlan

#: Systems the planner still has to place: not yet on the cloud (or back in the room).
TO_PLACE = frozenset({SystemState.LEGACY, SystemState.PLANNED, SystemState.ROLLED_BACK})


@dataclass
class InventoryPlan:
    plan: ConsolidationPlan
    systems: int
    refused: list[str]


def placeable_systems(
    session: Session, systems: Sequence[LegacySystem], *, actor: Actor, entry_point: str
) -> tuple[list[LegacySystem], list[LegacySystem]]:
    """Split ``systems`` into placeable and classified; each classified one is refused and audited."""
    placeable, refused = [], []
    for system in systems:
        try:
            ensure_placeable(session, system, actor=actor, entry_point=entry_point)
        except ClassifiedPlacementRefused:
            refused.append(system)
        else:
            placeable.append(system)
    return placeable, refused


def plan_systems(
    session: Session,
    *,
    host_vcpus: int,
    host_ram_gb: float,
    host_disk_gb: float,
    actor: Actor,
    department_id: int | None = None,
    max_wave: int = 50,
) -> InventoryPlan:
    """Hosts needed for the systems still to move (and the classified ones refused)."""
    from cloudmgr.capacity.planner.inventory import inventory_from_records
    from cloudmgr.capacity.planner.model import HostSpec, ServerRecord, Zone
    from cloudmgr.capacity.planner.plan import plan_inventory

    rows, _total = list_systems(session, SystemFilter(department_id=department_id))
    candidates = [s for s in rows if s.is_classified or (s.in_scope and s.state in TO_PLACE)]
    placeable, refused = placeable_systems(session, candidates, actor=actor, entry_point="planner")
    records = [
        ServerRecord(
            name=s.hostname,
            vcpus=s.vcpus,
            ram_gb=s.ram_mb / 1024,
            disk_gb=float(s.disk_gb),
            cpu_p95=s.cpu_p95_pct / 100,
            ram_p95=s.ram_p95_pct / 100,
            department=s.department.key,
            zone=Zone.INTERNET if s.network == "internet" else Zone.EXTRANET,
            classification=Classification(s.classification),
        )
        for s in [*placeable, *refused]
    ]
    host = HostSpec(vcpus=host_vcpus, ram_gb=host_ram_gb, disk_gb=host_disk_gb)
    plan = plan_inventory(inventory_from_records(records), host, max_wave=max_wave)
    return InventoryPlan(plan=plan, systems=len(placeable), refused=[s.hostname for s in refused])


def set_target_cloud(
    session: Session, hostname: str, cloud_key: str, *, actor: Actor, entry_point: str = "cli"
) -> LegacySystem:
    """Choose the cloud a system moves to: refused for a classified system, and the cloud must
    be one the system's department may use."""
    system = get_system_by_hostname(session, hostname)
    ensure_placeable(session, system, actor=actor, entry_point=entry_point)
    cloud = session.scalars(select(Cloud).where(Cloud.key == cloud_key)).one_or_none()
    linked = cloud is not None and session.scalar(
        select(DepartmentCloud.id).where(
            DepartmentCloud.department_id == system.department_id, DepartmentCloud.cloud_id == cloud.id
        )
    )
    if cloud is None or not linked:
        from cloudmgr.errors import ValidationFailed

        raise ValidationFailed(
            message(
                N_("department %(department)s may not use cloud %(cloud)s"),
                department=system.department.key,
                cloud=repr(cloud_key),
            )
        )
    system.target_cloud_id = cloud.id
    audit.record(
        session,
        actor=actor.username,
        action="legacy_system.target_set",
        target_type=AUDIT_TARGET,
        target_id=system.id,
        detail={"hostname": system.hostname, "cloud": cloud.key},
    )
    return system
