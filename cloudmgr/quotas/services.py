"""Quotas as code: check the files, plan and apply them, reconcile with the clouds, change requests."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError
from cloudmgr.db import Database, utcnow
from cloudmgr.organisation.models import Cloud, Department, DepartmentCloud
from cloudmgr.providers import ProviderRegistry
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaBelowUsage, QuotaChangeInvalid, QuotaFilesInvalid
from cloudmgr.quotas.files import QuotaDefinitions as QuotaDefinitions  # re-exported: the web reads them here
from cloudmgr.quotas.files import read_quota_files as read_quota_files
from cloudmgr.quotas.ledger import Balance as Balance  # re-exported: the web reads balances here
from cloudmgr.quotas.ledger import all_balances as all_balances
from cloudmgr.quotas.ledger import balance as balance
from cloudmgr.quotas.models import (
    ChangeRequestState,
    LimitSource,
    QuotaAssignment,
    QuotaChangeRequest,
    QuotaDrift,
    QuotaLedgerRow,
)
from cloudmgr.quotas.resources import FILE_NAMES, RESOURCES, Resource, limits_of, quota_set_with, to_file_value

log = logging.getLogger(__name__)

Limits = dict[Resource, int]

AUTO_APPROVAL_WINDOW = timedelta(days=30)


def _to_json(limits: Limits) -> dict[str, int]:
    return {r.value: v for r, v in limits.items()}


def _from_json(data: dict[str, int]) -> Limits:
    return {Resource(k): int(v) for k, v in data.items()}


def _describe(limits: Limits) -> str:
    return ", ".join(f"{r.value}={limits[r]}" for r in RESOURCES if r in limits)


# --- check ------------------------------------------------------------------------------


def check(session: Session, definitions: QuotaDefinitions) -> list[str]:
    """Problems the files have against the organisation and the ledger, as 'file:line: message'."""
    problems: list[str] = []
    departments = {d.key: d for d in session.scalars(select(Department))}
    clouds = {c.key: c for c in session.scalars(select(Cloud))}
    links = {(link.department_id, link.cloud_id) for link in session.scalars(select(DepartmentCloud))}
    for (dept_key, cloud_key), entry in sorted(definitions.entries.items()):
        where = f"{entry.file}:{entry.line}"
        dept, cloud = departments.get(dept_key), clouds.get(cloud_key)
        if dept is None:
            problems.append(f"{where}: unknown department {dept_key!r}")
        if cloud is None:
            problems.append(f"{where}: unknown cloud {cloud_key!r}")
        if dept is None or cloud is None:
            continue
        if (dept.id, cloud.id) not in links:
            problems.append(
                f"{where}: department {dept_key!r} may not use cloud {cloud_key!r} (see the departments file)"
            )
            continue
        for row in session.scalars(
            select(QuotaLedgerRow).where(QuotaLedgerRow.department_id == dept.id, QuotaLedgerRow.cloud_id == cloud.id)
        ):
            resource = Resource(row.resource)
            taken = max(row.used + row.reserved, row.cloud_used or 0)
            if entry.limits[resource] < taken:
                name = next(k for k, r in FILE_NAMES.items() if r == resource)
                problems.append(
                    f"{where}: {dept_key} on {cloud_key}: {name} {to_file_value(resource, entry.limits[resource])} "
                    f"is below current usage {to_file_value(resource, taken)}"
                )
    return problems


def load_and_check(session: Session, folder: Path) -> QuotaDefinitions:
    definitions = read_quota_files(folder)
    problems = check(session, definitions)
    if problems:
        raise QuotaFilesInvalid(problems)
    return definitions


# --- plan -------------------------------------------------------------------------------


@dataclass
class PlanLine:
    department: str
    cloud: str
    department_id: int
    cloud_id: int
    project_id: str | None
    file_limits: Limits | None
    ledger_limits: Limits | None
    desired: Limits
    cloud_limits: Limits | None = None
    cloud_usage: Limits | None = None
    cloud_error: str | None = None
    kept_request: int | None = None  # an approved change request the plan keeps

    @property
    def ledger_changes(self) -> Limits:
        current = self.ledger_limits or {}
        return {r: v for r, v in self.desired.items() if current.get(r) != v}

    @property
    def cloud_changes(self) -> Limits:
        if self.cloud_limits is None:
            return dict(self.desired) if self.project_id else {}
        return {r: v for r, v in self.desired.items() if self.cloud_limits.get(r) != v}

    @property
    def changes_anything(self) -> bool:
        return bool(self.ledger_changes or self.cloud_changes)


def plan(
    session: Session, definitions: QuotaDefinitions, registry: ProviderRegistry | None, *, read_clouds: bool = True
) -> list[PlanLine]:
    """What `apply` would do, per department and cloud (reads the clouds unless told not to)."""
    departments = {d.key: d for d in session.scalars(select(Department))}
    clouds = {c.key: c for c in session.scalars(select(Cloud))}
    assignments = {(a.department_id, a.cloud_id): a for a in session.scalars(select(QuotaAssignment))}
    ledger_limits: dict[tuple[int, int], Limits] = {}
    for row in session.scalars(select(QuotaLedgerRow)):
        ledger_limits.setdefault((row.department_id, row.cloud_id), {})[Resource(row.resource)] = row.limit
    projects = {
        (link.department_id, link.cloud_id): link.project_id for link in session.scalars(select(DepartmentCloud))
    }

    lines: list[PlanLine] = []
    keys = set(definitions.entries)
    keys |= {(d.key, c.key) for d in departments.values() for c in clouds.values() if (d.id, c.id) in ledger_limits}
    for dept_key, cloud_key in sorted(keys):
        dept, cloud = departments[dept_key], clouds[cloud_key]
        ids = (dept.id, cloud.id)
        entry = definitions.entries.get((dept_key, cloud_key))
        in_ledger = ledger_limits.get(ids)
        assignment = assignments.get(ids)
        kept: int | None = None
        if entry is None:
            desired = dict(in_ledger or {})
        elif (
            assignment is not None
            and assignment.source == LimitSource.REQUEST.value
            and in_ledger is not None
            and _from_json(assignment.file_limits) == entry.limits
        ):
            # The file has not changed since an approved request raised the limits: keep
            # the request's limits (export writes them into the file).
            desired, kept = dict(in_ledger), assignment.change_request_id
        else:
            desired = dict(entry.limits)
        lines.append(
            PlanLine(
                department=dept_key,
                cloud=cloud_key,
                department_id=dept.id,
                cloud_id=cloud.id,
                project_id=projects.get(ids),
                file_limits=dict(entry.limits) if entry else None,
                ledger_limits=in_ledger,
                desired=desired,
                kept_request=kept,
            )
        )
    if read_clouds and registry is not None:
        for line in lines:
            if not line.project_id:
                line.cloud_error = "no project on the cloud yet (run `cloudmgr clouds sync`)"
                continue
            cloud = clouds[line.cloud]
            try:
                provider = registry.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
                line.cloud_limits = limits_of(provider.get_quota(line.project_id))
                usage = provider.get_compute_usage(line.project_id)
                line.cloud_usage = {
                    Resource.CORES: usage.cores,
                    Resource.RAM_MB: usage.ram_mb,
                    Resource.INSTANCES: usage.instances,
                }
            except CloudError as exc:
                line.cloud_error = str(exc)
    return lines


# --- apply ------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    ledger_changed: list[str] = field(default_factory=list)
    cloud_changed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _set_ledger_limits(session: Session, department_id: int, cloud_id: int, limits: Limits) -> None:
    rows = ledger.ensure_rows(session, department_id, cloud_id)
    for resource, value in limits.items():
        row = rows[resource]
        if value < row.used + row.reserved:
            raise QuotaBelowUsage(
                f"{resource.value} cannot be lowered to {value}: {row.used} used and {row.reserved} reserved"
            )
        row.limit = value


def apply(
    db: Database, registry: ProviderRegistry, folder: Path, *, actor: str, only_department: str | None = None
) -> ApplyResult:
    """Make the ledger and then the clouds match the files (idempotent; every change audited)."""
    result = ApplyResult()
    with db.unit_of_work() as uow:
        session = uow.session
        definitions = load_and_check(session, folder)
        lines = [
            line
            for line in plan(session, definitions, registry)
            if only_department is None or line.department == only_department
        ]
        for line in lines:
            if line.ledger_changes:
                _set_ledger_limits(session, line.department_id, line.cloud_id, line.desired)
                result.ledger_changed.append(f"{line.department} on {line.cloud}: {_describe(line.ledger_changes)}")
                audit.record(
                    session,
                    actor=actor,
                    action="quota.ledger.set",
                    target_type="quota",
                    target_id=f"{line.department}/{line.cloud}",
                    detail={"from": _to_json(line.ledger_limits or {}), "to": _to_json(line.desired)},
                )
            entry = definitions.entries.get((line.department, line.cloud))
            if entry is not None:
                assignment = session.scalar(
                    select(QuotaAssignment).where(
                        QuotaAssignment.department_id == line.department_id, QuotaAssignment.cloud_id == line.cloud_id
                    )
                )
                if assignment is None:
                    assignment = QuotaAssignment(department_id=line.department_id, cloud_id=line.cloud_id)
                    session.add(assignment)
                assignment.file_limits = _to_json(entry.limits)
                if line.kept_request is None:
                    assignment.size = entry.size
                    assignment.source = LimitSource.FILE.value
                    assignment.change_request_id = None
    # The ledger is committed; now the clouds (idempotent: a re-run sets what is still different).
    for line in lines:
        changes = line.cloud_changes
        if not changes or line.project_id is None:
            if line.cloud_error and line.project_id is None:
                result.problems.append(f"{line.department} on {line.cloud}: {line.cloud_error}")
            continue
        error = push_limits_to_cloud(db, registry, line.department_id, line.cloud_id, line.desired, actor=actor)
        if error:
            result.problems.append(f"{line.department} on {line.cloud}: {error}")
        else:
            result.cloud_changed.append(f"{line.department} on {line.cloud}: {_describe(changes)}")
    return result


def push_limits_to_cloud(
    db: Database, registry: ProviderRegistry, department_id: int, cloud_id: int, limits: Limits, *, actor: str
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
    except CloudError as exc:
        with db.unit_of_work() as uow:
            audit.record(
                uow.session,
                actor=actor,
                action="quota.cloud.set_failed",
                target_type="quota",
                target_id=f"{dept_key}/{cloud_key}",
                reason=str(exc),
                detail={"to": _to_json(limits)},
            )
        return str(exc)
    with db.unit_of_work() as uow:
        for row in uow.session.scalars(
            select(QuotaLedgerRow).where(
                QuotaLedgerRow.department_id == department_id, QuotaLedgerRow.cloud_id == cloud_id
            )
        ):
            if Resource(row.resource) in limits:
                row.cloud_limit = limits[Resource(row.resource)]
        audit.record(
            uow.session,
            actor=actor,
            action="quota.cloud.set",
            target_type="quota",
            target_id=f"{dept_key}/{cloud_key}",
            detail={"from": _to_json(limits_of(current)), "to": _to_json(limits)},
        )
    return None


# --- reconcile and drift ---------------------------------------------------------------------


@dataclass
class ReconcileResult:
    checked: int = 0
    drifts: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def reconcile(db: Database, registry: ProviderRegistry, *, actor: str = "system:quotas.reconcile") -> ReconcileResult:
    """Read every project's limits and usage from its cloud, record usage and drift, repair by policy."""
    result = ReconcileResult()
    with db.unit_of_work() as uow:
        targets = [
            (
                link.department_id,
                link.cloud_id,
                link.department.key,
                link.cloud.key,
                link.cloud.os_cloud,
                link.cloud.region,
                link.cloud.quota_drift_policy,
                link.project_id,
            )
            for link in uow.session.scalars(
                select(DepartmentCloud)
                .where(DepartmentCloud.project_id.is_not(None))
                .options(selectinload(DepartmentCloud.cloud), selectinload(DepartmentCloud.department))
            )
            if uow.session.scalar(
                select(func.count()).where(
                    QuotaLedgerRow.department_id == link.department_id, QuotaLedgerRow.cloud_id == link.cloud_id
                )
            )
        ]
    for dept_id, cloud_id, dept_key, cloud_key, os_cloud, region, policy, project_id in targets:
        assert project_id is not None
        where = f"{dept_key} on {cloud_key}"
        try:
            provider = registry.for_cloud(cloud_key, os_cloud, region)
            cloud_limits = limits_of(provider.get_quota(project_id))
            usage = provider.get_compute_usage(project_id)
        except CloudError as exc:
            result.problems.append(f"{where}: {exc}")
            continue
        cloud_used = {Resource.CORES: usage.cores, Resource.RAM_MB: usage.ram_mb, Resource.INSTANCES: usage.instances}
        result.checked += 1
        repair: Limits | None = None
        with db.unit_of_work() as uow:
            session = uow.session
            rows = ledger.ensure_rows(session, dept_id, cloud_id)
            now = utcnow()
            drifted: Limits = {}
            for resource, row in rows.items():
                row.cloud_limit = cloud_limits[resource]
                row.reconciled_at = now
                if resource in cloud_used:
                    row.cloud_used = cloud_used[resource]
                    # The cloud is the truth of what runs; the ledger follows it.
                    row.used = cloud_used[resource]
                if cloud_limits[resource] != row.limit:
                    drifted[resource] = cloud_limits[resource]
            open_drifts = {
                d.resource: d
                for d in session.scalars(
                    select(QuotaDrift).where(
                        QuotaDrift.department_id == dept_id,
                        QuotaDrift.cloud_id == cloud_id,
                        QuotaDrift.resolved_at.is_(None),
                    )
                )
            }
            for resource_name, drift in open_drifts.items():
                if Resource(resource_name) not in drifted:
                    drift.resolved_at = now
            action = "repaired" if policy == "repair" else "alerted"
            for resource, found in drifted.items():
                existing = open_drifts.get(resource.value)
                if existing is not None and existing.found == found and action == "alerted":
                    continue  # already reported, nothing new
                expected = rows[resource].limit
                drift_row = QuotaDrift(
                    department_id=dept_id,
                    cloud_id=cloud_id,
                    resource=resource.value,
                    expected=expected,
                    found=found,
                    action=action,
                    detected_at=now,
                )
                if existing is not None:
                    existing.resolved_at = now
                session.add(drift_row)
                result.drifts.append(f"{where}: {resource.value} is {found} on the cloud, ledger says {expected}")
                audit.record(
                    session,
                    actor=actor,
                    action=f"quota.drift.{action}",
                    target_type="quota",
                    target_id=f"{dept_key}/{cloud_key}",
                    detail={"resource": resource.value, "expected": expected, "found": found},
                )
            if drifted and policy == "repair":
                repair = {r: row.limit for r, row in rows.items()}
        if repair is not None:
            error = push_limits_to_cloud(db, registry, dept_id, cloud_id, repair, actor=actor)
            if error:
                result.problems.append(f"{where}: repair failed: {error}")
            else:
                result.repaired.append(where)
                with db.unit_of_work() as uow:
                    for drift in uow.session.scalars(
                        select(QuotaDrift).where(
                            QuotaDrift.department_id == dept_id,
                            QuotaDrift.cloud_id == cloud_id,
                            QuotaDrift.resolved_at.is_(None),
                        )
                    ):
                        drift.resolved_at = utcnow()
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


