"""Showback: what each department's cloud usage costs per month at the catalog's rates.

Per department and cloud: the servers cloudmgr manages, priced at their flavor's monthly
rate; their data volumes while they exist (attached, or kept after their server), each GB
at its volume type's catalog price per GB-month; the public addresses the department
holds, at the cloud's address item's monthly price (the same prices the request's quote
uses, :meth:`cloudmgr.servicerequests.quoting.ValidRequest.cost_lines`); the ledger's usage
(cores, RAM, instances) beside it, and the cores the ledger counts that no managed server
explains (usage found on the cloud by the reconcile job) priced at the cloud's mean catalog
rate per vCPU; and the volume backups the backup store holds for it, each GB at the rates
file's ``backup_gb`` (backups are no catalog item: nobody orders one, so no quote shows them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudmgr import exports
from cloudmgr.backups.models import CopyState, VolumeBackupRecord
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.catalog.services import read_rates
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department
from cloudmgr.quotas.models import QuotaLedgerRow
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState

BILLED_STATES = ("active", "stopped", "building")
# A volume costs while it exists on the cloud: from the moment the cloud accepted it (its id is
# known) until it is deleted, attached or not (a volume kept after its server was deleted, or
# one whose attach failed, still takes storage).  Said by exclusion so that a state added for a
# change in progress (a detach, an extension) is billed too.
UNBILLED_VOLUME_STATES = (VolumeState.DELETED,)
# An address costs while the department's project holds it (its id is known), on a server or
# not, until it is released.
UNBILLED_ADDRESS_STATES = (AddressState.RELEASED,)
# A backup costs while the backup store holds it: made (its id known) until it is deleted; a
# failed one gave its quota back and is not counted.
UNBILLED_BACKUP_STATES = (CopyState.PENDING, CopyState.FAILED, CopyState.DELETED)
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
    volumes: int = 0
    volume_gb: int = 0
    volumes_yuan: Decimal = ZERO
    addresses: int = 0
    addresses_yuan: Decimal = ZERO
    backups: int = 0
    backup_gb: int = 0
    backups_yuan: Decimal = ZERO
    ledger_cores: int = 0
    ledger_ram_mb: int = 0
    ledger_instances: int = 0
    unattributed_cores: int = 0
    unattributed_yuan: Decimal = ZERO

    @property
    def monthly_yuan(self) -> Decimal:
        lines = (self.servers_yuan, self.volumes_yuan, self.addresses_yuan, self.backups_yuan, self.unattributed_yuan)
        return sum(lines, ZERO).quantize(CENT)


@dataclass
class DepartmentTotal:
    """One department's lines summed over its clouds."""

    department_key: str
    department_name_zh: str
    department_name_en: str
    servers_yuan: Decimal = ZERO
    volumes_yuan: Decimal = ZERO
    addresses_yuan: Decimal = ZERO
    backups_yuan: Decimal = ZERO
    unattributed_yuan: Decimal = ZERO
    monthly_yuan: Decimal = ZERO


@dataclass
class Showback:
    rows: list[ShowbackRow] = field(default_factory=list)
    # The price per backup GB-month the backups were priced at; None: the rates file names
    # none, and the backups are shown without a price.
    backup_gb_price: Decimal | None = None

    @property
    def monthly_yuan(self) -> Decimal:
        return sum((r.monthly_yuan for r in self.rows), ZERO)

    @property
    def servers_yuan(self) -> Decimal:
        return sum((r.servers_yuan for r in self.rows), ZERO)

    @property
    def volumes_yuan(self) -> Decimal:
        return sum((r.volumes_yuan for r in self.rows), ZERO)

    @property
    def addresses_yuan(self) -> Decimal:
        return sum((r.addresses_yuan for r in self.rows), ZERO)

    @property
    def backups_yuan(self) -> Decimal:
        return sum((r.backups_yuan for r in self.rows), ZERO)

    @property
    def unattributed_yuan(self) -> Decimal:
        return sum((r.unattributed_yuan for r in self.rows), ZERO)

    def by_department(self) -> list[DepartmentTotal]:
        """Each department's lines over its clouds, the most expensive first."""
        totals: dict[str, DepartmentTotal] = {}
        for r in self.rows:
            t = totals.get(r.department_key)
            if t is None:
                t = totals[r.department_key] = DepartmentTotal(
                    r.department_key, r.department_name_zh, r.department_name_en
                )
            t.servers_yuan += r.servers_yuan
            t.volumes_yuan += r.volumes_yuan
            t.addresses_yuan += r.addresses_yuan
            t.backups_yuan += r.backups_yuan
            t.unattributed_yuan += r.unattributed_yuan
            t.monthly_yuan += r.monthly_yuan
        return sorted(totals.values(), key=lambda t: (-t.monthly_yuan, t.department_key))


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


