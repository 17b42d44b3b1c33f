"""Syncing the catalog from the clouds and managing what is offered."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.catalog.errors import CatalogItemInvalid, CatalogItemNotFound, RatesFileInvalid
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.cloud import CloudError
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


@dataclass(frozen=True)
class Rates:
    flavors: dict[str, Rate] = field(default_factory=dict)
    images: dict[str, Rate] = field(default_factory=dict)

    def for_item(self, kind: ItemKind, cloud_name: str) -> Rate | None:
        return (self.flavors if kind == ItemKind.FLAVOR else self.images).get(cloud_name)


def read_rates(path: Path) -> Rates:
    """The rates file: default names, prices and offering per flavor/image name."""
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
            try:
                price = Decimal(str(raw.get("monthly_yuan", 0)))
            except InvalidOperation:
                problems.append(f"{path}: {section}.{name}.monthly_yuan is not a number")
                continue
            if price < 0:
                problems.append(f"{path}: {section}.{name}.monthly_yuan must not be negative")
                continue
            parsed[section][str(name)] = Rate(
                name_zh=str(raw.get("name_zh", name)),
                name_en=str(raw.get("name_en", name)),
                monthly_price=price,
                offered=bool(raw.get("offered", False)),
            )
    if problems:
        raise RatesFileInvalid("\n".join(problems))
    return Rates(flavors=parsed["flavors"], images=parsed["images"])


@dataclass
class CatalogSyncResult:
    cloud_key: str
    added: int = 0
    updated: int = 0
    gone: int = 0
    problem: str | None = None


def sync_catalog(db: Database, registry: ProviderRegistry, rates: Rates, *, actor: Actor) -> list[CatalogSyncResult]:
    """Read flavors and images from every cloud; new items take their defaults from the rates file."""
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
                if key_ not in seen and item.available:
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


def offered_catalog(session: Session, actor: Actor, cloud_key: str) -> list[CatalogItem]:
    """The flavors and images offered on a cloud the actor may see (a department user: only
    their department's clouds; any other cloud is unknown to them)."""
    query = select(Cloud.id).where(Cloud.key == cloud_key)
    if actor.is_department:
        query = query.join(DepartmentCloud, DepartmentCloud.cloud_id == Cloud.id).where(
            DepartmentCloud.department_id == actor.department_id
        )
    cloud_id = session.scalar(query)
    if cloud_id is None:
        raise UnknownCloud(f"no cloud {cloud_key!r}")
    return [*offered_items(session, cloud_id, ItemKind.FLAVOR), *offered_items(session, cloud_id, ItemKind.IMAGE)]


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
