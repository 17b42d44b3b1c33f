"""``cloudmgr servers sync``: bring the stored mirror of the clouds' servers up to date."""

from __future__ import annotations

import click

from cloudmgr.cli_common import domain_errors
from cloudmgr.runtime import get_runtime


@click.group("servers")
def servers_group() -> None:
    """The stored mirror of each cloud's servers (what the reconcile job reads)."""


@servers_group.command("sync")
@click.option("--full", is_flag=True, help="list every server (default: a delta with changes-since when it can)")
@click.option("--cloud", "cloud_key", default=None, metavar="KEY", help="only this cloud (default: every enabled one)")
@domain_errors
def servers_sync(full: bool, cloud_key: str | None) -> None:
    """Sync the mirror of every enabled cloud's servers, or of one; exits non-zero if any cloud failed."""
    from cloudmgr.cloudservers.services import SyncMode, SyncPolicy, sync_clouds

    runtime = get_runtime()
    run = sync_clouds(
        runtime.db,
        runtime.providers,
        cloud_key=cloud_key,
        mode=SyncMode.FULL if full else SyncMode.AUTO,
        policy=SyncPolicy.from_settings(runtime.settings),
    )
    for outcome in run.outcomes:
        if outcome.result is not None:
            click.echo(outcome.result.summary())
        else:
            click.echo(f"{outcome.cloud_key}: sync failed: {outcome.error}", err=True)
    if not run.outcomes:
        click.echo("no enabled cloud to sync")
    if run.failed:
        raise click.ClickException(f"{len(run.failed)} of {len(run.outcomes)} cloud(s) failed to sync")
