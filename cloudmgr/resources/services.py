"""What one department holds on its clouds, for operators and administrators (issue 16).

One read, :func:`department_resources`, gathers a department's SSH keys (name, type, fingerprint:
never the key itself), its data volumes, the firewall of each of its live requests (one line a
rule: a rule Neutron keeps once per address family is one line), its public addresses, its
snapshots, backups and backup schedules, and per cloud the quota ledger's usage of those
resources beside what the listing counts, so a difference between the two shows.

Who may: operators (they run the clouds, approve and untangle) and administrators (they manage
departments and quotas).  Departments see their own things on their own pages; finance has no
part here.  Nothing is changed: the actions stay on the pages of their own services.

What the listing counts, per resource (what the ledger holds as used or reserved):

* volumes and their GB: every volume not deleted that is in the ledger (``quota_counted``) or
  being made (its reservation holds it); the GB also count the snapshots, as Cinder does;
* public addresses: every address not released that is in the ledger or being given;
* snapshots, backups: every one being made, ready or being deleted.

So ``used <= listed <= used + reserved`` holds when the ledger and the rows agree (the reserved
part also covers requests not provisioned yet); :attr:`UsageLine.agrees` says whether it does.
Security groups are counted by the ledger per request and corrected by the cloud's own count, so
the listing shows the ledger's figures for them without a verdict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudmgr.backups.models import BackupSchedule, CopyState, Frequency, VolumeBackupRecord, VolumeSnapshotRecord
from cloudmgr.firewall import services as firewall
from cloudmgr.firewall.rules import Direction, Protocol
from cloudmgr.keys.models import SshKey
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import UnknownCloud
from cloudmgr.organisation.models import Cloud, Department, DepartmentCloud, Role, User
from cloudmgr.organisation.reading import get_department
from cloudmgr.quotas.ledger import all_balances
from cloudmgr.quotas.resources import Resource
from cloudmgr.resources.errors import ResourcesForbidden
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState
from cloudmgr.servicerequests.states import RequestState, ServerState
from cloudmgr.storage.services import VolumeInfo, describe_volumes

__all__ = [
    "USAGE_RESOURCES",
    "AddressRow",
    "AddressState",
    "CloudRef",
    "CloudUsage",
    "CopyRow",
    "CopyState",
    "DepartmentResources",
    "FirewallGroup",
    "Frequency",
    "KeyRow",
    "ResourcesForbidden",
    "ScheduleRow",
    "UsageLine",
    "VolumeInfo",
    "VolumeState",
    "department_resources",
    "may_view",
]

VIEWERS = frozenset({Role.OPERATOR, Role.ADMIN})
# The ledger's resources this overview is about, in the ledger's order.
USAGE_RESOURCES: tuple[Resource, ...] = (
    Resource.VOLUMES,
    Resource.GIGABYTES,
    Resource.FLOATING_IPS,
    Resource.SNAPSHOTS,
    Resource.BACKUPS,
    Resource.SECURITY_GROUPS,
    Resource.SECURITY_GROUP_RULES,
)
# Requests whose servers exist or may still be made: their firewall is (or will be) on the cloud.
LIVE_REQUESTS = frozenset(
    {
        RequestState.SUBMITTED,
        RequestState.APPROVED,
        RequestState.PROVISIONING,
        RequestState.ACTIVE,
        RequestState.PARTIALLY_ACTIVE,
        RequestState.FAILED,
    }
)
GONE_SERVERS = frozenset({ServerState.DELETED, ServerState.CANCELLED})
# A volume or address being made is held by its reservation before it is in the ledger's used.
VOLUMES_BEING_MADE = frozenset({VolumeState.PENDING, VolumeState.CREATING})
ADDRESSES_BEING_GIVEN = frozenset({AddressState.PENDING, AddressState.ALLOCATED})
HELD_COPIES = frozenset({CopyState.PENDING, CopyState.READY, CopyState.DELETING})
# The open egress provisioning adds to a group without an egress rule of its own
# (cloudmgr.servicerequests.provisioning.security_rules): shown, since the servers have it.
OPEN_EGRESS_SOURCE = "egress"


def may_view(actor: Actor) -> bool:
    return actor.role in VIEWERS


# --- what is returned -------------------------------------------------------------------------


@dataclass(frozen=True)
class CloudRef:
    id: int
    key: str
    name_zh: str
    name_en: str

    def display_name(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") else self.name_zh


@dataclass(frozen=True)
class KeyRow:
    """An SSH key as the overview shows it: never its text, only its fingerprint."""

    id: int
    name: str
    key_type: str
    bits: int
    fingerprint: str
    owner: str
    created_at: datetime


@dataclass(frozen=True)
class AddressRow:
    id: int
    address: str | None
    state: AddressState
    fault: str | None
    server_id: int | None
    server_name: str | None
    cloud: CloudRef
    created_at: datetime
    # The messages behind the fault's English (cloudmgr.stored_messages), for the pages.
    messages: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class FirewallGroup:
    """The security group of one live request: its templates and the rules its servers get."""

    request_id: int
    name_prefix: str
    application_system: str | None
    request_state: RequestState
    cloud: CloudRef
    zone: str
    group_name: str | None
    templates: tuple[str, ...]
    lines: tuple[firewall.RuleLine, ...]
    servers: int
    # Why the firewall does not plan now (e.g. the admin network was cleared since).
    problem: str | None


@dataclass(frozen=True)
class CopyRow:
    """A snapshot or a backup of one of the department's volumes."""

    id: int
    volume_id: int
    volume_name: str
    cloud: CloudRef
    size_gb: int
    state: CopyState
    fault: str | None
    scheduled: bool
    requested_by: str
    created_at: datetime
    messages: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)  # as AddressRow's


