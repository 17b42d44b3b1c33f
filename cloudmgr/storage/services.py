"""A department's data volumes and public addresses after provisioning (issue 16): make a volume,
attach it to one of the department's active servers on its cloud, detach it, extend it, delete
it; give a server on the internet zone a public address, release it.

Who may (the department wall): a volume or address is its department's.  Department staff and
heads of that department do everything with it; another department's volume or server is not
found, as if it did not exist.  Operators see every department's and may do what frees or
untangles (detach, delete, release), never what spends a department's quota or money (create,
attach, extend, ask for an address): that is the department's own decision.  Finance and
administrators have no part here.

Each change is decided here, in the caller's transaction: the rules, the quota held in the
ledger (VOLUMES, GIGABYTES, FLOATING_IPS), the row's new state (one change at a time per
volume or address) and a ``storage`` work item (:mod:`cloudmgr.storage.jobs`) that makes the
change on the cloud after the commit, idempotently, and then marks the row done, or failed with
the reason, giving the reservation back.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud, Role, ZoneKind
from cloudmgr.paging import Page, PageRequest, paginate, search
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState
from cloudmgr.servicerequests.quoting import MAX_DISK_GB
from cloudmgr.servicerequests.states import ServerState
from cloudmgr.storage.errors import (
    StorageConflict,
    StorageForbidden,
    StorageInvalid,
    StorageNotFound,
    StorageProblem,
    StorageRefused,
)
from cloudmgr.workqueue.services import enqueue

__all__ = [
    "MAX_GB",
    "MIN_GB",
    "NAME_MAX",
    "AddressInfo",
    "AddressState",
    "ServerStorage",
    "StorageProblem",
    "StorageRefused",
    "VolumeInfo",
    "VolumeState",
    "VolumeTypeChoice",
    "attach_targets",
    "attach_volume",
    "create_volume",
    "delete_volume",
    "describe_volumes",
    "detach_volume",
    "extend_volume",
    "get_volume",
    "list_volumes",
    "may_change",
    "may_tidy",
    "release_public_address",
    "request_public_address",
    "server_storage",
    "volume_type_choices",
]

NAME_MAX = 64
MIN_GB, MAX_GB = 1, MAX_DISK_GB
WORK_KIND = "storage"
# The states a volume stays in between changes; any other is a change under way.
SETTLED = frozenset({VolumeState.ATTACHED, VolumeState.AVAILABLE, VolumeState.FAILED, VolumeState.DELETED})
ADDRESS_HELD = frozenset(
    {AddressState.PENDING, AddressState.ALLOCATED, AddressState.ASSOCIATED, AddressState.RELEASING}
)


# --- who may --------------------------------------------------------------------------------------


def may_change(actor: Actor, department_id: int) -> bool:
    """Create, attach, extend, ask for an address: the department's own staff and head."""
    return actor.is_department and actor.department_id == department_id


def may_tidy(actor: Actor, department_id: int) -> bool:
    """Detach, delete, release: the department's staff and head, and operators."""
    return may_change(actor, department_id) or actor.role == Role.OPERATOR


def _may_see(actor: Actor, department_id: int) -> bool:
    return actor.role == Role.OPERATOR or may_change(actor, department_id)


def _forbid_unless(allowed: bool, what: str) -> None:
    if not allowed:
        raise StorageForbidden(StorageProblem.FORBIDDEN, what=what)


# --- what pages and the API read --------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeInfo:
    id: int
    name: str
    department_id: int
    cloud_id: int
    cloud_key: str
    cloud_name_zh: str
    cloud_name_en: str
    size_gb: int
    volume_type: str | None
    state: VolumeState
    fault: str | None
    server_id: int | None
    server_name: str | None
    volume_id: str | None
    # Per month at the type's price per GB-month; None when the type is not in the catalog.
    monthly_price: Decimal | None
    created_at: datetime
    # The messages behind the fault's English (cloudmgr.stored_messages), for the pages.
    messages: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def cloud_name(self, locale: str) -> str:
        return self.cloud_name_en if locale.startswith("en") else self.cloud_name_zh

    @property
    def busy(self) -> bool:
        return self.state not in SETTLED

    @property
    def attachable(self) -> bool:
        return self.state == VolumeState.AVAILABLE and self.server_id is None

    @property
    def detachable(self) -> bool:
        return self.state == VolumeState.ATTACHED and self.server_id is not None

    @property
    def extendable(self) -> bool:
        return self.state in {VolumeState.ATTACHED, VolumeState.AVAILABLE} and self.size_gb < MAX_GB

    @property
    def deletable(self) -> bool:
        return self.state in {VolumeState.AVAILABLE, VolumeState.FAILED} and self.server_id is None


