"""The ``cloudmgr`` command line."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from typing import Any

import click

from cloudmgr.cli_common import cli_actor, cli_system_actor, domain_errors
from cloudmgr.config import load_settings
from cloudmgr.console import acting_user_options, console_actor
from cloudmgr.errors import CloudmgrError
from cloudmgr.runtime import Runtime, get_runtime, set_runtime


@click.group()
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING…")
def main(log_level: str | None) -> None:
    """cloudmgr: the government clouds' consolidation and self-service manager."""
    try:
        settings = load_settings()
    except CloudmgrError as exc:
        raise click.ClickException(str(exc)) from exc
    level = (log_level or settings.log_level).upper()
    from cloudmgr.logformat import configure_logging

    configure_logging(level, settings.log_format)
    if level != "DEBUG":
        # APScheduler logs every run of every job at INFO: every two seconds for the work queue.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    set_runtime(Runtime.from_settings(settings))


# --- db --------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@domain_errors
def db_upgrade(revision: str) -> None:
    """Create or upgrade the database schema (Alembic)."""
    from cloudmgr.dbschema import current_revision, upgrade

    url = get_runtime().settings.database_url
    upgrade(url, revision)
    click.echo(f"database at revision {current_revision(url)}")


# --- users ------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Local user accounts and API tokens."""


@users.command("create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["dept_staff", "dept_head", "operator", "finance", "admin"]))
@click.option("--department", "department_key", default=None, help="department key (dept_staff, dept_head)")
@click.option("--display-name", default=None)
@click.option("--email", default=None)
@click.option("--password", default=None, help="read from the prompt when omitted")
@domain_errors
def users_create(
    username: str,
    role: str,
    department_key: str | None,
    display_name: str | None,
    email: str | None,
    password: str | None,
) -> None:
    """Create a local user."""
    from cloudmgr.organisation import services as org_services
    from cloudmgr.organisation.models import Role

    if password is None:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    with get_runtime().db.unit_of_work() as uow:
        user = org_services.create_user(
            uow.session,
            username=username,
            password=password,
            role=Role(role),
            department_key=department_key,
            display_name=display_name,
            email=email,
            actor=cli_actor(),
        )
        click.echo(f"created user {user.username} ({user.role})")


@users.command("password")
@click.argument("username")
@click.option("--password", default=None, help="read from the prompt when omitted")
@domain_errors
def users_password(username: str, password: str | None) -> None:
    """Set a local user's password (the password policy applies)."""
    from cloudmgr.identity import services as identity
    from cloudmgr.organisation import services as org_services

    if password is None:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True)
    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        identity.set_password(uow.session, user, password, actor=cli_actor())
    click.echo(f"password of {username} changed")


@users.command("unlock")
@click.argument("username")
@domain_errors
def users_unlock(username: str) -> None:
    """Lift the lock-out of USERNAME after too many failed log-ins."""
    from cloudmgr.identity import services as identity

    with get_runtime().db.unit_of_work() as uow:
        found = identity.unlock(uow.session, username, actor=cli_actor())
    click.echo(f"{username} unlocked" if found else f"{username} was not locked")


@users.command("token")
@click.argument("username")
@click.option("--name", default="cli", show_default=True, help="what the token is for")
@click.option("--days", default=90, show_default=True, type=click.IntRange(1, 3650))
@domain_errors
def users_token(username: str, name: str, days: int) -> None:
    """Issue an API token for USERNAME (printed once; only its hash is stored)."""
    from cloudmgr.db import utcnow
    from cloudmgr.organisation import services as org_services

    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        issued = org_services.issue_token(
            uow.session, user, name=name, expires_at=utcnow() + timedelta(days=days), actor=cli_actor()
        )
    click.echo(issued.token)


def cli_admin() -> Any:
    """The person at the host's command line acts as an administrator (they hold the database)."""
    from cloudmgr.organisation.actor import Actor
    from cloudmgr.organisation.models import Role

    return Actor(username=cli_actor(), role=Role.ADMIN)


REASON_OPTION = click.option("--reason", required=True, help="why (kept in the audit log)")