@dataclass(frozen=True)
class ScheduleRow:
    volume_id: int
    volume_name: str
    cloud: CloudRef
    frequency: Frequency
    weekday: int | None  # 0 = Monday, for weekly schedules
    hour: int  # in the province's time (UTC+8)
    keep: int
    enabled: bool
    next_run_at: datetime


@dataclass(frozen=True)
class UsageLine:
    """One resource of the department on one cloud: what the listing counts and the ledger's row
    (None: the ledger has no row, or the listing does not count this resource)."""

    resource: Resource
    listed: int | None
    used: int | None
    reserved: int | None
    limit: int | None

    @property
    def agrees(self) -> bool | None:
        """Whether the listing and the ledger agree (None: not compared)."""
        if self.listed is None or self.used is None or self.reserved is None:
            return None
        return self.used <= self.listed <= self.used + self.reserved


@dataclass(frozen=True)
class CloudUsage:
    cloud: CloudRef
    lines: tuple[UsageLine, ...]

    @property
    def agrees(self) -> bool:
        return all(line.agrees is not False for line in self.lines)


@dataclass(frozen=True)
class DepartmentResources:
    department_id: int
    department_key: str
    department_name_zh: str
    department_name_en: str
    cloud: CloudRef | None  # the one asked for; None: every cloud
    clouds: tuple[CloudRef, ...]  # the department's clouds
    keys: tuple[KeyRow, ...]
    volumes: tuple[VolumeInfo, ...]
    firewall_groups: tuple[FirewallGroup, ...]
    addresses: tuple[AddressRow, ...]
    snapshots: tuple[CopyRow, ...]
    backups: tuple[CopyRow, ...]
    schedules: tuple[ScheduleRow, ...]
    usage: tuple[CloudUsage, ...]

    def department_name(self, locale: str) -> str:
        return self.department_name_en if locale.startswith("en") else self.department_name_zh

    @property
    def agrees(self) -> bool:
        return all(usage.agrees for usage in self.usage)


# --- the read ---------------------------------------------------------------------------------