@dataclass(frozen=True)
class AddressInfo:
    id: int
    server_id: int
    address: str | None
    state: AddressState
    fault: str | None
    messages: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)  # as VolumeInfo's

    @property
    def releasable(self) -> bool:
        return self.state in {AddressState.ASSOCIATED, AddressState.ALLOCATED, AddressState.FAILED}


@dataclass(frozen=True)
class VolumeTypeChoice:
    """A volume type the department may make volumes of: its catalog item, cloud and price."""

    item_id: int
    cloud_key: str
    cloud_name_zh: str
    cloud_name_en: str
    type_name: str
    display_zh: str
    display_en: str
    price_per_gb_month: Decimal

    def label(self, locale: str) -> str:
        cloud = self.cloud_name_en if locale.startswith("en") else self.cloud_name_zh
        name = self.display_en if locale.startswith("en") else self.display_zh
        return f"{cloud} · {name}"


@dataclass(frozen=True)
class ServerStorage:
    """What the server page shows of a server's storage, and what the actor may do with it."""

    server_id: int
    volumes: tuple[VolumeInfo, ...]
    address: AddressInfo | None
    # Whether the server may be given an address now (None) or why not (the refusal).
    address_refusal: StorageRefused | None
    address_monthly_price: Decimal | None
    may_change: bool
    may_tidy: bool


def _type_prices(session: Session, cloud_ids: set[int]) -> dict[tuple[int, str], Decimal]:
    if not cloud_ids:
        return {}
    rows = session.execute(
        select(CatalogItem.cloud_id, CatalogItem.cloud_name, CatalogItem.monthly_price).where(
            CatalogItem.cloud_id.in_(cloud_ids), CatalogItem.kind == ItemKind.VOLUME_TYPE.value
        )
    )
    return {(cloud_id, name): Decimal(price) for cloud_id, name, price in rows}


def _infos(session: Session, volumes: Sequence[ManagedVolume]) -> list[VolumeInfo]:
    clouds = {c.id: c for c in session.scalars(select(Cloud).where(Cloud.id.in_({v.cloud_id for v in volumes})))}
    server_ids = {v.server_id for v in volumes if v.server_id is not None}
    servers: dict[int, str] = {}
    if server_ids:
        rows = session.execute(select(ManagedServer.id, ManagedServer.name).where(ManagedServer.id.in_(server_ids)))
        servers = {server_id: name for server_id, name in rows}
    prices = _type_prices(session, set(clouds))
    infos = []
    for v in volumes:
        cloud = clouds[v.cloud_id]
        price = prices.get((v.cloud_id, v.volume_type or ""))
        server_name = servers.get(v.server_id) if v.server_id is not None else None
        infos.append(
            VolumeInfo(
                id=v.id,
                name=v.name or f"{server_name or 'server'}-data{v.index}",
                department_id=v.department_id,
                cloud_id=v.cloud_id,
                cloud_key=cloud.key,
                cloud_name_zh=cloud.name_zh,
                cloud_name_en=cloud.name_en,
                size_gb=v.size_gb,
                volume_type=v.volume_type,
                state=v.state,
                fault=v.fault,
                server_id=v.server_id,
                server_name=server_name,
                volume_id=v.volume_id,
                monthly_price=(price * v.size_gb).quantize(Decimal("0.01")) if price is not None else None,
                created_at=v.created_at,
                messages=dict(v.messages or {}),
            )
        )
    return infos


def _info(session: Session, volume: ManagedVolume) -> VolumeInfo:
    return _infos(session, [volume])[0]