# --- quota-change requests ---------------------------------------------------------------------


def _link(session: Session, department_id: int, cloud_key: str) -> DepartmentCloud:
    link = session.scalar(
        select(DepartmentCloud)
        .join(Cloud, Cloud.id == DepartmentCloud.cloud_id)
        .where(DepartmentCloud.department_id == department_id, Cloud.key == cloud_key)
    )
    if link is None:
        raise QuotaChangeInvalid(f"the department may not use cloud {cloud_key!r}")
    return link


def request_change(
    session: Session,
    definitions: QuotaDefinitions,
    *,
    department_id: int,
    cloud_key: str,
    requested_by: str,
    reason: str,
    target_size: str | None = None,
    limits: Limits | None = None,
) -> QuotaChangeRequest:
    """A department asks for other limits.  One size up, at most once in 30 days, is approved
    at once; anything else waits for an operator."""
    reason = reason.strip()
    if not reason:
        raise QuotaChangeInvalid("a reason is required")
    if (target_size is None) == (limits is None):
        raise QuotaChangeInvalid("ask for either a size or explicit limits")
    link = _link(session, department_id, cloud_key)
    rows = ledger.ensure_rows(session, department_id, link.cloud_id)
    current = {r: row.limit for r, row in rows.items()}
    if target_size is not None:
        size = definitions.sizes.get(target_size)
        if size is None:
            raise QuotaChangeInvalid(f"unknown size {target_size!r} (sizes: {', '.join(definitions.sizes)})")
        requested = dict(size.limits)
    else:
        assert limits is not None
        if any(v < 0 for v in limits.values()):
            raise QuotaChangeInvalid("limits must not be negative")
        requested = {**current, **limits}
    for resource, value in requested.items():
        taken = rows[resource].used + rows[resource].reserved
        if value < taken:
            raise QuotaBelowUsage(
                f"{resource.value} cannot be set to {value}: {taken} already used or reserved (a quota is never "
                "lowered below what is in use)"
            )
    if requested == current:
        raise QuotaChangeInvalid("the requested limits are the current ones")
    assignment = session.scalar(
        select(QuotaAssignment).where(
            QuotaAssignment.department_id == department_id, QuotaAssignment.cloud_id == link.cloud_id
        )
    )
    change = QuotaChangeRequest(
        department_id=department_id,
        cloud_id=link.cloud_id,
        target_size=target_size,
        requested_limits=_to_json(requested),
        previous_limits=_to_json(current),
        reason=reason,
        requested_by=requested_by,
        state=ChangeRequestState.PENDING.value,
    )
    session.add(change)
    session.flush()
    audit.record(
        session,
        actor=requested_by,
        action="quota.change.request",
        target_type="quota_change",
        target_id=change.id,
        reason=reason,
        detail={"cloud": cloud_key, "size": target_size, "limits": change.requested_limits},
    )
    one_step_up = definitions.size_above(assignment.size if assignment else None)
    recent_auto = session.scalar(
        select(func.count()).where(
            QuotaChangeRequest.department_id == department_id,
            QuotaChangeRequest.cloud_id == link.cloud_id,
            QuotaChangeRequest.automatic.is_(True),
            QuotaChangeRequest.decided_at >= utcnow() - AUTO_APPROVAL_WINDOW,
        )
    )
    if target_size is not None and one_step_up is not None and one_step_up.name == target_size and not recent_auto:
        entry = definitions.entries.get((link.department.key, cloud_key))
        _approve(
            session,
            change,
            decided_by="system:auto-approval",
            reason="one size up, pre-approved",
            automatic=True,
            file_limits=entry.limits if entry else None,
        )
    return change