def department_resources(
    session: Session, actor: Actor, department_key: str, cloud_key: str | None = None
) -> DepartmentResources:
    """Everything of the department ``department_key`` (on ``cloud_key``, or on every cloud).

    Raises :class:`ResourcesForbidden` for anyone but operators and administrators, and
    :class:`UnknownDepartment` / :class:`UnknownCloud` for a key that names nothing."""
    if not may_view(actor):
        raise ResourcesForbidden("only operators and administrators read a department's resources")
    department = get_department(session, department_key)
    clouds = _clouds(session, department.id)
    cloud: CloudRef | None = None
    if cloud_key is not None:
        row = session.scalar(select(Cloud).where(Cloud.key == cloud_key))
        if row is None:
            raise UnknownCloud(f"cloud: no cloud {cloud_key!r}")
        cloud = _ref(row)
    cloud_id = cloud.id if cloud is not None else None
    known = {c.id: c for c in clouds} | ({cloud.id: cloud} if cloud is not None else {})

    volume_rows = _volume_rows(session, department.id, cloud_id)
    address_rows = _address_rows(session, department.id, cloud_id)
    snapshot_rows = _copy_rows(session, VolumeSnapshotRecord, department.id, cloud_id)
    backup_rows = _copy_rows(session, VolumeBackupRecord, department.id, cloud_id)
    schedule_rows = _schedule_rows(session, department.id, cloud_id)
    requests = _live_requests(session, department.id, cloud_id)
    held_on = (
        {v.cloud_id for v in volume_rows}
        | {row_cloud for _row, _name, row_cloud in address_rows}
        | {r.cloud_id for r in (*snapshot_rows, *backup_rows)}
        | {r.cloud_id for r in requests}
    )
    known.update({c.id: c for c in _missing_clouds(session, known, held_on)})
    names = _volume_names(
        session, {r.volume_row_id for r in (*snapshot_rows, *backup_rows)} | {s.volume_row_id for s, _ in schedule_rows}
    )
    usage_clouds = [cloud] if cloud is not None else sorted(known.values(), key=lambda c: c.id)
    volumes = describe_volumes(session, volume_rows)
    return DepartmentResources(
        department_id=department.id,
        department_key=department.key,
        department_name_zh=department.name_zh,
        department_name_en=department.name_en,
        cloud=cloud,
        clouds=tuple(clouds),
        keys=tuple(_keys(session, department.id)),
        volumes=tuple(sorted(volumes, key=lambda v: (v.cloud_id, v.name, v.id))),
        firewall_groups=tuple(_firewall_groups(session, department, requests, known)),
        addresses=tuple(_addresses(address_rows, known)),
        snapshots=tuple(_copies(snapshot_rows, names, known)),
        backups=tuple(_copies(backup_rows, names, known)),
        schedules=tuple(
            ScheduleRow(
                volume_id=schedule.volume_row_id,
                volume_name=names.get(schedule.volume_row_id, str(schedule.volume_row_id)),
                cloud=known[volume_cloud_id],
                frequency=schedule.frequency,
                weekday=schedule.weekday,
                hour=schedule.hour,
                keep=schedule.keep,
                enabled=schedule.enabled,
                next_run_at=schedule.next_run_at,
            )
            for schedule, volume_cloud_id in schedule_rows
        ),
        usage=tuple(
            _usage(session, department.id, usage_clouds, volume_rows, address_rows, snapshot_rows, backup_rows)
        ),
    )


def _ref(cloud: Cloud) -> CloudRef:
    return CloudRef(cloud.id, cloud.key, cloud.name_zh, cloud.name_en)


def _clouds(session: Session, department_id: int) -> list[CloudRef]:
    rows = session.scalars(
        select(Cloud)
        .join(DepartmentCloud, DepartmentCloud.cloud_id == Cloud.id)
        .where(DepartmentCloud.department_id == department_id)
        .order_by(Cloud.id)
    )
    return [_ref(cloud) for cloud in rows]


def _missing_clouds(session: Session, known: dict[int, CloudRef], wanted: set[int]) -> list[CloudRef]:
    """Clouds the department holds something on but is no longer linked to."""
    missing = wanted - set(known)
    if not missing:
        return []
    return [_ref(c) for c in session.scalars(select(Cloud).where(Cloud.id.in_(missing)).order_by(Cloud.id))]


def _keys(session: Session, department_id: int) -> list[KeyRow]:
    rows = session.execute(
        select(SshKey, User.username)
        .join(User, User.id == SshKey.owner_user_id)
        .where(SshKey.department_id == department_id)
        .order_by(User.username, SshKey.name, SshKey.id)
    ).tuples()
    return [
        KeyRow(key.id, key.name, key.key_type.value, key.bits, key.fingerprint, username, key.created_at)
        for key, username in rows
    ]