@users.command("disable")
@click.argument("username")
@REASON_OPTION
@domain_errors
def users_disable(username: str, reason: str) -> None:
    """Disable USERNAME: no log-in; their sessions and API tokens end at once."""
    from cloudmgr.organisation import services as org_services

    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        org_services.set_user_active(uow.session, cli_admin(), user.id, active=False, reason=reason)
    click.echo(f"{username} disabled; their sessions and API tokens have ended")


@users.command("enable")
@click.argument("username")
@REASON_OPTION
@domain_errors
def users_enable(username: str, reason: str) -> None:
    """Let a disabled USERNAME log in again (revoked tokens stay revoked)."""
    from cloudmgr.organisation import services as org_services

    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        org_services.set_user_active(uow.session, cli_admin(), user.id, active=True, reason=reason)
    click.echo(f"{username} enabled")


@users.command("tokens")
@click.argument("username")
@domain_errors
def users_tokens(username: str) -> None:
    """List USERNAME's API tokens (id, name, prefix, expiry, state)."""
    from cloudmgr.db import utcnow
    from cloudmgr.organisation import services as org_services

    now = utcnow()
    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        for token in org_services.list_tokens(uow.session, cli_admin(), user.id):
            if token.revoked_at is not None:
                state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}"
            elif token.expires_at is not None and token.expires_at <= now:
                state = "expired"
            else:
                state = "valid"
            expires = f"{token.expires_at:%Y-%m-%d}" if token.expires_at else "never"
            click.echo(f"{token.id}\t{token.name}\t{token.prefix}…\texpires {expires}\t{state}")


@users.command("revoke-tokens")
@click.argument("username")
@click.option("--id", "token_id", type=int, default=None, help="only this token (see `users tokens`)")
@REASON_OPTION
@domain_errors
def users_revoke_tokens(username: str, token_id: int | None, reason: str) -> None:
    """Revoke USERNAME's API tokens: all, or the one --id."""
    from cloudmgr.organisation import services as org_services

    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        revoked = org_services.revoke_tokens(uow.session, cli_admin(), user.id, reason=reason, token_id=token_id)
    click.echo(f"{revoked} API token(s) of {username} revoked")


@users.command("role")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["dept_staff", "dept_head", "operator", "finance", "admin"]))
@click.option("--department", "department_key", default=None, help="department key (dept_staff, dept_head)")
@REASON_OPTION
@domain_errors
def users_role(username: str, role: str, department_key: str | None, reason: str) -> None:
    """Give USERNAME another role or department; their sessions and API tokens end."""
    from cloudmgr.organisation import services as org_services
    from cloudmgr.organisation.models import Role

    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        org_services.change_role(
            uow.session, cli_admin(), user.id, role=Role(role), department_key=department_key, reason=reason
        )
    click.echo(f"{username} is now {role}" + (f" of {department_key}" if department_key else ""))


@users.command("unlock-address")
@click.argument("address")
@domain_errors
def users_unlock_address(address: str) -> None:
    """Lift the lock-out of a client ADDRESS after too many failed log-ins from it."""
    from cloudmgr.identity import services as identity

    with get_runtime().db.unit_of_work() as uow:
        found = identity.unlock_address(uow.session, address, actor=cli_actor())
    click.echo(f"{address} unlocked" if found else f"{address} was not locked")


# --- clouds -----------------------------------------------------------------------------


@main.group()
def clouds() -> None:
    """The government clouds."""


@clouds.command("list")
@domain_errors
def clouds_list() -> None:
    """List the clouds with their kind, level and zones."""
    from cloudmgr.organisation import services as org_services

    with get_runtime().db.unit_of_work() as uow:
        for cloud in org_services.list_clouds(uow.session):
            zones = ", ".join(f"{z.zone}={z.network_name}" for z in cloud.zones)
            synced = cloud.synced_at.isoformat(timespec="seconds") if cloud.synced_at else "never"
            click.echo(f"{cloud.key:<22} {cloud.kind:<9} {cloud.level:<9} {cloud.name_zh}  [{zones}] synced {synced}")


