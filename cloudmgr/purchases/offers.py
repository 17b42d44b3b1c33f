"""Finding 1, "the cloud provides it": a concrete offer that replaces a purchase.

For every cloud the department may use, every offered flavor of the synced catalog is
sized to cover the purchase's items (pooled vCPU, RAM and disk) as ``flavor x count``; an
offer counts only when it fits the department's quota headroom on that cloud (or the
standard quota step above its size in ``quotas/sizes.yaml``) and the cloud's free capacity
(read live from Placement through the CloudProvider, or the latest capacity snapshot when
the cloud cannot be read), packed host by host.  The cheapest offer that fits wins; when
none fits, the reason per cloud is the evidence.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.capacity.models import CapacitySnapshot
from cloudmgr.catalog import services as catalog
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.cloud import CloudError
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.providers import ProviderRegistry
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import NoQuota
from cloudmgr.quotas.files import QuotaDefinitions
from cloudmgr.quotas.models import QuotaAssignment
from cloudmgr.quotas.resources import Resource

log = logging.getLogger(__name__)

MAX_INSTANCES = 1000  # an offer of more VMs than this is not an offer
PREFERRED_ZONES = ("extranet", "internet")


@dataclass(frozen=True)
class Needs:
    """What the purchase's sized items add up to."""

    vcpus: int
    ram_mb: int
    disk_gb: int
    servers: int
    # The largest single server asked for: a flavor at least that big replaces servers one for one.
    max_vcpus: int = 0
    max_ram_mb: int = 0

    @property
    def empty(self) -> bool:
        return not (self.vcpus or self.ram_mb or self.disk_gb)


