"""The ledger and the clouds: push limits to a project, reconcile usage and drift.

Job-shaped: these functions take the database and open their own short units of work,
talking to the clouds only between them, never inside a transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError
from cloudmgr.cloud.reachability import is_unreachable
from cloudmgr.db import Database, utcnow
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import DepartmentCloud
from cloudmgr.providers import ProviderRegistry
from cloudmgr.quotas import ledger
from cloudmgr.quotas.models import QuotaDrift, QuotaLedgerRow
from cloudmgr.quotas.resources import Limits, Resource, limits_of, limits_to_json, not_on_cloud, quota_set_with

RECONCILE_ACTOR = Actor.system("quotas.reconcile")

log = logging.getLogger(__name__)


def push_limits_to_cloud(
    db: Database, registry: ProviderRegistry, department_id: int, cloud_id: int, limits: Limits, *, actor: Actor
) -> str | None:
    """Set the project's quota on the cloud to ``limits``; returns an error message or None.

    Runs outside any transaction (it talks to the cloud), then records the outcome.
    """
    with db.unit_of_work() as uow:
        link = uow.session.scalar(
            select(DepartmentCloud)
            .where(DepartmentCloud.department_id == department_id, DepartmentCloud.cloud_id == cloud_id)
            .options(selectinload(DepartmentCloud.cloud), selectinload(DepartmentCloud.department))
        )
        if link is None or not link.project_id:
            return "no project on the cloud yet (run `cloudmgr clouds sync`)"
        cloud_key, os_cloud, region = link.cloud.key, link.cloud.os_cloud, link.cloud.region
        project_id, dept_key = link.project_id, link.department.key
    try:
        provider = registry.for_cloud(cloud_key, os_cloud, region)
        current = provider.get_quota(project_id)
        provider.set_quota(project_id, quota_set_with(current, limits))
        absent = not_on_cloud(current, limits)
    except CloudError as exc:
        with db.unit_of_work() as uow:
            audit.record(
                uow.session,
                actor=actor.username,
                action="quota.cloud.set_failed",
                target_type="quota",
                target_id=f"{dept_key}/{cloud_key}",
                reason=str(exc),
                detail={"to": limits_to_json(limits)},
            )
        return str(exc)
    with db.unit_of_work() as uow:
        for row in uow.session.scalars(
            select(QuotaLedgerRow).where(
                QuotaLedgerRow.department_id == department_id, QuotaLedgerRow.cloud_id == cloud_id
            )
        ):
            resource = Resource(row.resource)
            if resource in absent:
                # The cloud was read and has no such quota: nothing was set (see ResourceBalance.on_cloud).
                row.cloud_limit = None
                row.reconciled_at = utcnow()
            elif resource in limits:
                row.cloud_limit = limits[resource]
        detail: dict[str, object] = {"from": limits_to_json(limits_of(current)), "to": limits_to_json(limits)}
        if absent:
            # Said, not swallowed: these limits bind nothing on this cloud.
            names = [r.value for r in absent]
            detail["not_on_cloud"] = names
            log.warning("%s on %s: the cloud has no quota for %s", dept_key, cloud_key, ", ".join(names))
        audit.record(
            uow.session,
            actor=actor.username,
            action="quota.cloud.set",
            target_type="quota",
            target_id=f"{dept_key}/{cloud_key}",
            detail=detail,
        )
    return None


# --- reconcile and drift ---------------------------------------------------------------------


@dataclass
class ReconcileResult:
    checked: int = 0
    drifts: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Project:
    """A department's project on a cloud whose quota the ledger holds."""

    department_id: int
    cloud_id: int
    department_key: str
    cloud_key: str
    os_cloud: str
    region: str | None
    drift_policy: str
    project_id: str

    @property
    def where(self) -> str:
        return f"{self.department_key} on {self.cloud_key}"


def _projects_in_ledger(db: Database) -> list[_Project]:
    with db.unit_of_work() as uow:
        session = uow.session
        return [
            _Project(
                link.department_id,
                link.cloud_id,
                link.department.key,
                link.cloud.key,
                link.cloud.os_cloud,
                link.cloud.region,
                link.cloud.quota_drift_policy,
                link.project_id,
            )
            for link in session.scalars(
                select(DepartmentCloud)
                .where(DepartmentCloud.project_id.is_not(None))
                .options(selectinload(DepartmentCloud.cloud), selectinload(DepartmentCloud.department))
            )
            if link.project_id
            and session.scalar(
                select(func.count()).where(
                    QuotaLedgerRow.department_id == link.department_id, QuotaLedgerRow.cloud_id == link.cloud_id
                )
            )
        ]


def _open_drifts_of(session: Session, project: _Project) -> Sequence[QuotaDrift]:
    return session.scalars(
        select(QuotaDrift).where(
            QuotaDrift.department_id == project.department_id,
            QuotaDrift.cloud_id == project.cloud_id,
            QuotaDrift.resolved_at.is_(None),
        )
    ).all()


