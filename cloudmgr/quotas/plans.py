"""Quotas as code: check the files, plan and apply them to the ledger and the clouds, export
the ledger back into the files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError
from cloudmgr.db import Database
from cloudmgr.errors import PermissionDenied
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, DepartmentCloud, Role
from cloudmgr.providers import ProviderRegistry
from cloudmgr.quotas import ledger
from cloudmgr.quotas.cloudsync import push_limits_to_cloud
from cloudmgr.quotas.errors import QuotaChangeInvalid, QuotaFilesInvalid
from cloudmgr.quotas.files import QuotaDefinitions, read_quota_files
from cloudmgr.quotas.models import LimitSource, QuotaAssignment, QuotaLedgerRow
from cloudmgr.quotas.resources import (
    FILE_NAMES,
    RESOURCES,
    Limits,
    Resource,
    describe_limits,
    limits_from_json,
    limits_of,
    limits_to_json,
    to_file_value,
)

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
    # Where the cloud is reached (read by :func:`read_clouds`, outside any transaction).
    os_cloud: str = ""
    region: str | None = None

    @property
    def ledger_changes(self) -> Limits:
        current = self.ledger_limits or {}
        return {r: v for r, v in self.desired.items() if current.get(r) != v}

    @property
    def cloud_changes(self) -> Limits:
        if self.cloud_limits is None:
            return dict(self.desired) if self.project_id else {}
        # A resource the cloud has no quota for (Cinder's, on a cloud without it) cannot
        # be changed there: see not_on_cloud.
        return {r: v for r, v in self.desired.items() if r in self.cloud_limits and self.cloud_limits[r] != v}

    @property
    def not_on_cloud(self) -> list[Resource]:
        """Resources with a limit in the ledger that the cloud has no quota for."""
        if self.cloud_limits is None:
            return []
        return [r for r in RESOURCES if r in self.desired and r not in self.cloud_limits]

    @property
    def changes_anything(self) -> bool:
        return bool(self.ledger_changes or self.cloud_changes)


def plan(session: Session, definitions: QuotaDefinitions) -> list[PlanLine]:
    """What `apply` would do to the ledger, per department and cloud, from the database alone:
    :func:`read_clouds` adds what the clouds say, after the caller's transaction."""
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
            and limits_from_json(assignment.file_limits) == entry.limits
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
                os_cloud=cloud.os_cloud,
                region=cloud.region,
            )
        )
    return lines


def read_clouds(registry: ProviderRegistry, lines: Sequence[PlanLine]) -> None:
    """Add each line's limits and usage on its cloud (or why they are unknown).  Takes no
    session: the caller reads the clouds after its transaction, never inside one."""
    for line in lines:
        if not line.project_id:
            line.cloud_error = "no project on the cloud yet (run `cloudmgr clouds sync`)"
            continue
        try:
            provider = registry.for_cloud(line.cloud, line.os_cloud, line.region)
            line.cloud_limits = limits_of(provider.get_quota(line.project_id))
            usage = provider.get_compute_usage(line.project_id)
            line.cloud_usage = {
                Resource.CORES: usage.cores,
                Resource.RAM_MB: usage.ram_mb,
                Resource.INSTANCES: usage.instances,
            }
        except CloudError as exc:
            line.cloud_error = str(exc)


# --- apply ------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    ledger_changed: list[str] = field(default_factory=list)
    cloud_changed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Limits the ledger holds but a cloud has no quota for (Cinder's, on a cloud without
    # it): not an error, but said, so nobody takes them for enforced there.
    not_on_cloud: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _apply_to_ledger(
    session: Session, definitions: QuotaDefinitions, lines: Sequence[PlanLine], actor: Actor, result: ApplyResult
) -> None:
    for line in lines:
        if line.ledger_changes:
            ledger.set_limits(session, line.department_id, line.cloud_id, line.desired)
            result.ledger_changed.append(f"{line.department} on {line.cloud}: {describe_limits(line.ledger_changes)}")
            audit.record(
                session,
                actor=actor.username,
                action="quota.ledger.set",
                target_type="quota",
                target_id=f"{line.department}/{line.cloud}",
                detail={"from": limits_to_json(line.ledger_limits or {}), "to": limits_to_json(line.desired)},
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
            assignment.file_limits = limits_to_json(entry.limits)
            if line.kept_request is None:
                assignment.size = entry.size
                assignment.source = LimitSource.FILE.value
                assignment.change_request_id = None


def apply(
    db: Database, registry: ProviderRegistry, folder: Path, *, actor: Actor, only_department: str | None = None
) -> ApplyResult:
    """Make the ledger and then the clouds match the files (idempotent; every change audited)."""
    result = ApplyResult()
    with db.unit_of_work() as uow:
        session = uow.session
        definitions = load_and_check(session, folder)
        lines = [
            line for line in plan(session, definitions) if only_department is None or line.department == only_department
        ]
        _apply_to_ledger(session, definitions, lines, actor, result)
    # The ledger is committed; now the clouds, read and set outside any transaction
    # (idempotent: a re-run sets what is still different).
    read_clouds(registry, lines)
    for line in lines:
        if line.not_on_cloud:
            names = ", ".join(r.value for r in line.not_on_cloud)
            result.not_on_cloud.append(f"{line.department} on {line.cloud}: the cloud has no quota for {names}")
        changes = line.cloud_changes
        if not changes or line.project_id is None:
            if line.cloud_error and line.project_id is None:
                result.problems.append(f"{line.department} on {line.cloud}: {line.cloud_error}")
            continue
        error = push_limits_to_cloud(db, registry, line.department_id, line.cloud_id, line.desired, actor=actor)
        if error:
            result.problems.append(f"{line.department} on {line.cloud}: {error}")
        else:
            result.cloud_changed.append(f"{line.department} on {line.cloud}: {describe_limits(changes)}")
    return result


# --- export -------------------------------------------------------------------------------------


def export(session: Session, definitions: QuotaDefinitions, folder: Path, *, actor: Actor) -> Path:
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
        assignment.file_limits = limits_to_json({r: row.limit for r, row in rows.items()})
        assignment.source = LimitSource.FILE.value
        assignment.change_request_id = None
    audit.record(session, actor=actor.username, action="quota.export", target_type="quota", target_id=str(target))
    return target


# --- apply from the admin pages: checked now, run by the worker -------------------------------

APPLY_WORK = "quotas.apply"


@dataclass(frozen=True)
class ApplyQueued:
    """The quota files checked and their apply queued for the worker."""

    sizes: int
    entries: int
    item_id: int


def queue_apply(session: Session, folder: Path, *, actor: Actor) -> ApplyQueued:
    """``cloudmgr quotas apply`` asked from the admin pages (administrators): the files are checked
    now (:class:`QuotaFilesInvalid` lists each problem as file:line: message) and the apply is
    queued in the caller's transaction; the worker runs it, since it sets quotas on the clouds,
    which never happens inside a request's transaction.  Asked twice, the queued one is reused."""
    from cloudmgr.workqueue.services import enqueue

    if actor.role is not Role.ADMIN:
        raise PermissionDenied("only administrators may apply the quota files")
    definitions = load_and_check(session, folder)
    item = enqueue(session, APPLY_WORK, APPLY_WORK, {"actor": actor.username}, max_attempts=1)
    return ApplyQueued(len(definitions.sizes), len(definitions.entries), item.id)
