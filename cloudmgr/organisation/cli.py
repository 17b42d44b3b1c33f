"""``cloudmgr org import`` and ``cloudmgr seed-demo``: the organisation files and the demo logins."""

from __future__ import annotations

import click

from cloudmgr.cli_common import cli_actor, domain_errors
from cloudmgr.runtime import get_runtime


@click.command("seed-demo")
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


@click.group("org")
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
