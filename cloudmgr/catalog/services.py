"""Syncing the catalog from the clouds and managing what is offered."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.catalog.errors import CatalogItemInvalid, CatalogItemNotFound, RatesFileInvalid
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.cloud import CloudError, CloudProvider
from cloudmgr.cloud.types import VolumeType
from cloudmgr.db import Database, utcnow
from cloudmgr.errors import PermissionDenied
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import UnknownCloud
from cloudmgr.organisation.models import Cloud, DepartmentCloud, Role
from cloudmgr.providers import ProviderRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rate:
    name_zh: str
    name_en: str
    monthly_price: Decimal
    offered: bool


#: The catalog's one public-address item of each cloud (ItemKind.FLOATING_IP), by external_id.
FLOATING_IP_EXTERNAL_ID = "floating-ip"


@dataclass(frozen=True)
class Rates:
    flavors: dict[str, Rate] = field(default_factory=dict)
    images: dict[str, Rate] = field(default_factory=dict)
    # Yuan per GB-month by the cloud's volume type name; a type named here is offered.
    volume_types: dict[str, Decimal] = field(default_factory=dict)
    # Yuan per public address-month; None: public addresses are synced but not offered.
    floating_ip: Decimal | None = None
    # Yuan per GB-month of a volume backup kept in the backup store (showback prices backups at
    # it); None: backups are shown without a price.
    backup_gb: Decimal | None = None

    def for_item(self, kind: ItemKind, cloud_name: str) -> Rate | None:
        if kind == ItemKind.VOLUME_TYPE:
            price = self.volume_types.get(cloud_name)
            return None if price is None else Rate(cloud_name, cloud_name, price, offered=True)
        if kind == ItemKind.FLOATING_IP:
            if self.floating_ip is None:
                return None
            return Rate("公网地址", "Public address", self.floating_ip, offered=True)
        return (self.flavors if kind == ItemKind.FLAVOR else self.images).get(cloud_name)


def _price(raw: object, where: str, problems: list[str]) -> Decimal | None:
    try:
        price = Decimal(str(raw))
    except InvalidOperation:
        problems.append(f"{where} is not a number")
        return None
    if not price.is_finite() or price < 0:
        problems.append(f"{where} must not be negative")
        return None
    return price


def read_rates(path: Path) -> Rates:
    """The rates file: default names, prices and offering per flavor/image name, the price per
    GB-month per volume type name, the monthly price of a public address and the price per
    GB-month of a volume backup."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RatesFileInvalid(f"{path}: {exc}") from exc
    problems: list[str] = []
    parsed: dict[str, dict[str, Rate]] = {"flavors": {}, "images": {}}
    for section in ("flavors", "images"):
        entries = data.get(section, {}) or {}
        if not isinstance(entries, dict):
            problems.append(f"{path}: '{section}' must be a mapping")
            continue
        for name, raw in entries.items():
            if not isinstance(raw, dict):
                problems.append(f"{path}: {section}.{name} must be a mapping")
                continue
            price = _price(raw.get("monthly_yuan", 0), f"{path}: {section}.{name}.monthly_yuan", problems)
            if price is None:
                continue
            parsed[section][str(name)] = Rate(
                name_zh=str(raw.get("name_zh", name)),
                name_en=str(raw.get("name_en", name)),
                monthly_price=price,
                offered=bool(raw.get("offered", False)),
            )
    volume_types: dict[str, Decimal] = {}
    entries = data.get("volume_types", {}) or {}
    if not isinstance(entries, dict):
        problems.append(f"{path}: 'volume_types' must be a mapping of type name to yuan per GB-month")
    else:
        for name, raw in entries.items():
            price = _price(raw, f"{path}: volume_types.{name}", problems)
            if price is not None:
                volume_types[str(name)] = price
    floating_ip = None
    if data.get("floating_ip") is not None:
        floating_ip = _price(data["floating_ip"], f"{path}: floating_ip", problems)
    backup_gb = None
    if data.get("backup_gb") is not None:
        backup_gb = _price(data["backup_gb"], f"{path}: backup_gb", problems)
    if problems:
        raise RatesFileInvalid("\n".join(problems))
    return Rates(
        flavors=parsed["flavors"],
        images=parsed["images"],
        volume_types=volume_types,
        floating_ip=floating_ip,
        backup_gb=backup_gb,
    )