def _approve(
    session: Session,
    change: QuotaChangeRequest,
    *,
    decided_by: str,
    reason: str,
    automatic: bool,
    file_limits: Limits | None = None,
) -> None:
    requested = _from_json(change.requested_limits)
    _set_ledger_limits(session, change.department_id, change.cloud_id, requested)
    assignment = session.scalar(
        select(QuotaAssignment).where(
            QuotaAssignment.department_id == change.department_id, QuotaAssignment.cloud_id == change.cloud_id
        )
    )
    if assignment is None:
        assignment = QuotaAssignment(
            department_id=change.department_id, cloud_id=change.cloud_id, file_limits=_to_json(file_limits or {})
        )
        session.add(assignment)
    assignment.source = LimitSource.REQUEST.value
    assignment.change_request_id = change.id
    assignment.size = change.target_size
    change.state = ChangeRequestState.APPROVED.value
    change.automatic = automatic
    change.decided_by, change.decided_at, change.decision_reason = decided_by, utcnow(), reason
    session.flush()
    queue_cloud_push(session, change, actor=decided_by)
    audit.record(
        session,
        actor=decided_by,
        action="quota.change.approve",
        target_type="quota_change",
        target_id=change.id,
        reason=reason,
        detail={"automatic": automatic, "limits": change.requested_limits},
    )