def _catalog_prices(session: Session, kind: ItemKind) -> dict[tuple[int, str], Decimal]:
    """Per (cloud, cloud name): the catalog's monthly price of that item.  An item no longer
    offered still prices what was made while it was (the volume or address still costs); when
    a cloud lists two items under one name, the offered one wins."""
    prices: dict[tuple[int, str], Decimal] = {}
    items = session.scalars(select(CatalogItem).where(CatalogItem.kind == kind.value).order_by(CatalogItem.id))
    for item in sorted(items, key=lambda i: (i.offered and i.available, i.id)):
        prices[(item.cloud_id, item.cloud_name)] = item.monthly_price
    return prices


def _address_prices(session: Session) -> dict[int, Decimal]:
    """Per cloud: the monthly price of one public address (its address item; the offered one
    when there are several, as the quote picks it)."""
    return {cloud_id: price for (cloud_id, _name), price in _catalog_prices(session, ItemKind.FLOATING_IP).items()}


@dataclass(frozen=True)
class BackupUsage:
    """The backups the backup store holds for one department on one cloud."""

    department_id: int
    cloud_id: int
    backups: int
    size_gb: int


def backup_usage(session: Session, department_id: int | None = None) -> list[BackupUsage]:
    """Per department and cloud: the volume backups that cost (see UNBILLED_BACKUP_STATES)."""
    query = (
        select(
            VolumeBackupRecord.department_id,
            VolumeBackupRecord.cloud_id,
            func.count(VolumeBackupRecord.id),
            func.sum(VolumeBackupRecord.size_gb),
        )
        .where(VolumeBackupRecord.backup_id.is_not(None), VolumeBackupRecord.state.not_in(UNBILLED_BACKUP_STATES))
        .group_by(VolumeBackupRecord.department_id, VolumeBackupRecord.cloud_id)
    )
    if department_id is not None:
        query = query.where(VolumeBackupRecord.department_id == department_id)
    return [BackupUsage(d, c, int(n), int(gb or 0)) for d, c, n, gb in session.execute(query)]


def backup_rate(rates_file: Path) -> Decimal | None:
    """The price per backup GB-month the rates file names (None: none)."""
    return read_rates(rates_file).backup_gb