def describe_volumes(session: Session, volumes: Sequence[ManagedVolume]) -> list[VolumeInfo]:
    """What the pages show of volumes a caller has chosen, having decided who may see them (the
    operators' overview of a department, :mod:`cloudmgr.resources`): name, cloud, server, price."""
    return _infos(session, volumes) if volumes else []


def list_volumes(
    session: Session, actor: Actor, *, department_id: int | None = None, include_deleted: bool = False
) -> list[VolumeInfo]:
    """The department's volumes, attached or not (a department user: their own; an operator:
    every department's, or ``department_id``'s)."""
    if actor.is_department:
        department_id = actor.department_id
    elif actor.role != Role.OPERATOR:
        return []
    query = select(ManagedVolume)
    if department_id is not None:
        query = query.where(ManagedVolume.department_id == department_id)
    if not include_deleted:
        query = query.where(ManagedVolume.state != VolumeState.DELETED)
    return _infos(session, session.scalars(query.order_by(ManagedVolume.id.desc()).limit(500)).all())


def volumes_page(
    session: Session,
    actor: Actor,
    params: PageRequest,
    *,
    state: str | None = None,
    cloud_key: str | None = None,
) -> Page[VolumeInfo]:
    """A page of the volumes ``actor`` sees (a department user: their department's; an operator:
    every department's), newest first: one state or every one not deleted, one cloud or all;
    searched in the volume's name, its id on the cloud, its type and its server's name."""
    if not actor.is_department and actor.role != Role.OPERATOR:
        return Page(rows=[], total=0, page=params.page, per_page=params.per_page)
    query = select(ManagedVolume).outerjoin(ManagedServer, ManagedServer.id == ManagedVolume.server_id)
    if actor.is_department:
        query = query.where(ManagedVolume.department_id == actor.department_id)
    if state == VolumeState.CREATING:  # not yet asked of the cloud, or asked: both being created
        query = query.where(ManagedVolume.state.in_([VolumeState.PENDING, VolumeState.CREATING]))
    elif state in {s.value for s in VolumeState}:
        query = query.where(ManagedVolume.state == state)
    else:
        query = query.where(ManagedVolume.state != VolumeState.DELETED)
    if cloud_key:
        query = query.join(Cloud, Cloud.id == ManagedVolume.cloud_id).where(Cloud.key == cloud_key)
    query = search(
        query, params.q, ManagedVolume.name, ManagedVolume.volume_id, ManagedVolume.volume_type, ManagedServer.name
    )
    page = paginate(session, query, params, ManagedVolume.id.desc())
    return Page(rows=_infos(session, page.rows), total=page.total, page=page.page, per_page=page.per_page)


def volume_clouds(session: Session, actor: Actor) -> list[Cloud]:
    """The clouds the volumes ``actor`` sees are on (the volumes list's cloud filter)."""
    query = select(Cloud).where(Cloud.id.in_(select(ManagedVolume.cloud_id).distinct()))
    if actor.is_department:
        query = query.where(
            Cloud.id.in_(select(ManagedVolume.cloud_id).where(ManagedVolume.department_id == actor.department_id))
        )
    elif actor.role != Role.OPERATOR:
        return []
    return list(session.scalars(query.order_by(Cloud.key)))


def _volume(session: Session, actor: Actor, volume_id: int, *, lock: bool = False) -> ManagedVolume:
    volume = session.get(ManagedVolume, volume_id, with_for_update=lock)
    if volume is None or not _may_see(actor, volume.department_id):
        raise StorageNotFound(StorageProblem.VOLUME_NOT_FOUND, volume=volume_id)
    return volume


def get_volume(session: Session, actor: Actor, volume_id: int) -> VolumeInfo:
    return _info(session, _volume(session, actor, volume_id))


def volume_type_choices(session: Session, actor: Actor) -> list[VolumeTypeChoice]:
    """The volume types offered on the department's clouds, with their price per GB-month."""
    if not actor.is_department:
        return []
    rows = session.execute(
        select(CatalogItem, Cloud)
        .join(Cloud, Cloud.id == CatalogItem.cloud_id)
        .join(DepartmentCloud, DepartmentCloud.cloud_id == Cloud.id)
        .where(
            DepartmentCloud.department_id == actor.department_id,
            Cloud.enabled.is_(True),
            CatalogItem.kind == ItemKind.VOLUME_TYPE.value,
            CatalogItem.offered.is_(True),
            CatalogItem.available.is_(True),
        )
        .order_by(Cloud.key, CatalogItem.cloud_name)
    ).all()
    return [
        VolumeTypeChoice(
            item.id,
            cloud.key,
            cloud.name_zh,
            cloud.name_en,
            item.cloud_name,
            item.display_name("zh"),
            item.display_name("en"),
            Decimal(item.monthly_price),
        )
        for item, cloud in rows
    ]


