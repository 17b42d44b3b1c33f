"""``cloudmgr org import``, ``cloudmgr clouds …`` and ``cloudmgr seed-demo``: the organisation files, the clouds
and the demo logins."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cloudmgr.cli_common import cli_system_actor, domain_errors
from cloudmgr.runtime import get_runtime

if TYPE_CHECKING:
    from cloudmgr.demo import DemoLogin


@click.command("seed-demo")
@click.option(
    "--logins/--no-logins",
    default=True,
    show_default=True,
    help="print the demo logins (`make run` prints them last, with `cloudmgr demo-logins`)",
)
@domain_errors
def seed_demo(logins: bool) -> None:
    """Load the organisation files, create one demo login per role and the standard firewall templates."""
    from cloudmgr.demo import seed_demo_users
    from cloudmgr.firewall import services as firewall
    from cloudmgr.organisation import services as org

    runtime = get_runtime()
    clouds, departments = org.read_organisation(runtime.settings.clouds_file, runtime.settings.departments_file)
    with runtime.db.unit_of_work() as uow:
        summary = org.import_organisation(uow.session, clouds, departments, actor=cli_system_actor())
        demo_logins = seed_demo_users(uow.session, actor=cli_system_actor())
        templates = firewall.seed_standard_templates(uow.session, cli_system_actor())
    click.echo(
        f"organisation: {len(clouds)} clouds, {len(departments)} departments "
        f"({summary.clouds_added} clouds and {summary.departments_added} departments new)"
    )
    click.echo(f"firewall templates: {', '.join(templates) if templates else 'none new'}")
    if logins:
        _echo_logins(demo_logins)


def _echo_logins(logins: list[DemoLogin]) -> None:
    click.echo("demo logins (演示账号):")
    for login in logins:
        dept = f" [{login.department_key}]" if login.department_key else ""
        click.echo(f"  {login.role.value:<10} {login.username:<10} {login.password}{dept}")


@click.command("demo-logins")
@domain_errors
def demo_logins() -> None:
    """Print the demo logins that exist and the address `cloudmgr serve` will listen on (CLOUDMGR_HOST and
    CLOUDMGR_PORT): the last lines `make run` prints before serving."""
    from cloudmgr.demo import existing_demo_logins

    runtime = get_runtime()
    with runtime.db.unit_of_work() as uow:
        logins = existing_demo_logins(uow.session)
    if logins:
        _echo_logins(logins)
    else:
        click.echo("no demo logins: run `cloudmgr seed-demo` first")
    settings = runtime.settings
    click.echo(
        f"cloudmgr: http://{settings.host}:{settings.port}  "
        f"({settings.cloud_provider} cloud; log in with a demo login above; Ctrl-C stops)"
    )


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
        summary = org_services.import_organisation(uow.session, clouds, departments, actor=cli_system_actor())
    click.echo(
        f"imported {len(clouds)} clouds ({summary.clouds_added} new), "
        f"{len(departments)} departments ({summary.departments_added} new), {summary.links_added} new links"
    )


@click.group("clouds")
def clouds() -> None:
    """The government clouds."""


@clouds.command("list")
@domain_errors
def clouds_list() -> None:
    """List the clouds with their kind, level and zones."""
    from cloudmgr.organisation import services as org_services

    with get_runtime().db.unit_of_work() as uow:
        down = {s.cloud_key: s for s in org_services.cloud_statuses(uow.session) if not s.reachable}
        for cloud in org_services.list_clouds(uow.session):
            zones = ", ".join(f"{z.zone}={z.network_name}" for z in cloud.zones)
            synced = cloud.synced_at.isoformat(timespec="seconds") if cloud.synced_at else "never"
            status = down.get(cloud.key)
            since = status.unreachable_since if status is not None else None
            note = f"  UNREACHABLE since {since.isoformat(timespec='seconds')}" if since is not None else ""
            click.echo(
                f"{cloud.key:<22} {cloud.kind:<9} {cloud.level:<9} {cloud.name_zh}  [{zones}] synced {synced}{note}"
            )


@clouds.command("sync")
@click.option("--cloud", "cloud_key", default=None, help="only this cloud")
@domain_errors
def clouds_sync(cloud_key: str | None) -> None:
    """Resolve zone networks and ensure each department's project on every cloud."""
    from cloudmgr.catalog.services import read_rates, sync_catalog
    from cloudmgr.organisation.sync import sync_clouds

    runtime = get_runtime()
    results = sync_clouds(runtime.db, runtime.providers, actor=cli_system_actor(), only=cloud_key)
    catalog = {
        r.cloud_key: r
        for r in sync_catalog(
            runtime.db, runtime.providers, read_rates(runtime.settings.rates_file), actor=cli_system_actor()
        )
    }
    if cloud_key and not results:
        raise click.ClickException(f"no enabled cloud {cloud_key!r}")
    failed: list[str] = []
    for result in results:
        state = "ok" if result.ok else ("UNREACHABLE" if result.unreachable else "PROBLEMS")
        items = catalog.get(result.cloud_key)
        catalog_note = f", catalog +{items.added}/-{items.gone}" if items and not items.problem else ""
        click.echo(
            f"{result.cloud_key:<22} {state}: {result.projects_ensured} projects, "
            f"{result.zones_resolved} zones{catalog_note}"
        )
        for problem in result.problems:
            click.echo(f"    {problem}")
        if not result.ok:
            failed.append(f"{result.cloud_key} (unreachable)" if result.unreachable else result.cloud_key)
    if failed:
        # The other clouds were synced all the same: one cloud down stops none of them.
        raise click.ClickException(f"{len(failed)} cloud(s) could not be synced: {', '.join(failed)}")