def _volume_rows(session: Session, department_id: int, cloud_id: int | None) -> list[ManagedVolume]:
    query = select(ManagedVolume).where(
        ManagedVolume.department_id == department_id, ManagedVolume.state != VolumeState.DELETED
    )
    if cloud_id is not None:
        query = query.where(ManagedVolume.cloud_id == cloud_id)
    return list(session.scalars(query.order_by(ManagedVolume.id)))


def _volume_names(session: Session, volume_ids: set[int]) -> dict[int, str]:
    """The names the pages give these volumes (deleted ones too: a backup outlives its volume)."""
    if not volume_ids:
        return {}
    rows = session.scalars(select(ManagedVolume).where(ManagedVolume.id.in_(volume_ids)))
    return {info.id: info.name for info in describe_volumes(session, list(rows))}


# An address row: the address, and the server, department and cloud it belongs to (the address's
# own since revision 0023, its server's for older rows).
AddressTuple = tuple[ManagedAddress, str | None, int]


def _address_rows(session: Session, department_id: int, cloud_id: int | None) -> list[AddressTuple]:
    owner = func.coalesce(ManagedAddress.department_id, ManagedServer.department_id)
    cloud = func.coalesce(ManagedAddress.cloud_id, ManagedServer.cloud_id)
    query = (
        select(ManagedAddress, ManagedServer.name, cloud)
        .outerjoin(ManagedServer, ManagedServer.id == ManagedAddress.server_id)
        .where(owner == department_id, ManagedAddress.state != AddressState.RELEASED)
    )
    if cloud_id is not None:
        query = query.where(cloud == cloud_id)
    return [(row, name, int(row_cloud)) for row, name, row_cloud in session.execute(query.order_by(ManagedAddress.id))]


def _addresses(rows: Sequence[AddressTuple], clouds: dict[int, CloudRef]) -> list[AddressRow]:
    return [
        AddressRow(
            id=row.id,
            address=row.address,
            state=row.state,
            fault=row.fault,
            server_id=row.server_id,
            server_name=server_name,
            cloud=clouds[cloud_id],
            created_at=row.created_at,
            messages=dict(row.messages or {}),
        )
        for row, server_name, cloud_id in rows
    ]


CopyRecord = VolumeSnapshotRecord | VolumeBackupRecord


def _copy_rows(
    session: Session,
    model: type[VolumeSnapshotRecord] | type[VolumeBackupRecord],
    department_id: int,
    cloud_id: int | None,
) -> list[CopyRecord]:
    query = select(model).where(model.department_id == department_id, model.state != CopyState.DELETED)
    if cloud_id is not None:
        query = query.where(model.cloud_id == cloud_id)
    return list(session.scalars(query.order_by(model.created_at.desc(), model.id.desc())))


def _copies(rows: Sequence[CopyRecord], names: dict[int, str], clouds: dict[int, CloudRef]) -> list[CopyRow]:
    return [
        CopyRow(
            id=row.id,
            volume_id=row.volume_row_id,
            volume_name=names.get(row.volume_row_id, str(row.volume_row_id)),
            cloud=clouds[row.cloud_id],
            size_gb=row.size_gb,
            state=row.state,
            fault=row.fault,
            scheduled=isinstance(row, VolumeBackupRecord) and row.schedule_id is not None,
            requested_by=row.requested_by,
            created_at=row.created_at,
            messages=dict(row.messages or {}),
        )
        for row in rows
    ]


def _schedule_rows(session: Session, department_id: int, cloud_id: int | None) -> list[tuple[BackupSchedule, int]]:
    query = (
        select(BackupSchedule, ManagedVolume.cloud_id)
        .join(ManagedVolume, ManagedVolume.id == BackupSchedule.volume_row_id)
        .where(ManagedVolume.department_id == department_id, ManagedVolume.state != VolumeState.DELETED)
    )
    if cloud_id is not None:
        query = query.where(ManagedVolume.cloud_id == cloud_id)
    return [(schedule, volume_cloud) for schedule, volume_cloud in session.execute(query.order_by(BackupSchedule.id))]


def _open_egress(plan: firewall.FirewallPlan) -> tuple[firewall.ResolvedRule, ...]:
    if not plan.opens_egress:
        return ()
    return tuple(
        firewall.ResolvedRule(Direction.EGRESS, Protocol.ANY, None, None, family, cidr, None, OPEN_EGRESS_SOURCE)
        for family, cidr in (("IPv4", "0.0.0.0/0"), ("IPv6", "::/0"))
    )