def attach_targets(session: Session, actor: Actor, volume: VolumeInfo) -> list[tuple[int, str]]:
    """The servers ``volume`` may be attached to: its department's active servers on its cloud."""
    if not may_change(actor, volume.department_id) or not volume.attachable:
        return []
    rows = session.execute(
        select(ManagedServer.id, ManagedServer.name)
        .where(
            ManagedServer.department_id == volume.department_id,
            ManagedServer.cloud_id == volume.cloud_id,
            ManagedServer.state == ServerState.ACTIVE,
        )
        .order_by(ManagedServer.name)
    )
    return [(server_id, name) for server_id, name in rows]


def server_storage(session: Session, actor: Actor, server: ManagedServer) -> ServerStorage:
    """The volumes and the public address of ``server`` (one the caller already read through the
    server wall), and what ``actor`` may do with them."""
    volumes = session.scalars(
        select(ManagedVolume)
        .where(ManagedVolume.server_id == server.id, ManagedVolume.state != VolumeState.DELETED)
        .order_by(ManagedVolume.index)
    ).all()
    row = session.scalar(select(ManagedAddress).where(ManagedAddress.server_id == server.id))
    address = _address_info(row) if row is not None and row.state != AddressState.RELEASED else None
    refusal: StorageRefused | None = None
    try:
        _check_address_wanted(session, server, row)
    except StorageRefused as exc:
        refusal = exc
    item = _address_item(session, server.cloud_id)
    return ServerStorage(
        server_id=server.id,
        volumes=tuple(_infos(session, volumes)),
        address=address,
        address_refusal=refusal,
        address_monthly_price=Decimal(item.monthly_price) if item is not None else None,
        may_change=may_change(actor, server.department_id),
        may_tidy=may_tidy(actor, server.department_id),
    )


# --- volumes ---------------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= NAME_MAX or any(unicodedata.category(c).startswith("C") for c in name):
        raise StorageInvalid(StorageProblem.NAME, max=NAME_MAX)
    return name


def _check_size(size_gb: object) -> int:
    if isinstance(size_gb, bool) or not isinstance(size_gb, int) or not MIN_GB <= size_gb <= MAX_GB:
        raise StorageInvalid(StorageProblem.SIZE, min=MIN_GB, max=MAX_GB)
    return size_gb


def _offered_type(
    session: Session,
    actor: Actor,
    *,
    item_id: int | None,
    cloud_key: str | None,
    type_name: str | None,
) -> tuple[CatalogItem, Cloud]:
    query = (
        select(CatalogItem, Cloud)
        .join(Cloud, Cloud.id == CatalogItem.cloud_id)
        .join(DepartmentCloud, DepartmentCloud.cloud_id == Cloud.id)
        .where(
            DepartmentCloud.department_id == actor.department_id,
            Cloud.enabled.is_(True),
            CatalogItem.kind == ItemKind.VOLUME_TYPE.value,
            CatalogItem.offered.is_(True),
            CatalogItem.available.is_(True),
        )
    )
    if item_id is not None:
        found = session.execute(query.where(CatalogItem.id == item_id)).first()
        if found is None:
            raise StorageInvalid(StorageProblem.VOLUME_TYPE, type=f"#{item_id}", cloud=cloud_key or "-")
        return found[0], found[1]
    linked = session.scalar(
        select(Cloud.id)
        .join(DepartmentCloud, DepartmentCloud.cloud_id == Cloud.id)
        .where(Cloud.key == (cloud_key or ""), DepartmentCloud.department_id == actor.department_id)
    )
    if linked is None:
        raise StorageInvalid(StorageProblem.CLOUD, cloud=str(cloud_key)[:64])
    found = session.execute(query.where(Cloud.key == cloud_key, CatalogItem.cloud_name == (type_name or ""))).first()
    if found is None:
        raise StorageInvalid(StorageProblem.VOLUME_TYPE, type=str(type_name)[:64], cloud=str(cloud_key))
    return found[0], found[1]