def showback(
    session: Session, actor: Actor, *, department_id: int | None = None, backup_gb_price: Decimal | None = None
) -> Showback:
    """The monthly cost per department and cloud now (department users: their own only).
    ``backup_gb_price``: the rates file's (:func:`backup_rate`); without it backups are counted
    at no price."""
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
    volumes = (
        select(
            ManagedVolume.department_id,
            ManagedVolume.cloud_id,
            ManagedVolume.volume_type,
            func.count(ManagedVolume.id),
            func.sum(ManagedVolume.size_gb),
        )
        .where(ManagedVolume.volume_id.is_not(None), ManagedVolume.state.not_in(UNBILLED_VOLUME_STATES))
        .group_by(ManagedVolume.department_id, ManagedVolume.cloud_id, ManagedVolume.volume_type)
    )
    # Whose an address is: its own department and cloud (an adopted address has no server), else
    # its server's (a row from before revision 0023 filled them).
    address_department = func.coalesce(ManagedAddress.department_id, ManagedServer.department_id)
    address_cloud = func.coalesce(ManagedAddress.cloud_id, ManagedServer.cloud_id)
    addresses = (
        select(address_department, address_cloud, func.count(ManagedAddress.id))
        .outerjoin(ManagedServer, ManagedServer.id == ManagedAddress.server_id)
        .where(ManagedAddress.floating_ip_id.is_not(None), ManagedAddress.state.not_in(UNBILLED_ADDRESS_STATES))
        .group_by(address_department, address_cloud)
    )
    ledger = select(QuotaLedgerRow).where(QuotaLedgerRow.used > 0)
    if department_id is not None:
        servers = servers.where(ManagedServer.department_id == department_id)
        volumes = volumes.where(ManagedVolume.department_id == department_id)
        addresses = addresses.where(address_department == department_id)
        ledger = ledger.where(QuotaLedgerRow.department_id == department_id)
    for dept_id, cloud_id, count, vcpus, ram, price in session.execute(servers):
        r = row(dept_id, cloud_id)
        r.servers, r.server_vcpus, r.server_ram_mb = int(count), int(vcpus or 0), int(ram or 0)
        r.servers_yuan = Decimal(price or 0).quantize(CENT)
    # Priced in Python, not summed as GB x price in SQL: SQLite would multiply in floating point.
    # A volume of the cloud's default type (no name) or of a type the catalog does not know
    # counts its GB at no price.
    volume_prices = _catalog_prices(session, ItemKind.VOLUME_TYPE)
    for dept_id, cloud_id, volume_type, count, size_gb in session.execute(volumes):
        r = row(dept_id, cloud_id)
        gb = int(size_gb or 0)
        r.volumes += int(count)
        r.volume_gb += gb
        per_gb = volume_prices.get((cloud_id, volume_type), ZERO) if volume_type else ZERO
        r.volumes_yuan = (r.volumes_yuan + per_gb * gb).quantize(CENT)
    address_prices = _address_prices(session)
    for dept_id, cloud_id, count in session.execute(addresses):
        r = row(dept_id, cloud_id)
        r.addresses = int(count)
        r.addresses_yuan = (address_prices.get(cloud_id, ZERO) * r.addresses).quantize(CENT)
    for ledger_row in session.scalars(ledger):
        r = row(ledger_row.department_id, ledger_row.cloud_id)
        if ledger_row.resource == "cores":
            r.ledger_cores = ledger_row.used
        elif ledger_row.resource == "ram_mb":
            r.ledger_ram_mb = ledger_row.used
        elif ledger_row.resource == "instances":
            r.ledger_instances = ledger_row.used
    for usage in backup_usage(session, department_id):
        r = row(usage.department_id, usage.cloud_id)
        r.backups, r.backup_gb = usage.backups, usage.size_gb
        r.backups_yuan = ((backup_gb_price or ZERO) * usage.size_gb).quantize(CENT)
    core_rates = _core_rates(session)
    cloud_ids = {c.key: cid for cid, c in clouds.items()}
    for r in rows.values():
        r.unattributed_cores = max(r.ledger_cores - r.server_vcpus, 0)
        rate = core_rates.get(cloud_ids[r.cloud_key], ZERO)
        r.unattributed_yuan = (rate * r.unattributed_cores).quantize(CENT)
    ordered = sorted(rows.values(), key=lambda r: (r.department_key, r.cloud_key))
    return Showback(rows=ordered, backup_gb_price=backup_gb_price)


SHOWBACK_HEADER = (
    "department",
    "department_name",
    "cloud",
    "servers",
    "server_vcpus",
    "server_ram_gb",
    "servers_yuan",
    "volumes",
    "volume_gb",
    "volumes_yuan",
    "addresses",
    "addresses_yuan",
    "backups",
    "backup_gb",
    "backups_yuan",
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
                r.volumes,
                r.volume_gb,
                r.volumes_yuan,
                r.addresses,
                r.addresses_yuan,
                r.backups,
                r.backup_gb,
                r.backups_yuan,
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