@clouds.command("sync")
@click.option("--cloud", "cloud_key", default=None, help="only this cloud")
@domain_errors
def clouds_sync(cloud_key: str | None) -> None:
    """Resolve zone networks and ensure each department's project on every cloud."""
    from cloudmgr.catalog.services import read_rates, sync_catalog
    from cloudmgr.organisation.sync import sync_clouds

    runtime = get_runtime()
    results = sync_clouds(runtime.db, runtime.providers, actor=cli_actor(), only=cloud_key)
    catalog = {
        r.cloud_key: r
        for r in sync_catalog(runtime.db, runtime.providers, read_rates(runtime.settings.rates_file), actor=cli_actor())
    }
    if cloud_key and not results:
        raise click.ClickException(f"no enabled cloud {cloud_key!r}")
    failed = 0
    for result in results:
        state = "ok" if result.ok else "PROBLEMS"
        items = catalog.get(result.cloud_key)
        catalog_note = f", catalog +{items.added}/-{items.gone}" if items and not items.problem else ""
        click.echo(
            f"{result.cloud_key:<22} {state}: {result.projects_ensured} projects, "
            f"{result.zones_resolved} zones{catalog_note}"
        )
        for problem in result.problems:
            click.echo(f"    {problem}")
        failed += 0 if result.ok else 1
    if failed:
        raise click.ClickException(f"{failed} cloud(s) could not be synced")


# --- quotas -----------------------------------------------------------------------------


@main.group()
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


# --- self-service requests ---------------------------------------------------------------


@main.group("requests")
def requests_group() -> None:
    """VM requests (the operator's view)."""


@requests_group.command("list")
@click.option("--state", default=None)
@click.option("--cloud", "cloud_key", default=None)
@click.option("--page", default=1, type=click.IntRange(1, None))
@domain_errors
def requests_list(state: str | None, cloud_key: str | None, page: int) -> None:
    """List requests, newest first."""
    from cloudmgr.organisation.actor import Actor
    from cloudmgr.servicerequests.services import RequestFilter, list_requests

    with get_runtime().db.unit_of_work() as uow:
        rows, total = list_requests(
            uow.session, Actor.system("cli"), RequestFilter(state=state, cloud_key=cloud_key, page=page, per_page=50)
        )
        for r in rows:
            waiting = f" waits for {r.next_role}" if r.next_role else ""
            click.echo(
                f"#{r.id:<5} {r.state:<16} {r.department.key:<22} {r.cloud.key:<18} "
                f"{r.count} x {r.flavor.cloud_name:<10} {r.monthly_cost:>9} yuan/month{waiting}"
            )
        click.echo(f"{total} request(s)")


@requests_group.command("show")
@click.argument("request_id", type=int)
@domain_errors
def requests_show(request_id: int) -> None:
    """One request with its servers and history."""
    from cloudmgr.organisation.actor import Actor
    from cloudmgr.servicerequests.services import get_request

    with get_runtime().db.unit_of_work() as uow:
        r = get_request(uow.session, Actor.system("cli"), request_id)
        click.echo(f"request #{r.id} ({r.kind}) {r.state}" + (f": {r.state_reason}" if r.state_reason else ""))
        click.echo(f"  department  {r.department.key} ({r.department.name_zh})")
        click.echo(f"  cloud/zone  {r.cloud.key} / {r.zone}")
        click.echo(
            f"  what        {r.count} x {r.flavor.cloud_name}, {r.monthly_cost} yuan/month, expires {r.expires_on}"
        )
        click.echo(f"  chain       {' -> '.join(r.approval_steps) or '-'} (next: {r.next_role or '-'})")
        for server in r.servers:
            fault = f"  [{server.fault}]" if server.fault else ""
            click.echo(
                f"  server {server.name:<20} {server.state:<10} {server.server_id or '-'} {server.host or ''}{fault}"
            )
        for event in r.events:
            why = f" ({event.reason})" if event.reason else ""
            click.echo(
                f"  {event.at.isoformat(timespec='seconds')} {event.actor:<22} {event.action:<11} "
                f"{event.from_state} -> {event.to_state}{why}"
            )