def create_volume(
    session: Session,
    actor: Actor,
    *,
    name: str,
    size_gb: int,
    volume_type_item_id: int | None = None,
    cloud_key: str | None = None,
    volume_type_name: str | None = None,
) -> VolumeInfo:
    """A new empty volume of the actor's department: the type's catalog item (the portal's
    choice) or the cloud's key and its name for the type (the API's), offered on a cloud of the
    department.  Holds 1 volume and ``size_gb`` GB of its quota until the cloud made it."""
    _forbid_unless(actor.is_department, "only a department's staff and head make volumes for it")
    assert actor.department_id is not None
    name = _check_name(name)
    size_gb = _check_size(size_gb)
    item, cloud = _offered_type(
        session, actor, item_id=volume_type_item_id, cloud_key=cloud_key, type_name=volume_type_name
    )
    key = f"cm-v{actor.department_id}-{secrets.token_hex(6)}"
    reservation = ledger.reserve(
        session,
        department_id=actor.department_id,
        cloud_id=cloud.id,
        amounts={Resource.VOLUMES: 1, Resource.GIGABYTES: size_gb},
        owner=f"volume:{key}",
    )
    volume = ManagedVolume(
        server_id=None,
        request_id=None,
        name=name,
        department_id=actor.department_id,
        cloud_id=cloud.id,
        index=0,
        size_gb=size_gb,
        volume_type=item.cloud_name,
        idempotency_key=key,
        state=VolumeState.PENDING,
        quota_counted=False,
    )
    session.add(volume)
    session.flush()
    _audit(session, actor, "volume.create", volume, {"size_gb": size_gb, "volume_type": item.cloud_name})
    _queue(session, "create", volume=volume.id, reservation_id=reservation.id)
    return _info(session, volume)


def _refuse_busy(volume: ManagedVolume) -> None:
    if volume.state not in SETTLED or volume.state == VolumeState.DELETED:
        raise StorageConflict(StorageProblem.VOLUME_BUSY, volume=volume.id, state=volume.state.value)


def attach_volume(session: Session, actor: Actor, volume_id: int, server_id: int) -> VolumeInfo:
    """Attach one of the department's unattached volumes to one of its active servers on the
    same cloud."""
    volume = _volume(session, actor, volume_id, lock=True)
    _forbid_unless(may_change(actor, volume.department_id), "only the volume's department attaches it")
    _refuse_busy(volume)
    if volume.server_id is not None:
        raise StorageConflict(StorageProblem.ATTACHED, volume=volume.id, server=volume.server_id)
    if volume.state != VolumeState.AVAILABLE:
        raise StorageConflict(StorageProblem.VOLUME_BUSY, volume=volume.id, state=volume.state.value)
    server = session.get(ManagedServer, server_id)
    if server is None or server.department_id != volume.department_id:
        raise StorageNotFound(StorageProblem.SERVER_NOT_FOUND, server=server_id)
    if server.cloud_id != volume.cloud_id:
        cloud_keys = {cloud_id: key for cloud_id, key in session.execute(select(Cloud.id, Cloud.key))}
        raise StorageInvalid(
            StorageProblem.SERVER_OTHER_CLOUD,
            server=server.name,
            server_cloud=cloud_keys[server.cloud_id],
            cloud=cloud_keys[volume.cloud_id],
        )
    if server.state != ServerState.ACTIVE or not server.server_id:
        raise StorageConflict(StorageProblem.SERVER_NOT_ACTIVE, server=server.name, state=server.state.value)
    taken = session.scalar(select(func.max(ManagedVolume.index)).where(ManagedVolume.server_id == server.id))
    volume.server_id, volume.index = server.id, (taken or 0) + 1
    volume.state, volume.fault = VolumeState.ATTACHING, None
    _audit(session, actor, "volume.attach", volume, {"server_id": server.id})
    _queue(session, "attach", volume=volume.id)
    return _info(session, volume)