def _live_requests(session: Session, department_id: int, cloud_id: int | None) -> list[ServiceRequest]:
    query = select(ServiceRequest).where(
        ServiceRequest.department_id == department_id,
        ServiceRequest.kind == "create",
        ServiceRequest.state.in_(LIVE_REQUESTS),
    )
    if cloud_id is not None:
        query = query.where(ServiceRequest.cloud_id == cloud_id)
    return list(session.scalars(query.order_by(ServiceRequest.id)))


def _firewall_groups(
    session: Session, department: Department, requests: Sequence[ServiceRequest], clouds: dict[int, CloudRef]
) -> list[FirewallGroup]:
    if not requests:
        return []
    servers = dict(
        session.execute(
            select(ManagedServer.request_id, func.count())
            .where(
                ManagedServer.request_id.in_([r.id for r in requests]),
                ManagedServer.state.not_in(GONE_SERVERS),
            )
            .group_by(ManagedServer.request_id)
        )
        .tuples()
        .all()
    )
    groups = []
    for request in requests:
        chosen = firewall.request_firewall(session, request.id, department, request.zone)
        if not chosen.templates and not chosen.own_rules:
            continue  # no firewall asked for: the project's default group
        plan = chosen.plan
        lines = firewall.resolved_lines((*plan.rules, *_open_egress(plan))) if plan is not None else []
        groups.append(
            FirewallGroup(
                request_id=request.id,
                name_prefix=request.name_prefix,
                application_system=request.application_system,
                request_state=request.state,
                cloud=clouds[request.cloud_id],
                zone=request.zone,
                group_name=plan.group_name if plan is not None else None,
                templates=tuple(t.name for t in chosen.templates),
                lines=tuple(lines),
                servers=servers.get(request.id, 0),
                problem=chosen.problem,
            )
        )
    return groups


def _usage(
    session: Session,
    department_id: int,
    clouds: Sequence[CloudRef],
    volumes: Sequence[ManagedVolume],
    addresses: Sequence[AddressTuple],
    snapshots: Sequence[CopyRecord],
    backups: Sequence[CopyRecord],
) -> list[CloudUsage]:
    listed: dict[int, Counter[Resource]] = {cloud.id: Counter() for cloud in clouds}
    for volume in volumes:
        if volume.quota_counted or volume.state in VOLUMES_BEING_MADE:
            counts = listed.setdefault(volume.cloud_id, Counter())
            counts[Resource.VOLUMES] += 1
            counts[Resource.GIGABYTES] += volume.size_gb
    for address, _server_name, cloud_id in addresses:
        if address.quota_counted or address.state in ADDRESSES_BEING_GIVEN:
            listed.setdefault(cloud_id, Counter())[Resource.FLOATING_IPS] += 1
    for snapshot in snapshots:
        if snapshot.state in HELD_COPIES:
            counts = listed.setdefault(snapshot.cloud_id, Counter())
            counts[Resource.SNAPSHOTS] += 1
            counts[Resource.GIGABYTES] += snapshot.size_gb  # Cinder counts snapshots' GB with volumes'
    for backup in backups:
        if backup.state in HELD_COPIES:
            listed.setdefault(backup.cloud_id, Counter())[Resource.BACKUPS] += 1
    ledger = {b.cloud_id: b for b in all_balances(session, department_id=department_id)}
    usage = []
    for cloud in clouds:
        balance = ledger.get(cloud.id)
        counts = listed.get(cloud.id, Counter())
        lines = []
        for resource in USAGE_RESOURCES:
            row = balance.resources.get(resource) if balance is not None else None
            counted = resource not in {Resource.SECURITY_GROUPS, Resource.SECURITY_GROUP_RULES}
            lines.append(
                UsageLine(
                    resource=resource,
                    listed=counts[resource] if counted else None,
                    used=row.used if row is not None else None,
                    reserved=row.reserved if row is not None else None,
                    limit=row.limit if row is not None else None,
                )
            )
        usage.append(CloudUsage(cloud, tuple(lines)))
    return usage