@dataclass
class CatalogSyncResult:
    cloud_key: str
    added: int = 0
    updated: int = 0
    gone: int = 0
    problem: str | None = None
    # Why the cloud's volume types were not read (a cloud without block storage); its
    # flavors and images are synced all the same and its known types are left as they are.
    volume_types_skipped: str | None = None


def _read_volume_types(provider: CloudProvider, result: CatalogSyncResult) -> list[VolumeType] | None:
    try:
        return provider.list_volume_types()
    except CloudError as exc:
        result.volume_types_skipped = f"no block storage on this cloud, volume types skipped: {exc}"
        log.info("catalog sync of %s: %s", result.cloud_key, result.volume_types_skipped)
        return None


def sync_catalog(db: Database, registry: ProviderRegistry, rates: Rates, *, actor: Actor) -> list[CatalogSyncResult]:
    """Read flavors, images and volume types from every cloud; new items take their defaults
    from the rates file.  Every cloud also gets its one public-address item."""
    with db.unit_of_work() as uow:
        clouds = [(c.id, c.key, c.os_cloud, c.region) for c in uow.session.scalars(select(Cloud).where(Cloud.enabled))]
    results = []
    for cloud_id, key, os_cloud, region in clouds:
        result = CatalogSyncResult(key)
        try:
            provider = registry.for_cloud(key, os_cloud, region)
            flavors = provider.list_flavors()
            images = [i for i in provider.list_images() if i.status == "active"]
        except CloudError as exc:
            result.problem = str(exc)
            results.append(result)
            continue
        volume_types = _read_volume_types(provider, result)
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for flavor in flavors:
            if flavor.is_public:
                seen[(ItemKind.FLAVOR.value, flavor.id)] = {
                    "cloud_name": flavor.name,
                    "vcpus": flavor.vcpus,
                    "ram_mb": flavor.ram_mb,
                    "disk_gb": flavor.disk_gb,
                }
        for image in images:
            seen[(ItemKind.IMAGE.value, image.id)] = {
                "cloud_name": image.name,
                "vcpus": 0,
                "ram_mb": image.min_ram_mb,
                "disk_gb": image.min_disk_gb,
            }
        for volume_type in volume_types or []:
            seen[(ItemKind.VOLUME_TYPE.value, volume_type.id)] = {
                "cloud_name": volume_type.name,
                "vcpus": 0,
                "ram_mb": 0,
                "disk_gb": 0,
            }
        seen[(ItemKind.FLOATING_IP.value, FLOATING_IP_EXTERNAL_ID)] = {
            "cloud_name": "floating IP",
            "vcpus": 0,
            "ram_mb": 0,
            "disk_gb": 0,
        }
        with db.unit_of_work() as uow:
            now = utcnow()
            existing = {
                (i.kind, i.external_id): i
                for i in uow.session.scalars(select(CatalogItem).where(CatalogItem.cloud_id == cloud_id))
            }
            for (kind, external_id), attrs in seen.items():
                item = existing.get((kind, external_id))
                if item is None:
                    rate = rates.for_item(ItemKind(kind), attrs["cloud_name"])
                    item = CatalogItem(
                        cloud_id=cloud_id,
                        kind=kind,
                        external_id=external_id,
                        name_zh=rate.name_zh if rate else attrs["cloud_name"],
                        name_en=rate.name_en if rate else attrs["cloud_name"],
                        monthly_price=rate.monthly_price if rate else Decimal("0"),
                        offered=rate.offered if rate else False,
                    )
                    uow.session.add(item)
                    result.added += 1
                else:
                    result.updated += 1
                item.cloud_name = attrs["cloud_name"]
                item.vcpus, item.ram_mb, item.disk_gb = attrs["vcpus"], attrs["ram_mb"], attrs["disk_gb"]
                item.available, item.synced_at = True, now
            for key_, item in existing.items():
                unread = volume_types is None and key_[0] == ItemKind.VOLUME_TYPE.value
                if key_ not in seen and item.available and not unread:
                    item.available = False
                    result.gone += 1
            if result.added or result.gone:
                audit.record(
                    uow.session,
                    actor=actor.username,
                    action="catalog.sync",
                    target_type="cloud",
                    target_id=key,
                    detail={"added": result.added, "gone": result.gone},
                )
        results.append(result)
    return results