def detach_volume(session: Session, actor: Actor, volume_id: int) -> VolumeInfo:
    volume = _volume(session, actor, volume_id, lock=True)
    _forbid_unless(may_tidy(actor, volume.department_id), "only the volume's department or an operator detaches it")
    _refuse_busy(volume)
    if volume.state != VolumeState.ATTACHED or volume.server_id is None:
        raise StorageConflict(StorageProblem.NOT_ATTACHED, volume=volume.id)
    volume.state, volume.fault = VolumeState.DETACHING, None
    _audit(session, actor, "volume.detach", volume, {"server_id": volume.server_id})
    _queue(session, "detach", volume=volume.id)
    return _info(session, volume)


def extend_volume(session: Session, actor: Actor, volume_id: int, new_size_gb: int) -> VolumeInfo:
    """Grow a volume (attached or not); the extra GB are held in the quota until it has grown."""
    volume = _volume(session, actor, volume_id, lock=True)
    _forbid_unless(may_change(actor, volume.department_id), "only the volume's department extends it")
    _refuse_busy(volume)
    if volume.state not in {VolumeState.ATTACHED, VolumeState.AVAILABLE}:
        raise StorageConflict(StorageProblem.VOLUME_BUSY, volume=volume.id, state=volume.state.value)
    if isinstance(new_size_gb, bool) or not isinstance(new_size_gb, int) or not volume.size_gb < new_size_gb <= MAX_GB:
        raise StorageInvalid(StorageProblem.NOT_BIGGER, size=volume.size_gb, max=MAX_GB)
    extra = new_size_gb - volume.size_gb
    reservation = ledger.reserve(
        session,
        department_id=volume.department_id,
        cloud_id=volume.cloud_id,
        amounts={Resource.GIGABYTES: extra},
        owner=f"volume:{volume.idempotency_key}:extend:{new_size_gb}",
    )
    previous = volume.state
    volume.state, volume.fault = VolumeState.EXTENDING, None
    _audit(session, actor, "volume.extend", volume, {"from_gb": volume.size_gb, "to_gb": new_size_gb})
    _queue(
        session,
        "extend",
        volume=volume.id,
        reservation_id=reservation.id,
        size_gb=new_size_gb,
        previous=previous.value,
    )
    return _info(session, volume)


def delete_volume(session: Session, actor: Actor, volume_id: int) -> VolumeInfo:
    """Delete an unattached volume (or one whose making failed); its quota goes back once gone."""
    volume = _volume(session, actor, volume_id, lock=True)
    _forbid_unless(may_tidy(actor, volume.department_id), "only the volume's department or an operator deletes it")
    _refuse_busy(volume)
    if volume.server_id is not None:
        raise StorageConflict(StorageProblem.ATTACHED, volume=volume.id, server=volume.server_id)
    previous = volume.state
    volume.state, volume.fault = VolumeState.DELETING, None
    _audit(session, actor, "volume.delete", volume, {"volume_id": volume.volume_id})
    _queue(session, "delete", volume=volume.id, previous=previous.value)
    return _info(session, volume)


# --- public addresses ------------------------------------------------------------------------------


def _address_info(row: ManagedAddress) -> AddressInfo:
    assert row.server_id is not None
    return AddressInfo(row.id, row.server_id, row.address, row.state, row.fault, dict(row.messages or {}))


def _address_item(session: Session, cloud_id: int) -> CatalogItem | None:
    return session.scalar(
        select(CatalogItem).where(
            CatalogItem.cloud_id == cloud_id,
            CatalogItem.kind == ItemKind.FLOATING_IP.value,
            CatalogItem.offered.is_(True),
            CatalogItem.available.is_(True),
        )
    )


def _check_address_wanted(session: Session, server: ManagedServer, row: ManagedAddress | None) -> None:
    if row is not None and row.state in ADDRESS_HELD:
        raise StorageConflict(StorageProblem.ADDRESS_EXISTS, server=server.name, state=row.state.value)
    if server.zone != ZoneKind.INTERNET.value:
        raise StorageInvalid(StorageProblem.ADDRESS_ZONE, zone=server.zone)
    cloud = session.get(Cloud, server.cloud_id)
    assert cloud is not None
    if not cloud.external_network or _address_item(session, cloud.id) is None:
        raise StorageConflict(StorageProblem.ADDRESS_NOT_OFFERED, cloud=cloud.key)
    if server.state != ServerState.ACTIVE or not server.server_id:
        raise StorageConflict(StorageProblem.SERVER_NOT_ACTIVE, server=server.name, state=server.state.value)


