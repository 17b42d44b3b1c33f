"""The ``cloudmgr`` command line."""

from __future__ import annotations

import getpass
import logging
import sys
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

import click

from cloudmgr.config import load_settings
from cloudmgr.errors import CloudmgrError
from cloudmgr.runtime import Runtime, get_runtime, set_runtime

F = TypeVar("F", bound=Callable[..., Any])


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


def domain_errors(func: F) -> F:
    """Turn cloudmgr's own errors into a clear message and a non-zero exit."""

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CloudmgrError as exc:
            raise click.ClickException(str(exc)) from exc

    return run  # type: ignore[return-value]


@click.group()
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING…")
def main(log_level: str | None) -> None:
    """cloudmgr: the government clouds' consolidation and self-service manager."""
    try:
        settings = load_settings()
    except CloudmgrError as exc:
        raise click.ClickException(str(exc)) from exc
    logging.basicConfig(level=(log_level or settings.log_level).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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


# --- organisation and demo ------------------------------------------------------------


@main.command("seed-demo")
@domain_errors
def seed_demo() -> None:
    """Load the organisation files and create one demo login per role."""
    from cloudmgr.demo import seed_demo_users
    from cloudmgr.organisation import services as org

    runtime = get_runtime()
    clouds, departments = org.read_organisation(runtime.settings.clouds_file, runtime.settings.departments_file)
    with runtime.db.unit_of_work() as uow:
        summary = org.import_organisation(uow.session, clouds, departments, actor=cli_actor())
        logins = seed_demo_users(uow.session, actor=cli_actor())
    click.echo(
        f"organisation: {len(clouds)} clouds, {len(departments)} departments "
        f"({summary.clouds_added} clouds and {summary.departments_added} departments new)"
    )
    click.echo("demo logins (演示账号):")
    for login in logins:
        dept = f" [{login.department_key}]" if login.department_key else ""
        click.echo(f"  {login.role.value:<10} {login.username:<10} {login.password}{dept}")


@main.group()
def org() -> None:
    """The organisation files (clouds and departments)."""


@org.command("import")
@domain_errors
def org_import() -> None:
    """Validate and import the clouds and departments files (all or nothing)."""
    from cloudmgr.organisation import services as org_services

    runtime = get_runtime()
    clouds, departments = org_services.read_organisation(
        runtime.settings.clouds_file, runtime.settings.departments_file
    )
    with runtime.db.unit_of_work() as uow:
        summary = org_services.import_organisation(uow.session, clouds, departments, actor=cli_actor())
    click.echo(
        f"imported {len(clouds)} clouds ({summary.clouds_added} new), "
        f"{len(departments)} departments ({summary.departments_added} new), {summary.links_added} new links"
    )


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
    username: str, role: str, department_key: str | None, display_name: str | None, email: str | None, password: str | None
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
    from cloudmgr.organisation.sync import sync_clouds

    runtime = get_runtime()
    results = sync_clouds(runtime.db, runtime.providers, actor=cli_actor(), only=cloud_key)
    if cloud_key and not results:
        raise click.ClickException(f"no enabled cloud {cloud_key!r}")
    failed = 0
    for result in results:
        state = "ok" if result.ok else "PROBLEMS"
        click.echo(f"{result.cloud_key:<22} {state}: {result.projects_ensured} projects, {result.zones_resolved} zones")
        for problem in result.problems:
            click.echo(f"    {problem}")
        failed += 0 if result.ok else 1
    if failed:
        raise click.ClickException(f"{failed} cloud(s) could not be synced")


# --- processes --------------------------------------------------------------------------


@main.command("serve")
@click.option("--host", default=None, help="default: CLOUDMGR_HOST or 127.0.0.1")
@click.option("--port", default=None, type=int, help="default: CLOUDMGR_PORT or 8000")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
def serve(host: str | None, port: int | None, workers: int, threads: int) -> None:
    """Serve the web application with gunicorn."""
    from cloudmgr.serving import serve_with_gunicorn

    settings = get_runtime().settings
    serve_with_gunicorn(host or settings.host, port or settings.port, workers=workers, threads=threads)


@main.group()
def scheduler() -> None:
    """The job scheduler."""


@scheduler.command("run")
def scheduler_run() -> None:
    """Run the scheduler in the foreground (periodic jobs and queued work)."""
    from cloudmgr.scheduler.service import run_blocking

    run_blocking(get_runtime().db)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