def queue_cloud_push(session: Session, change: QuotaChangeRequest, *, actor: str) -> None:
    """The approved limits reach the cloud through the work queue, after this transaction
    commits (:mod:`cloudmgr.quotas.jobs`): whichever path approved them, retried until the
    cloud takes them."""
    from cloudmgr.workqueue.services import enqueue

    enqueue(session, "quota.push", f"quota-push:{change.id}", {"change_id": change.id, "actor": actor})


def decide_change(
    session: Session,
    change_id: int,
    *,
    approve: bool,
    decided_by: str,
    reason: str,
    definitions: QuotaDefinitions | None = None,
) -> QuotaChangeRequest:
    change = session.get(QuotaChangeRequest, change_id, with_for_update=True)
    if change is None:
        raise QuotaChangeInvalid(f"no quota-change request {change_id}")
    if change.state != ChangeRequestState.PENDING.value:
        raise QuotaChangeInvalid(f"request {change_id} is already {change.state}")
    if approve:
        entry = definitions.entries.get((change.department.key, change.cloud.key)) if definitions else None
        _approve(
            session,
            change,
            decided_by=decided_by,
            reason=reason or "approved",
            automatic=False,
            file_limits=entry.limits if entry else None,
        )
    else:
        if not reason.strip():
            raise QuotaChangeInvalid("a reason is required to reject")
        change.state = ChangeRequestState.REJECTED.value
        change.decided_by, change.decided_at, change.decision_reason = decided_by, utcnow(), reason
        audit.record(
            session,
            actor=decided_by,
            action="quota.change.reject",
            target_type="quota_change",
            target_id=change.id,
            reason=reason,
        )
    return change