def _server(session: Session, actor: Actor, server_id: int) -> ManagedServer:
    server = session.get(ManagedServer, server_id, with_for_update=True)
    if server is None or not _may_see(actor, server.department_id):
        raise StorageNotFound(StorageProblem.SERVER_NOT_FOUND, server=server_id)
    return server


def request_public_address(session: Session, actor: Actor, server_id: int) -> AddressInfo:
    """A public address for one of the department's active servers on the internet zone (never
    on another zone); 1 floating IP of the quota is held until it points at the server."""
    server = _server(session, actor, server_id)
    _forbid_unless(may_change(actor, server.department_id), "only the server's department asks for its address")
    row = session.scalar(select(ManagedAddress).where(ManagedAddress.server_id == server.id).with_for_update())
    _check_address_wanted(session, server, row)
    reservation = ledger.reserve(
        session,
        department_id=server.department_id,
        cloud_id=server.cloud_id,
        amounts={Resource.FLOATING_IPS: 1},
        owner=f"address:server:{server.id}",
    )
    if row is None:
        row = ManagedAddress(server_id=server.id, idempotency_key=_address_key(server))
        session.add(row)
    elif row.state == AddressState.RELEASED:
        # Its old tag went back to the cloud with the address; a new ask is a new tag.
        row.idempotency_key = _address_key(server)
    # A failed ask keeps its tag: the cloud may still hold what an earlier run allocated.
    row.floating_ip_id, row.address, row.fault = None, None, None
    row.state, row.quota_counted = AddressState.PENDING, False
    session.flush()
    audit.record(
        session, actor=actor.username, action="address.request", target_type="managed_server", target_id=server.id
    )
    _queue(session, "address", address=row.id, reservation_id=reservation.id)
    return _address_info(row)


def _address_key(server: ManagedServer) -> str:
    return f"cm-s{server.id}-ip-{secrets.token_hex(4)}"


def release_public_address(session: Session, actor: Actor, server_id: int) -> AddressInfo:
    server = _server(session, actor, server_id)
    _forbid_unless(
        may_tidy(actor, server.department_id), "only the server's department or an operator releases its address"
    )
    row = session.scalar(select(ManagedAddress).where(ManagedAddress.server_id == server.id).with_for_update())
    if row is None or row.state == AddressState.RELEASED:
        raise StorageNotFound(StorageProblem.NO_ADDRESS, server=server.name)
    if row.state not in {AddressState.ASSOCIATED, AddressState.ALLOCATED, AddressState.FAILED}:
        raise StorageConflict(StorageProblem.ADDRESS_EXISTS, server=server.name, state=row.state.value)
    previous = row.state
    row.state, row.fault = AddressState.RELEASING, None
    audit.record(
        session,
        actor=actor.username,
        action="address.release",
        target_type="managed_server",
        target_id=server.id,
        detail={"address": row.address},
    )
    _queue(session, "release", address=row.id, previous=previous.value)
    return _address_info(row)


# --- shared -----------------------------------------------------------------------------------------


def _audit(session: Session, actor: Actor, action: str, volume: ManagedVolume, detail: dict[str, object]) -> None:
    audit.record(
        session,
        actor=actor.username,
        action=action,
        target_type="managed_volume",
        target_id=volume.id,
        detail={"name": volume.name, **detail},
    )


def _queue(
    session: Session, op: str, *, volume: int | None = None, address: int | None = None, **payload: object
) -> None:
    target = f"volume:{volume}" if volume is not None else f"address:{address}"
    # A key of its own per change: the item of the change before may still be finishing.
    enqueue(
        session,
        WORK_KIND,
        f"storage:{target}:{op}:{secrets.token_hex(4)}",
        {"op": op, "volume_id": volume, "address_id": address, **payload},
        max_attempts=6,
    )