@requests_group.command("approve")
@click.argument("request_id", type=int)
@acting_user_options("the approving user (their role must be the next step)")
@click.option("--reason", default="")
@domain_errors
def requests_approve(request_id: int, username: str, password: str, reason: str) -> None:
    """Approve the current step of a request as USERNAME (who gives their password)."""
    from cloudmgr.servicerequests.services import approve_request

    actor = console_actor(username, password)
    with get_runtime().db.unit_of_work() as uow:
        request = approve_request(uow.session, actor, request_id, reason=reason)
        state, next_role = request.state, request.next_role
    click.echo(f"request #{request_id} is {state}" + (f", waiting for {next_role}" if next_role else ""))


# --- the groups that live with their package ----------------------------------------------
# Each package's ``cli.py`` holds its commands; the main command only registers them (the groups
# import cloudmgr.cli_common, never cloudmgr.cli back).

from cloudmgr.capacity.cli import capacity  # noqa: E402
from cloudmgr.inventory.cli import inventory  # noqa: E402
from cloudmgr.moves.cli import moves  # noqa: E402
from cloudmgr.organisation.cli import org, seed_demo  # noqa: E402
from cloudmgr.programme.cli import programme_group, waves_group  # noqa: E402
from cloudmgr.runbooks.cli import runbook  # noqa: E402

for _group in (seed_demo, org, capacity, inventory, waves_group, programme_group, runbook, moves):
    main.add_command(_group)


# --- processes --------------------------------------------------------------------------


@main.command("serve")
@click.option("--host", default=None, help="default: CLOUDMGR_HOST or 127.0.0.1")
@click.option("--port", default=None, type=int, help="default: CLOUDMGR_PORT or 8000")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
# Two threads a worker: the app is CPU-bound Python, so more threads only fight over the GIL
# (p95 of the list pages at 250 req/s on 2 cores: 36-39 ms with 1 or 2 threads, 94 ms with 4).
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--with-scheduler/--no-scheduler",
    default=None,
    help="also run `cloudmgr scheduler run` beside the web server (default: CLOUDMGR_SCHEDULER_ENABLED)",
)
def serve(host: str | None, port: int | None, workers: int, threads: int, with_scheduler: bool | None) -> None:
    """Serve the web application with gunicorn (and, by default, the scheduler beside it)."""
    import subprocess

    from cloudmgr.serving import serve_with_gunicorn

    settings = get_runtime().settings
    scheduler_process = None
    if settings.scheduler_enabled if with_scheduler is None else with_scheduler:
        # Its own process: a stand-by if another scheduler already leads (the leader lease).
        scheduler_process = subprocess.Popen([sys.executable, "-m", "cloudmgr.cli", "scheduler", "run"])
    try:
        serve_with_gunicorn(host or settings.host, port or settings.port, workers=workers, threads=threads)
    finally:
        if scheduler_process is not None:
            scheduler_process.terminate()
            try:
                scheduler_process.wait(30)
            except subprocess.TimeoutExpired:
                scheduler_process.kill()


@main.group()
def scheduler() -> None:
    """The job scheduler."""


@scheduler.command("run")
def scheduler_run() -> None:
    """Run the scheduler in the foreground (periodic jobs and queued work)."""
    from cloudmgr.scheduler.service import run_blocking

    runtime = get_runtime()
    run_blocking(
        runtime.db,
        work_poll_seconds=runtime.settings.work_poll_seconds,
        lease_seconds=runtime.settings.scheduler_lease_seconds,
    )


class _PlannerGroup(click.Group):
    """`cloudmgr plan …`: the consolidation planner's commands, imported only when used
    (numpy, numba and OR-Tools take over a second to load)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return ["consolidate"]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from cloudmgr.capacity.planner.cli import plan_group

        return plan_group.get_command(ctx, name)


main.add_command(_PlannerGroup(name="plan", help="The consolidation planner (hosts needed, placements, waves)."))


def _add_purchase_commands() -> None:
    from cloudmgr.purchases.cli import purchases_group, showback_command

    main.add_command(purchases_group)
    main.add_command(showback_command)


_add_purchase_commands()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
