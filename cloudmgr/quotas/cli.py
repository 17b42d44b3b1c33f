"""``cloudmgr quotas …``: quotas as code — the files, the ledger, the clouds, departments' change requests."""

from __future__ import annotations

import sys
from typing import Any

import click

from cloudmgr.cli_common import cli_system_actor, domain_errors
from cloudmgr.runtime import get_runtime


@click.group("quotas")
def quotas() -> None:
    """Quotas as code: the files in quotas/, the ledger, the clouds."""


def _fmt_limits(limits: dict[Any, int] | None) -> str:
    if limits is None:
        return "-"
    from cloudmgr.quotas.resources import RESOURCES, to_file_value

    return " ".join(f"{r.value.replace('_mb', '_gb')}={to_file_value(r, limits[r])}" for r in RESOURCES if r in limits)


@quotas.command("check")
def quotas_check() -> None:
    """Validate the quota files; print each problem as file:line: message."""
    from cloudmgr.quotas.errors import QuotaFilesInvalid
    from cloudmgr.quotas.files import read_quota_files
    from cloudmgr.quotas.services import check

    runtime = get_runtime()
    try:
        definitions = read_quota_files(runtime.settings.quotas_dir)
        with runtime.db.unit_of_work() as uow:
            problems = check(uow.session, definitions)
    except QuotaFilesInvalid as exc:
        problems = exc.problems
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"{len(problems)} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"ok: {len(definitions.sizes)} sizes, {len(definitions.entries)} department quotas")


@quotas.command("plan")
@click.option("--offline", is_flag=True, help="do not read the clouds")
@domain_errors
def quotas_plan(offline: bool) -> None:
    """Per department and cloud: file, ledger and cloud limits, cloud usage, and what apply would change."""
    from cloudmgr.quotas.services import load_and_check, plan, read_clouds

    runtime = get_runtime()
    with runtime.db.unit_of_work() as uow:
        definitions = load_and_check(uow.session, runtime.settings.quotas_dir)
        lines = plan(uow.session, definitions)
    if not offline:
        read_clouds(runtime.providers, lines)  # after the transaction: never a cloud call inside one
    changing = 0
    for line in lines:
        click.echo(f"{line.department} on {line.cloud}")
        click.echo(f"    file:   {_fmt_limits(line.file_limits)}")
        ledger_note = f"   (keeps approved request #{line.kept_request}; run export)" if line.kept_request else ""
        click.echo(f"    ledger: {_fmt_limits(line.ledger_limits)}{ledger_note}")
        if line.cloud_error:
            click.echo(f"    cloud:  unavailable: {line.cloud_error}")
        elif not offline:
            click.echo(f"    cloud:  {_fmt_limits(line.cloud_limits)}   used: {_fmt_limits(line.cloud_usage)}")
            if line.not_on_cloud:
                click.echo(f"    cloud has no quota for: {', '.join(r.value for r in line.not_on_cloud)}")
        if line.changes_anything:
            changing += 1
            if line.ledger_changes:
                click.echo(f"    ~ ledger -> {_fmt_limits(line.ledger_changes)}")
            if line.cloud_changes and not offline:
                click.echo(f"    ~ cloud  -> {_fmt_limits(line.cloud_changes)}")
    click.echo(f"{changing} of {len(lines)} department quotas would change" if changing else "no changes")


@quotas.command("apply")
@click.option("--department", default=None, help="only this department")
@domain_errors
def quotas_apply(department: str | None) -> None:
    """Make the ledger and the clouds match the files (idempotent, audited)."""
    from cloudmgr.quotas.services import apply

    runtime = get_runtime()
    result = apply(
        runtime.db, runtime.providers, runtime.settings.quotas_dir, actor=cli_system_actor(), only_department=department
    )
    for change in result.ledger_changed:
        click.echo(f"ledger: {change}")
    for change in result.cloud_changed:
        click.echo(f"cloud:  {change}")
    for absent in result.not_on_cloud:
        click.echo(f"not on the cloud: {absent}")
    for problem in result.problems:
        click.echo(f"problem: {problem}", err=True)
    if not (result.ledger_changed or result.cloud_changed):
        click.echo("nothing to change")
    if not result.ok:
        sys.exit(1)


@quotas.command("export")
@domain_errors
def quotas_export() -> None:
    """Write the ledger's current limits back into quotas/departments.yaml."""
    from cloudmgr.quotas.files import read_quota_files
    from cloudmgr.quotas.services import export

    runtime = get_runtime()
    definitions = read_quota_files(runtime.settings.quotas_dir)
    with runtime.db.unit_of_work() as uow:
        path = export(uow.session, definitions, runtime.settings.quotas_dir, actor=cli_system_actor())
    click.echo(f"wrote {path}")


@quotas.command("reconcile")
@domain_errors
def quotas_reconcile() -> None:
    """Read limits and usage from the clouds now; record drift and repair it by each cloud's policy."""
    from cloudmgr.quotas.services import reconcile

    runtime = get_runtime()
    result = reconcile(runtime.db, runtime.providers, actor=cli_system_actor())
    click.echo(f"checked {result.checked} projects")
    for drift in result.drifts:
        click.echo(f"drift: {drift}")
    for repaired in result.repaired:
        click.echo(f"repaired: {repaired}")
    for problem in result.problems:
        click.echo(f"problem: {problem}", err=True)
    if result.problems:
        sys.exit(1)


@quotas.command("requests")
@click.option("--state", default=None, type=click.Choice(["pending", "approved", "rejected"]))
@domain_errors
def quotas_requests(state: str | None) -> None:
    """List quota-change requests."""
    from cloudmgr.quotas.services import change_requests

    with get_runtime().db.unit_of_work() as uow:
        for change in change_requests(uow.session, cli_system_actor(), state=state):
            decided = f" by {change.decided_by}" if change.decided_by else ""
            click.echo(
                f"#{change.id} {change.department.key} on {change.cloud.key}: "
                f"{change.target_size or change.requested_limits} [{change.state}{decided}] {change.reason}"
            )


@quotas.command("decide")
@click.argument("request_id", type=int)
@click.option("--approve/--reject", required=True)
@click.option("--reason", default="", help="required to reject")
@domain_errors
def quotas_decide(request_id: int, approve: bool, reason: str) -> None:
    """Approve or reject a quota-change request; the scheduler's workers push an approval to the cloud."""
    from cloudmgr.quotas.files import read_quota_files
    from cloudmgr.quotas.services import decide_change

    runtime = get_runtime()
    definitions = read_quota_files(runtime.settings.quotas_dir)
    with runtime.db.unit_of_work() as uow:
        change = decide_change(
            uow.session, cli_system_actor(), request_id, approve=approve, reason=reason, definitions=definitions
        )
        state = change.state
    click.echo(f"request #{request_id} {state}" + (" (queued for the cloud)" if approve else ""))
