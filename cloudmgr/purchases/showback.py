"""Showback: what each department's cloud usage costs per month at the catalog's rates.

Per department and cloud: the servers cloudmgr manages, priced at their flavor's monthly
rate; the ledger's usage (cores, RAM, instances) beside it, and the cores the ledger counts
that no managed server explains (usage found on the cloud by the reconcile job) priced at
the cloud's mean catalog rate per vCPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudmgr import exports
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department
from cloudmgr.quotas.models import QuotaLedgerRow
from cloudmgr.servicerequests.models import ManagedServer

BILLED_STATES = ("active", "stopped", "building")
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


@dataclass
class ShowbackRow:
    department_key: str
    department_name_zh: str
    department_name_en: str
    cloud_key: str
    cloud_name_zh: str
    cloud_name_en: str
    servers: int = 0
    server_vcpus: int = 0
    server_ram_mb: int = 0
    servers_yuan: Decimal = ZERO
    ledger_cores: int = 0
    ledger_ram_mb: int = 0
    ledger_instances: int = 0
    unattributed_cores: int = 0
    unattributed_yuan: Decimal = ZERO

    @property
    def monthly_yuan(self) -> Decimal:
        return (self.servers_yuan + self.unattributed_yuan).quantize(CENT)


@dataclass
class Showback:
    rows: list[ShowbackRow] = field(default_factory=list)

    @property
    def monthly_yuan(self) -> Decimal:
        return sum((r.monthly_yuan for r in self.rows), ZERO)

    def by_department(self) -> list[tuple[str, str, str, Decimal]]:
        totals: dict[str, tuple[str, str, Decimal]] = {}
        for r in self.rows:
            zh, en, value = totals.get(r.department_key, (r.department_name_zh, r.department_name_en, ZERO))
            totals[r.department_key] = (zh, en, value + r.monthly_yuan)
        return sorted(((k, zh, en, v) for k, (zh, en, v) in totals.items()), key=lambda t: (-t[3], t[0]))


def _core_rates(session: Session) -> dict[int, Decimal]:
    """Per cloud: the mean monthly price of one vCPU over its offered flavors."""
    rates: dict[int, list[Decimal]] = {}
    for item in session.scalars(
        select(CatalogItem).where(
            CatalogItem.kind == ItemKind.FLAVOR.value, CatalogItem.offered.is_(True), CatalogItem.vcpus > 0
        )
    ):
        rates.setdefault(item.cloud_id, []).append(item.monthly_price / item.vcpus)
    return {cloud_id: sum(values, Decimal(0)) / len(values) for cloud_id, values in rates.items()}


def showback(session: Session, actor: Actor, *, department_id: int | None = None) -> Showback:
    """The monthly cost per department and cloud now (department users: their own only)."""
    if actor.is_department:
        department_id = actor.department_id
    rows: dict[tuple[int, int], ShowbackRow] = {}
    departments = {d.id: d for d in session.scalars(select(Department))}
    clouds = {c.id: c for c in session.scalars(select(Cloud))}

    def row(dept_id: int, cloud_id: int) -> ShowbackRow:
        found = rows.get((dept_id, cloud_id))
        if found is None:
            d, c = departments[dept_id], clouds[cloud_id]
            found = rows[(dept_id, cloud_id)] = ShowbackRow(d.key, d.name_zh, d.name_en, c.key, c.name_zh, c.name_en)
        return found

    servers = (
        select(
            ManagedServer.department_id,
            ManagedServer.cloud_id,
            func.count(ManagedServer.id),
            func.sum(ManagedServer.vcpus),
            func.sum(ManagedServer.ram_mb),
            func.sum(CatalogItem.monthly_price),
        )
        .join(CatalogItem, CatalogItem.id == ManagedServer.flavor_item_id)
        .where(ManagedServer.state.in_(BILLED_STATES))
        .group_by(ManagedServer.department_id, ManagedServer.cloud_id)
    )
    ledger = select(QuotaLedgerRow).where(QuotaLedgerRow.used > 0)
    if department_id is not None:
        servers = servers.where(ManagedServer.department_id == department_id)
        ledger = ledger.where(QuotaLedgerRow.department_id == department_id)
    for dept_id, cloud_id, count, vcpus, ram, price in session.execute(servers):
        r = row(dept_id, cloud_id)
        r.servers, r.server_vcpus, r.server_ram_mb = int(count), int(vcpus or 0), int(ram or 0)
        r.servers_yuan = Decimal(price or 0).quantize(CENT)
    for ledger_row in session.scalars(ledger):
        r = row(ledger_row.department_id, ledger_row.cloud_id)
        if ledger_row.resource == "cores":
            r.ledger_cores = ledger_row.used
        elif ledger_row.resource == "ram_mb":
            r.ledger_ram_mb = ledger_row.used
        elif ledger_row.resource == "instances":
            r.ledger_instances = ledger_row.used
    core_rates = _core_rates(session)
    cloud_ids = {c.key: cid for cid, c in clouds.items()}
    for r in rows.values():
        r.unattributed_cores = max(r.ledger_cores - r.server_vcpus, 0)
        rate = core_rates.get(cloud_ids[r.cloud_key], ZERO)
        r.unattributed_yuan = (rate * r.unattributed_cores).quantize(CENT)
    ordered = sorted(rows.values(), key=lambda r: (r.department_key, r.cloud_key))
    return Showback(rows=ordered)


SHOWBACK_HEADER = (
    "department",
    "department_name",
    "cloud",
    "servers",
    "server_vcpus",
    "server_ram_gb",
    "servers_yuan",
    "ledger_cores",
    "ledger_ram_gb",
    "ledger_instances",
    "unattributed_cores",
    "unattributed_yuan",
    "monthly_yuan",
)


def showback_csv(report: Showback) -> str:
    return exports.csv_text(
        SHOWBACK_HEADER,
        (
            (
                r.department_key,
                r.department_name_zh,
                r.cloud_key,
                r.servers,
                r.server_vcpus,
                round(r.server_ram_mb / 1024, 2),
                r.servers_yuan,
                r.ledger_cores,
                round(r.ledger_ram_mb / 1024, 2),
                r.ledger_instances,
                r.unattributed_cores,
                r.unattributed_yuan,
                r.monthly_yuan,
            )
            for r in report.rows
        ),
    )