def offered_items(session: Session, cloud_id: int, kind: ItemKind) -> Sequence[CatalogItem]:
    return session.scalars(
        select(CatalogItem)
        .where(
            CatalogItem.cloud_id == cloud_id,
            CatalogItem.kind == kind.value,
            CatalogItem.offered.is_(True),
            CatalogItem.available.is_(True),
        )
        .order_by(CatalogItem.vcpus, CatalogItem.ram_mb, CatalogItem.cloud_name)
    ).all()


# offered_catalog is read on every request form and catalog call: its statements are built once,
# with the values bound per call (building one anew costs more CPU than running it).
_CLOUD_ID_BY_KEY = select(Cloud.id).where(Cloud.key == bindparam("cloud_key"))
_CLOUD_ID_OF_DEPARTMENT = _CLOUD_ID_BY_KEY.join(DepartmentCloud, DepartmentCloud.cloud_id == Cloud.id).where(
    DepartmentCloud.department_id == bindparam("department_id")
)
_OFFERED_ITEMS = (
    select(CatalogItem)
    .where(
        CatalogItem.cloud_id == bindparam("cloud_id"),
        CatalogItem.offered.is_(True),
        CatalogItem.available.is_(True),
    )
    .order_by(CatalogItem.vcpus, CatalogItem.ram_mb, CatalogItem.cloud_name)
)
_KIND_RANK = {kind.value: i for i, kind in enumerate(ItemKind)}


def offered_catalog(session: Session, actor: Actor, cloud_key: str) -> list[CatalogItem]:
    """The flavors, images, volume types and public address offered on a cloud the actor may
    see (a department user: only their department's clouds; any other is unknown to them)."""
    if actor.is_department:
        cloud_id = session.scalar(
            _CLOUD_ID_OF_DEPARTMENT, {"cloud_key": cloud_key, "department_id": actor.department_id}
        )
    else:
        cloud_id = session.scalar(_CLOUD_ID_BY_KEY, {"cloud_key": cloud_key})
    if cloud_id is None:
        raise UnknownCloud(f"no cloud {cloud_key!r}")
    # One query for every kind (not one a kind), then grouped by kind in ItemKind's order, each
    # kind's items in the query's order.
    items = session.scalars(_OFFERED_ITEMS, {"cloud_id": cloud_id}).all()
    rank = _KIND_RANK
    return sorted((item for item in items if item.kind in rank), key=lambda item: rank[item.kind])


def all_items(session: Session, cloud_id: int | None = None) -> Sequence[CatalogItem]:
    query = select(CatalogItem).order_by(
        CatalogItem.cloud_id, CatalogItem.kind, CatalogItem.vcpus, CatalogItem.cloud_name
    )
    if cloud_id is not None:
        query = query.where(CatalogItem.cloud_id == cloud_id)
    return session.scalars(query).all()


def get_item(session: Session, item_id: int) -> CatalogItem:
    item = session.get(CatalogItem, item_id)
    if item is None:
        raise CatalogItemNotFound(f"no catalog item {item_id}")
    return item


def update_offer(
    session: Session,
    actor: Actor,
    item_id: int,
    *,
    offered: bool,
    name_zh: str,
    name_en: str,
    monthly_price: Decimal,
) -> CatalogItem:
    """An operator decides whether and how an item is offered."""
    if actor.role != Role.OPERATOR:
        raise PermissionDenied("only cloud operators decide what the catalog offers")
    name_zh, name_en = name_zh.strip(), name_en.strip()
    if not name_zh or not name_en or len(name_zh) > 128 or len(name_en) > 128:
        raise CatalogItemInvalid("Chinese and English names are required (at most 128 characters)")
    if monthly_price < 0 or monthly_price > Decimal("10000000"):
        raise CatalogItemInvalid("the monthly price must be between 0 and 10,000,000 yuan")
    item = get_item(session, item_id)
    if offered and not item.available:
        raise CatalogItemInvalid("this item is no longer on the cloud and cannot be offered")
    before = {"offered": item.offered, "price": str(item.monthly_price), "name_zh": item.name_zh}
    item.offered, item.name_zh, item.name_en = offered, name_zh, name_en
    item.monthly_price = monthly_price.quantize(Decimal("0.01"))
    audit.record(
        session,
        actor=actor.username,
        action="catalog.offer",
        target_type="catalog_item",
        target_id=item.id,
        detail={"before": before, "after": {"offered": offered, "price": str(item.monthly_price), "name_zh": name_zh}},
    )
    return item