def _record_cloud_state(
    session: Session,
    project: _Project,
    cloud_limits: Limits,
    cloud_used: Mapping[Resource, int],
    actor: Actor,
    result: ReconcileResult,
) -> Limits | None:
    """Usage follows the cloud; a limit changed behind cloudmgr's back is drift, recorded and
    audited.  Returns the ledger's limits when the cloud's policy is to repair the drift."""
    rows = ledger.ensure_rows(session, project.department_id, project.cloud_id)
    now = utcnow()
    drifted: Limits = {}
    for resource, row in rows.items():
        row.reconciled_at = now
        if resource in cloud_used:
            row.cloud_used = cloud_used[resource]
            # The cloud is the truth of what runs; the ledger follows it.
            row.used = cloud_used[resource]
        if resource not in cloud_limits:
            # No such quota on this cloud (Cinder's, where it has no Cinder): nothing there
            # can drift; None after a reconcile says "not on the cloud", not "never read".
            row.cloud_limit = None
            continue
        row.cloud_limit = cloud_limits[resource]
        if cloud_limits[resource] != row.limit:
            drifted[resource] = cloud_limits[resource]
    open_drifts = {d.resource: d for d in _open_drifts_of(session, project)}
    for resource_name, drift in open_drifts.items():
        if Resource(resource_name) not in drifted:
            drift.resolved_at = now
    action = "repaired" if project.drift_policy == "repair" else "alerted"
    for resource, found in drifted.items():
        existing = open_drifts.get(resource.value)
        if existing is not None and existing.found == found and action == "alerted":
            continue  # already reported, nothing new
        expected = rows[resource].limit
        if existing is not None:
            existing.resolved_at = now
        session.add(
            QuotaDrift(
                department_id=project.department_id,
                cloud_id=project.cloud_id,
                resource=resource.value,
                expected=expected,
                found=found,
                action=action,
                detected_at=now,
            )
        )
        result.drifts.append(f"{project.where}: {resource.value} is {found} on the cloud, ledger says {expected}")
        audit.record(
            session,
            actor=actor.username,
            action=f"quota.drift.{action}",
            target_type="quota",
            target_id=f"{project.department_key}/{project.cloud_key}",
            detail={"resource": resource.value, "expected": expected, "found": found},
        )
    if drifted and project.drift_policy == "repair":
        return {r: row.limit for r, row in rows.items()}
    return None


def _repair(
    db: Database, registry: ProviderRegistry, project: _Project, limits: Limits, actor: Actor, result: ReconcileResult
) -> None:
    error = push_limits_to_cloud(db, registry, project.department_id, project.cloud_id, limits, actor=actor)
    if error:
        result.problems.append(f"{project.where}: repair failed: {error}")
        return
    result.repaired.append(project.where)
    with db.unit_of_work() as uow:
        for drift in _open_drifts_of(uow.session, project):
            drift.resolved_at = utcnow()


def reconcile(db: Database, registry: ProviderRegistry, *, actor: Actor = RECONCILE_ACTOR) -> ReconcileResult:
    """Read every project's limits and usage from its cloud, record usage and drift, repair by policy."""
    result = ReconcileResult()
    # A cloud found unreachable is not asked again for its other projects in this run: each
    # would wait out the same retries while the other clouds' projects wait behind it.
    unreachable: set[str] = set()
    for project in _projects_in_ledger(db):
        if project.cloud_key in unreachable:
            result.problems.append(f"{project.where}: cloud {project.cloud_key} unreachable, not checked")
            continue
        try:
            provider = registry.for_cloud(project.cloud_key, project.os_cloud, project.region)
            cloud_limits = limits_of(provider.get_quota(project.project_id))
            usage = provider.get_compute_usage(project.project_id)
        except CloudError as exc:
            result.problems.append(f"{project.where}: {exc}")
            if is_unreachable(exc):
                unreachable.add(project.cloud_key)
            continue
        cloud_used = {Resource.CORES: usage.cores, Resource.RAM_MB: usage.ram_mb, Resource.INSTANCES: usage.instances}
        result.checked += 1
        with db.unit_of_work() as uow:
            repair = _record_cloud_state(uow.session, project, cloud_limits, cloud_used, actor, result)
        if repair is not None:
            _repair(db, registry, project, repair, actor, result)
    return result


def open_drifts(session: Session) -> Sequence[QuotaDrift]:
    return session.scalars(
        select(QuotaDrift)
        .where(QuotaDrift.resolved_at.is_(None))
        .options(selectinload(QuotaDrift.department), selectinload(QuotaDrift.cloud))
        .order_by(QuotaDrift.detected_at.desc())
    ).all()


def recent_drifts(session: Session, limit: int = 100) -> Sequence[QuotaDrift]:
    return session.scalars(
        select(QuotaDrift)
        .options(selectinload(QuotaDrift.department), selectinload(QuotaDrift.cloud))
        .order_by(QuotaDrift.id.desc())
        .limit(limit)
    ).all()