def change_requests(
    session: Session, *, department_id: int | None = None, state: str | None = None
) -> Sequence[QuotaChangeRequest]:
    query = (
        select(QuotaChangeRequest)
        .options(selectinload(QuotaChangeRequest.department), selectinload(QuotaChangeRequest.cloud))
        .order_by(QuotaChangeRequest.id.desc())
    )
    if department_id is not None:
        query = query.where(QuotaChangeRequest.department_id == department_id)
    if state is not None:
        query = query.where(QuotaChangeRequest.state == state)
    return session.scalars(query).all()


# --- export -------------------------------------------------------------------------------------


def export(session: Session, definitions: QuotaDefinitions, folder: Path, *, actor: str) -> Path:
    """Write the ledger's current limits back as ``departments.yaml`` so the files stay the truth."""
    target = folder / "departments.yaml"
    other = [e.file for e in definitions.entries.values() if Path(e.file).resolve() != target.resolve()]
    if other:
        raise QuotaChangeInvalid(
            f"department quotas are also defined in {sorted(set(other))[0]}; export writes only {target.name}: "
            "move them there first"
        )
    entries: dict[str, dict[str, object]] = {}
    for bal in ledger.all_balances(session):
        limits = {r: b.limit for r, b in bal.resources.items()}
        size = definitions.size_matching(limits)
        value: object = size if size else {n: to_file_value(r, limits[r]) for n, r in FILE_NAMES.items()}
        entries.setdefault(bal.department_key, {})[bal.cloud_key] = value
    header = (
        "# Department quotas per cloud: a size from sizes.yaml, or explicit limits (ram in GB).\n"
        "# Written by `cloudmgr quotas export`; edit, review and `cloudmgr quotas apply`.\n"
    )
    body = yaml.safe_dump({"departments": entries}, allow_unicode=True, sort_keys=True, default_flow_style=False)
    tmp = target.with_suffix(".yaml.tmp")
    tmp.write_text(header + body, encoding="utf-8")
    tmp.replace(target)  # atomic: a reader never sees half a file
    for assignment in session.scalars(select(QuotaAssignment)):
        rows = ledger.ensure_rows(session, assignment.department_id, assignment.cloud_id)
        assignment.file_limits = _to_json({r: row.limit for r, row in rows.items()})
        assignment.source = LimitSource.FILE.value
        assignment.change_request_id = None
    audit.record(session, actor=actor, action="quota.export", target_type="quota", target_id=str(target))
    return target