@dataclass(frozen=True)
class HostFree:
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int

    def fits(self, flavor: CatalogItem) -> int:
        """How many VMs of ``flavor`` this host can still take."""
        counts = []
        for free, size in ((self.vcpus, flavor.vcpus), (self.ram_mb, flavor.ram_mb), (self.disk_gb, flavor.disk_gb)):
            if size > 0:
                counts.append(max(free, 0) // size)
        return min(counts) if counts else 0


@dataclass
class CapacityView:
    source: str  # live | snapshot | none
    hosts: list[HostFree] = field(default_factory=list)
    taken_at: str | None = None
    problem_message: Message | None = None

    @property
    def problem(self) -> str | None:
        return str(self.problem_message) if self.problem_message is not None else None

    def totals(self) -> dict[str, int]:
        return {
            "vcpus": sum(max(h.vcpus, 0) for h in self.hosts),
            "ram_mb": sum(max(h.ram_mb, 0) for h in self.hosts),
            "disk_gb": sum(max(h.disk_gb, 0) for h in self.hosts),
            "hosts": len(self.hosts),
        }

    def room_for(self, flavor: CatalogItem) -> int:
        return sum(h.fits(flavor) for h in self.hosts)


class CapacityReader:
    """Free capacity per cloud, read once per endpoint (several clouds may share one OpenStack).

    Live capacity comes from the clouds and is read only by :meth:`read_live`, which takes no
    database session: the purchase-findings job calls it between its units of work, never inside
    a transaction.  :meth:`for_cloud` answers inside a transaction from what was read live, else
    from the latest capacity snapshot in the database."""

    def __init__(self) -> None:
        self._live: dict[tuple[str, str | None], CapacityView] = {}
        self._problems: dict[tuple[str, str | None], Message] = {}
        self._cache: dict[tuple[str, str | None], CapacityView] = {}

    def read_live(self, registry: ProviderRegistry, clouds: Sequence[tuple[str, str, str | None]]) -> None:
        """Read the free capacity of ``clouds`` (key, os_cloud, region) from Placement, once per endpoint."""
        for cloud_key, os_cloud, region in clouds:
            key = (os_cloud, region)
            if key in self._live or key in self._problems:
                continue
            try:
                provider = registry.for_cloud(cloud_key, os_cloud, region)
                providers = provider.list_resource_providers()
                hypervisors = {h.name: h for h in provider.list_hypervisors()}
            except CloudError as exc:
                self._problems[key] = message(N_("live capacity unavailable: %(error)s"), error=str(exc))
                log.warning("capacity of %s: %s", cloud_key, exc)
                continue
            hosts = []
            for rp in providers:
                hv = hypervisors.get(rp.name)
                if hv is not None and (hv.state != "up" or hv.status != "enabled"):
                    continue  # a host that is down or disabled takes no new VMs
                hosts.append(HostFree(rp.name, rp.free("VCPU"), rp.free("MEMORY_MB"), rp.free("DISK_GB")))
            self._live[key] = CapacityView("live", hosts)

    def for_cloud(self, session: Session, cloud: Cloud) -> CapacityView:
        key = (cloud.os_cloud, cloud.region)
        if key not in self._cache:
            self._cache[key] = self._live.get(key) or self._read_snapshot(session, cloud, self._problems.get(key))
        return self._cache[key]

    def _read_snapshot(self, session: Session, cloud: Cloud, problem: Message | None) -> CapacityView:
        snapshot = self._latest_snapshot(session, cloud.key)
        if snapshot is None:
            return CapacityView("none", problem_message=problem or Message(N_("no capacity data for this cloud")))
        hosts = [
            HostFree(
                h.name, h.vcpus_total - h.vcpus_used, h.ram_mb_total - h.ram_mb_used, h.disk_gb_total - h.disk_gb_used
            )
            for h in snapshot.hosts
            if h.state == "up"
        ]
        return CapacityView(
            "snapshot", hosts, taken_at=snapshot.taken_at.isoformat(timespec="seconds"), problem_message=problem
        )

    @staticmethod
    def _latest_snapshot(session: Session, cloud_key: str) -> CapacitySnapshot | None:
        for snapshot in session.scalars(
            select(CapacitySnapshot)
            .where(CapacitySnapshot.source == "placement")
            .order_by(CapacitySnapshot.taken_at.desc(), CapacitySnapshot.id.desc())
            .limit(200)
        ):
            if cloud_key in snapshot.clouds.split(","):
                return snapshot
        return None


# The resources as words in a sentence (translated where it is shown).
RESOURCE_WORDS: dict[Resource, str] = {
    Resource.CORES: N_("vCPU cores"),
    Resource.RAM_MB: N_("memory"),
    Resource.INSTANCES: N_("servers"),
}


@dataclass(frozen=True)
class QuotaFit:
    fits: bool
    how: str  # headroom | step | none
    step_size: str | None
    free: dict[str, int]
    message: Message

    @property
    def detail(self) -> str:
        return str(self.message)


def _quota_fit(
    session: Session,
    department_id: int,
    cloud_id: int,
    needs: dict[Resource, int],
    definitions: QuotaDefinitions | None,
) -> QuotaFit:
    try:
        balance = ledger.balance(session, department_id, cloud_id)
    except NoQuota:
        return QuotaFit(False, "none", None, {}, Message(N_("no quota on this cloud")))
    free = {r.value: b.free for r, b in balance.resources.items()}
    if all(needs[r] <= balance.resources[r].free for r in needs if r in balance.resources):
        return QuotaFit(True, "headroom", None, free, Message(N_("fits the quota headroom")))
    assignment = session.scalar(
        select(QuotaAssignment).where(
            QuotaAssignment.department_id == department_id, QuotaAssignment.cloud_id == cloud_id
        )
    )
    step = definitions.size_above(assignment.size if assignment else None) if definitions else None
    if step is None:
        return QuotaFit(
            False, "none", None, free, Message(N_("exceeds the quota and no standard size step is above it"))
        )
    for resource, n in needs.items():
        row = balance.resources.get(resource)
        taken = (row.used + row.reserved) if row else 0
        if taken + n > step.limits.get(resource, 0):
            return QuotaFit(
                False,
                "none",
                step.name,
                free,
                message(
                    N_("exceeds the quota even one size up (size %(size)s: %(resource)s)"),
                    size=step.name,
                    resource=Message(RESOURCE_WORDS.get(resource, resource.value)),
                ),
            )
    return QuotaFit(
        True, "step", step.name, free, message(N_("fits after one standard step up to size %(size)s"), size=step.name)
    )


def _count_for(flavor: CatalogItem, needs: Needs) -> int | None:
    counts = []
    for need, size in ((needs.vcpus, flavor.vcpus), (needs.ram_mb, flavor.ram_mb), (needs.disk_gb, flavor.disk_gb)):
        if need <= 0:
            continue
        if size <= 0:
            return None  # this flavor cannot cover that dimension at all
        counts.append(math.ceil(need / size))
    return max(counts) if counts else None


def _rank(offer: dict[str, Any]) -> tuple[bool, Decimal, int, bool]:
    """Servers replaced one for one first, then the cheapest, the fewest VMs, no quota step."""
    return (
        not offer["one_for_one"],
        Decimal(offer["monthly_cost"]),
        offer["count"],
        offer["quota"]["how"] != "headroom",
    )


def find_offer(
    session: Session,
    *,
    department_id: int,
    needs: Needs,
    purchase_amount: Decimal,
    capacity: CapacityReader,
    definitions: QuotaDefinitions | None,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(the best offer, the reasons per cloud when it did not fit)."""
    best: dict[str, Any] | None = None
    rejected: list[dict[str, Any]] = []
    links: Sequence[DepartmentCloud] = session.scalars(
        select(DepartmentCloud).where(DepartmentCloud.department_id == department_id).order_by(DepartmentCloud.id)
    ).all()
    for link in links:
        cloud = link.cloud
        if not cloud.enabled:
            continue
        zones = {z.zone for z in cloud.zones}
        zone = next((z for z in PREFERRED_ZONES if z in zones), None)
        if zone is None:
            rejected.append(_rejected(cloud.key, [Message(N_("the cloud has no network zone"))]))
            continue
        flavors = catalog.offered_items(session, cloud.id, ItemKind.FLAVOR)
        if not flavors:
            rejected.append(_rejected(cloud.key, [Message(N_("no flavor is offered in the catalog"))]))
            continue
        view = capacity.for_cloud(session, cloud)
        reasons: list[Message] = []
        for flavor in flavors:
            count = _count_for(flavor, needs)
            if count is None or count > MAX_INSTANCES:
                continue
            wanted = {
                Resource.CORES: flavor.vcpus * count,
                Resource.RAM_MB: flavor.ram_mb * count,
                Resource.INSTANCES: count,
            }
            quota = _quota_fit(session, department_id, cloud.id, wanted, definitions)
            if not quota.fits:
                reasons.append(_flavor_reason(flavor.cloud_name, count, quota.message))
                continue
            if view.source == "none":
                reasons.append(_flavor_reason(flavor.cloud_name, count, view.problem_message))
                continue
            room = view.room_for(flavor)
            if room < count:
                room_only = message(N_("the cloud has room for %(room)s only"), room=room)
                reasons.append(_flavor_reason(flavor.cloud_name, count, room_only))
                continue
            monthly = (flavor.monthly_price * count).quantize(Decimal("0.01"))
            offer: dict[str, Any] = {
                "cloud": cloud.key,
                "cloud_name_zh": cloud.name_zh,
                "cloud_name_en": cloud.name_en,
                "zone": zone,
                "flavor": flavor.cloud_name,
                "flavor_item_id": flavor.id,
                "flavor_vcpus": flavor.vcpus,
                "flavor_ram_mb": flavor.ram_mb,
                "flavor_disk_gb": flavor.disk_gb,
                "count": count,
                "monthly_cost": str(monthly),
                "yearly_cost": str(monthly * 12),
                "purchase_amount": str(purchase_amount),
                "needs": {"vcpus": needs.vcpus, "ram_mb": needs.ram_mb, "disk_gb": needs.disk_gb},
                "quota": {"how": quota.how, "step_size": quota.step_size, "free": quota.free, "detail": quota.detail},
                "capacity": {
                    "source": view.source,
                    "taken_at": view.taken_at,
                    "room": room,
                    "free": view.totals(),
                },
            }
            offer["one_for_one"] = flavor.vcpus >= needs.max_vcpus and flavor.ram_mb >= needs.max_ram_mb
            if best is None or _rank(offer) < _rank(best):
                best = offer
        if reasons and (best is None or best["cloud"] != cloud.key):
            rejected.append(_rejected(cloud.key, reasons[:5]))
    return best, rejected


def _flavor_reason(flavor: str, count: int, why: Message | None) -> Message:
    return message(N_("%(flavor)s × %(count)s: %(why)s"), flavor=flavor, count=count, why=why or Message(""))


def _rejected(cloud_key: str, reasons: Sequence[Message]) -> dict[str, Any]:
    """Why a cloud made no offer: in English (``reason``) and as messages (``reasons``)."""
    return {"cloud": cloud_key, "reason": "; ".join(str(r) for r in reasons), "reasons": [r.as_dict() for r in reasons]}
