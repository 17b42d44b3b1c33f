"""The ledger's operations: reserve, consume, release, and read.

A reservation is one conditional ``UPDATE … SET reserved = reserved + n WHERE used +
reserved + n <= limit`` per resource, in a fixed resource order, inside the caller's unit
of work.  The database evaluates the condition against the committed row under its row
lock (PostgreSQL) or the database write lock (SQLite, ``BEGIN IMMEDIATE``), so twenty
concurrent requests for the last free unit give exactly one success.  When any resource
does not fit the caller's transaction rolls back and nothing stays reserved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from cloudmgr.db import utcnow
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.models import Cloud, Department
from cloudmgr.quotas.errors import NoQuota, QuotaBelowUsage, QuotaExceeded, ReservationNotFound
from cloudmgr.quotas.models import QuotaLedgerRow, QuotaReservation, ReservationState
from cloudmgr.quotas.resources import RESOURCES, Resource

# The resources as words in a refusal (translated where it is shown), in the ledger's units.
LIMIT_WORDS: dict[Resource, str] = {
    Resource.CORES: N_("vCPU cores"),
    Resource.RAM_MB: N_("memory (MB)"),
    Resource.INSTANCES: N_("servers"),
    Resource.NETWORKS: N_("networks"),
    Resource.FLOATING_IPS: N_("floating IPs"),
    Resource.VOLUMES: N_("volumes"),
    Resource.GIGABYTES: N_("volume storage (GB)"),
    Resource.SNAPSHOTS: N_("snapshots"),
    Resource.BACKUPS: N_("backups"),
    Resource.SECURITY_GROUPS: N_("security groups"),
    Resource.SECURITY_GROUP_RULES: N_("security group rules"),
}


class ResourceBalance(NamedTuple):
    """One resource of a balance.  A named tuple, not a frozen dataclass: the quota overview
    makes one for every department × cloud × resource row on each call, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` a field) costs three times as much."""

    resource: Resource
    limit: int
    reserved: int
    used: int
    cloud_limit: int | None
    cloud_used: int | None
    # False when the cloud was read and has no quota for this resource at all (Cinder's,
    # on a cloud without Cinder): the limit binds nothing there.
    on_cloud: bool = True

    @property
    def free(self) -> int:
        return max(self.limit - self.reserved - self.used, 0)

    @property
    def fill_ratio(self) -> float:
        taken = self.used + self.reserved
        return taken / self.limit if self.limit else (1.0 if taken else 0.0)

    @property
    def drifted(self) -> bool:
        return self.cloud_limit is not None and self.cloud_limit != self.limit


@dataclass(frozen=True)
class Balance:
    department_id: int
    department_key: str
    cloud_id: int
    cloud_key: str
    resources: Mapping[Resource, ResourceBalance]

    @property
    def near_full(self) -> bool:
        return any(r.fill_ratio > 0.9 for r in self.resources.values())

    @property
    def drifted(self) -> bool:
        return any(r.drifted for r in self.resources.values())


def _rows(session: Session, department_id: int, cloud_id: int) -> dict[Resource, QuotaLedgerRow]:
    rows = session.scalars(
        select(QuotaLedgerRow).where(QuotaLedgerRow.department_id == department_id, QuotaLedgerRow.cloud_id == cloud_id)
    )
    return {Resource(r.resource): r for r in rows}


def ensure_rows(session: Session, department_id: int, cloud_id: int) -> dict[Resource, QuotaLedgerRow]:
    rows = _rows(session, department_id, cloud_id)
    for resource in RESOURCES:
        if resource not in rows:
            row = QuotaLedgerRow(
                department_id=department_id, cloud_id=cloud_id, resource=resource.value, limit=0, reserved=0, used=0
            )
            session.add(row)
            rows[resource] = row
    session.flush()
    return rows


def set_limits(session: Session, department_id: int, cloud_id: int, limits: Mapping[Resource, int]) -> None:
    """New limits for a department on a cloud; never below what is used or reserved."""
    rows = ensure_rows(session, department_id, cloud_id)
    for resource, value in limits.items():
        row = rows[resource]
        if value < row.used + row.reserved:
            raise QuotaBelowUsage(
                message(
                    N_(
                        "the limit of %(resource)s cannot be lowered to %(value)s: "
                        "%(used)s used and %(reserved)s reserved"
                    ),
                    resource=Message(LIMIT_WORDS.get(resource, resource.value)),
                    value=value,
                    used=row.used,
                    reserved=row.reserved,
                )
            )
        row.limit = value


def reserve(
    session: Session,
    *,
    department_id: int,
    cloud_id: int,
    amounts: Mapping[Resource, int],
    owner: str,
) -> QuotaReservation:
    """Hold ``amounts`` for ``owner``; raises QuotaExceeded (naming the resource, limit and free amount)."""
    wanted = {r: int(n) for r, n in amounts.items() if n}
    if any(n < 0 for n in wanted.values()):
        raise ValueError("reservation amounts must not be negative")
    for resource in RESOURCES:  # fixed order: no deadlocks between concurrent reservations
        n = wanted.get(resource)
        if not n:
            continue
        result = session.execute(
            update(QuotaLedgerRow)
            .where(
                QuotaLedgerRow.department_id == department_id,
                QuotaLedgerRow.cloud_id == cloud_id,
                QuotaLedgerRow.resource == resource.value,
                QuotaLedgerRow.used + QuotaLedgerRow.reserved + n <= QuotaLedgerRow.limit,
            )
            .values(reserved=QuotaLedgerRow.reserved + n)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            _raise_exceeded(session, department_id, cloud_id, resource, n)
    reservation = QuotaReservation(
        department_id=department_id,
        cloud_id=cloud_id,
        owner=owner,
        amounts={r.value: n for r, n in wanted.items()},
        state=ReservationState.HELD.value,
    )
    session.add(reservation)
    session.flush()
    return reservation


def _raise_exceeded(session: Session, department_id: int, cloud_id: int, resource: Resource, asked: int) -> None:
    row = session.scalar(
        select(QuotaLedgerRow)
        .where(
            QuotaLedgerRow.department_id == department_id,
            QuotaLedgerRow.cloud_id == cloud_id,
            QuotaLedgerRow.resource == resource.value,
        )
        .execution_options(populate_existing=True)
    )
    dept = session.get(Department, department_id)
    cloud = session.get(Cloud, cloud_id)
    dept_key = dept.key if dept else str(department_id)
    cloud_key = cloud.key if cloud else str(cloud_id)
    if row is None:
        raise NoQuota(
            message(
                N_("%(department)s has no quota on %(cloud)s"),
                department=dept_key,
                cloud=cloud_key,
            )
        )
    raise QuotaExceeded(
        department=dept_key,
        cloud=cloud_key,
        resource=resource.value,
        limit=row.limit,
        free=max(row.limit - row.used - row.reserved, 0),
        asked=asked,
    )


def _end(session: Session, reservation_id: int, state: ReservationState, reason: str) -> QuotaReservation | None:
    # Flip the state with a conditional UPDATE first: only one caller can end a
    # reservation, so a retried release or a racing consume never counts twice.
    ended = session.execute(
        update(QuotaReservation)
        .where(QuotaReservation.id == reservation_id, QuotaReservation.state == ReservationState.HELD.value)
        .values(state=state.value, ended_at=utcnow(), end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    reservation = session.get(QuotaReservation, reservation_id, populate_existing=True)
    if reservation is None:
        raise ReservationNotFound(message(N_("no quota reservation %(id)s"), id=reservation_id))
    if ended.rowcount != 1:  # type: ignore[attr-defined]
        return None
    for resource_name, n in reservation.amounts.items():
        values: dict[str, object] = {"reserved": QuotaLedgerRow.reserved - n}
        if state == ReservationState.CONSUMED:
            values["used"] = QuotaLedgerRow.used + n
        session.execute(
            update(QuotaLedgerRow)
            .where(
                QuotaLedgerRow.department_id == reservation.department_id,
                QuotaLedgerRow.cloud_id == reservation.cloud_id,
                QuotaLedgerRow.resource == resource_name,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return reservation


def release(session: Session, reservation_id: int, *, reason: str) -> bool:
    """Give the held resources back.  Idempotent: False when it was already ended."""
    return _end(session, reservation_id, ReservationState.RELEASED, reason) is not None


def consume(session: Session, reservation_id: int, *, reason: str = "provisioned") -> bool:
    """Turn the held resources into usage.  Idempotent: False when it was already ended."""
    return _end(session, reservation_id, ReservationState.CONSUMED, reason) is not None


def give_back_usage(session: Session, *, department_id: int, cloud_id: int, amounts: Mapping[Resource, int]) -> None:
    """Usage that ended (a deleted VM): lower ``used``, never below zero."""
    for resource, n in amounts.items():
        row = session.scalar(
            select(QuotaLedgerRow).where(
                QuotaLedgerRow.department_id == department_id,
                QuotaLedgerRow.cloud_id == cloud_id,
                QuotaLedgerRow.resource == resource.value,
            )
        )
        if row is not None:
            row.used = max(row.used - n, 0)


def balance(session: Session, department_id: int, cloud_id: int) -> Balance:
    rows = _rows(session, department_id, cloud_id)
    dept = session.get(Department, department_id)
    cloud = session.get(Cloud, cloud_id)
    if not rows or dept is None or cloud is None:
        raise NoQuota(Message(N_("no quota for this department on this cloud")))
    return _balance(dept, cloud, rows)


_RESOURCE_BY_VALUE: dict[str, Resource] = {r.value: r for r in Resource}
_RESOURCE_ORDER: dict[Resource, int] = {r: i for i, r in enumerate(RESOURCES)}


def _on_cloud(cloud_limit: int | None, reconciled_at: datetime | None) -> bool:
    # Read from the cloud (reconciled_at set) yet no limit there: the cloud has no such quota.
    return not (reconciled_at is not None and cloud_limit is None)


def _balance(dept: Department, cloud: Cloud, rows: Mapping[Resource, QuotaLedgerRow]) -> Balance:
    return Balance(
        department_id=dept.id,
        department_key=dept.key,
        cloud_id=cloud.id,
        cloud_key=cloud.key,
        resources={
            r: ResourceBalance(
                r,
                row.limit,
                row.reserved,
                row.used,
                row.cloud_limit,
                row.cloud_used,
                _on_cloud(row.cloud_limit, row.reconciled_at),
            )
            for r, row in sorted(rows.items(), key=lambda item: RESOURCES.index(item[0]))
        },
    )


_ledger = QuotaLedgerRow.__table__.c
_BALANCE_COLUMNS = select(
    _ledger.department_id,
    _ledger.cloud_id,
    _ledger.resource,
    _ledger.limit,
    _ledger.reserved,
    _ledger.used,
    _ledger.cloud_limit,
    _ledger.cloud_used,
    _ledger.reconciled_at.is_not(None),  # whether, not when: spares a timestamp's conversion a row
    Department.__table__.c.key,
    Cloud.__table__.c.key,
).select_from(
    QuotaLedgerRow.__table__.join(Department.__table__, Department.__table__.c.id == _ledger.department_id).join(
        Cloud.__table__, Cloud.__table__.c.id == _ledger.cloud_id
    )
)
# Grouped by the database (a pair's rows together); the pairs are sorted by their keys in Python,
# as Python compares them (a database's collation may not).
_ALL_BALANCES = _BALANCE_COLUMNS.order_by(_ledger.department_id, _ledger.cloud_id)
_DEPARTMENT_BALANCES = _BALANCE_COLUMNS.where(_ledger.department_id == bindparam("department_id")).order_by(
    _ledger.department_id, _ledger.cloud_id
)


def all_balances(session: Session, *, department_id: int | None = None) -> Sequence[Balance]:
    # The quota overview reads every department × cloud × resource row (hundreds) on each call:
    # its statement is built once (building one anew costs more than running it) and reads the
    # table's columns, not ORM entities or attributes, so no ORM object or row bookkeeping is made
    # for a row.  Such a statement does not autoflush: the session's pending changes (a service
    # that changed a limit, then reads the balances) are flushed first, as the ORM would.
    if session.autoflush:
        session.flush()
    if department_id is None:
        result = session.execute(_ALL_BALANCES)
    else:
        result = session.execute(_DEPARTMENT_BALANCES, {"department_id": department_id})
    groups: list[tuple[int, str, int, str, dict[Resource, ResourceBalance]]] = []
    last_dept = last_cloud = None
    resources: dict[Resource, ResourceBalance] = {}
    by_value = _RESOURCE_BY_VALUE
    for (
        dept_id,
        cloud_id,
        value,
        limit,
        reserved,
        used,
        cloud_limit,
        cloud_used,
        reconciled,
        dept_key,
        cloud_key,
    ) in result.tuples():
        if cloud_id != last_cloud or dept_id != last_dept:
            last_dept, last_cloud, resources = dept_id, cloud_id, {}
            groups.append((dept_id, dept_key, cloud_id, cloud_key, resources))
        resource = by_value[value]
        resources[resource] = ResourceBalance(
            resource,
            limit,
            reserved,
            used,
            cloud_limit,
            cloud_used,
            not (reconciled and cloud_limit is None),  # _on_cloud, inline: per row
        )
    order = _RESOURCE_ORDER.__getitem__
    balances = [
        Balance(dept_id, dept_key, cloud_id, cloud_key, {r: resources[r] for r in sorted(resources, key=order)})
        for dept_id, dept_key, cloud_id, cloud_key, resources in groups
    ]
    balances.sort(key=lambda b: (b.department_key, b.cloud_key))
    return balances
