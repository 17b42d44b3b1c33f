"""What a new request must be (the typed form and its checks) and what it would cost: the quote and
the approval chain a cost implies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud, NetworkZone
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import NoQuota
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.errors import (
    RequestInvalid,
)
from cloudmgr.servicerequests.placement import check_legacy_system

NAME_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
MAX_COUNT = 20
MAX_EXPIRY_DAYS = 3 * 365


@dataclass(frozen=True)
class RequestForm:
    cloud_key: str
    zone: str
    flavor_item_id: int
    image_item_id: int
    count: int
    name_prefix: str
    justification: str
    expires_on: date
    application_system: str | None = None
    # The legacy system the VMs replace (issue 6); a classified one is refused and audited.
    legacy_system_id: int | None = None


@dataclass(frozen=True)
class Quote:
    monthly_cost: Decimal
    needs: dict[Resource, int]
    free: dict[Resource, int]
    limits: dict[Resource, int]
    fits: bool
    approval_steps: list[str]


def _needs(flavor: CatalogItem, count: int) -> dict[Resource, int]:
    return {Resource.CORES: flavor.vcpus * count, Resource.RAM_MB: flavor.ram_mb * count, Resource.INSTANCES: count}


def approval_steps(cloud: Cloud, monthly_cost: Decimal) -> list[str]:
    policy = cloud.approval_policy or {}
    steps = list(policy.get("steps") or ["dept_head", "operator"])
    threshold = policy.get("finance_above_yuan")
    if threshold is not None and monthly_cost > Decimal(str(threshold)) and "finance" not in steps:
        steps.append("finance")
    return steps


def validated(session: Session, actor: Actor, form: RequestForm, today: date) -> tuple[Cloud, CatalogItem, CatalogItem]:
    if actor.department_id is None:
        raise RequestInvalid("only department users request VMs")
    problems = []
    cloud = session.scalar(select(Cloud).where(Cloud.key == form.cloud_key))
    link = None
    if cloud is not None:
        link = session.scalar(
            select(DepartmentCloud).where(
                DepartmentCloud.department_id == actor.department_id, DepartmentCloud.cloud_id == cloud.id
            )
        )
    if cloud is None or link is None or not cloud.enabled:
        raise RequestInvalid(f"your department may not use cloud {form.cloud_key!r}")
    zone = session.scalar(select(NetworkZone).where(NetworkZone.cloud_id == cloud.id, NetworkZone.zone == form.zone))
    if zone is None:
        problems.append(f"cloud {cloud.key} has no {form.zone!r} zone")
    flavor = session.get(CatalogItem, form.flavor_item_id)
    if flavor is None or flavor.cloud_id != cloud.id or flavor.kind != ItemKind.FLAVOR.value or not flavor.offered:
        problems.append("choose a flavor offered on this cloud")
    image = session.get(CatalogItem, form.image_item_id)
    if image is None or image.cloud_id != cloud.id or image.kind != ItemKind.IMAGE.value or not image.offered:
        problems.append("choose an image offered on this cloud")
    if not 1 <= form.count <= MAX_COUNT:
        problems.append(f"count must be between 1 and {MAX_COUNT}")
    if not NAME_PREFIX.match(form.name_prefix or ""):
        problems.append("name prefix: 2-31 lower-case letters, digits or '-', starting with a letter")
    if not (form.justification or "").strip():
        problems.append("a justification is required")
    elif len(form.justification) > 4000:
        problems.append("the justification is too long (at most 4000 characters)")
    if form.application_system and len(form.application_system) > 128:
        problems.append("the application system name is too long (at most 128 characters)")
    if form.expires_on <= today:
        problems.append("the expiry date must be in the future")
    elif form.expires_on > today + timedelta(days=MAX_EXPIRY_DAYS):
        problems.append(f"the expiry date must be within {MAX_EXPIRY_DAYS // 365} years")
    if problems:
        raise RequestInvalid("; ".join(problems))
    assert flavor is not None and image is not None
    return cloud, flavor, image


def quote(
    session: Session, actor: Actor, form: RequestForm, *, today: date | None = None, entry_point: str = "quote"
) -> Quote:
    """What a request would cost per month, what it needs, and what quota is left (before submitting).

    The legacy system is checked exactly as :func:`create_request` checks it: another
    department's is not found (404) and a classified one is refused (409
    ``classified_system``, audited under ``entry_point``, e.g. "portal.quote"): a quote never
    says "fits" for a request that would be refused."""
    cloud, flavor, _image = validated(session, actor, form, today or date.today())
    check_legacy_system(session, actor, form.legacy_system_id, entry_point)
    assert actor.department_id is not None
    needs = _needs(flavor, form.count)
    try:
        balance = ledger.balance(session, actor.department_id, cloud.id)
        free = {r: b.free for r, b in balance.resources.items()}
        limits = {r: b.limit for r, b in balance.resources.items()}
    except NoQuota:
        free = {r: 0 for r in needs}
        limits = dict(free)
    cost = (flavor.monthly_price * form.count).quantize(Decimal("0.01"))
    return Quote(cost, needs, free, limits, all(needs[r] <= free.get(r, 0) for r in needs), approval_steps(cloud, cost))
