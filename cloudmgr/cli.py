"""The ``cloudmgr`` command line."""

from __future__ import annotations

import logging
import sys

import click

from cloudmgr.cli_common import domain_errors
from cloudmgr.config import load_settings
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
    runtime = Runtime.from_settings(settings)
    previous = set_runtime(runtime)
    # The engine's pooled connections close with the command, not whenever the garbage collector
    # comes by (one engine per invocation: many in one process when commands are invoked in-process).
    # The runtime it replaced is installed again: code run after an in-process invocation must not
    # reach the disposed engine through get_runtime() and open connections nobody closes.
    context = click.get_current_context()
    context.call_on_close(runtime.db.dispose)
    context.call_on_close(lambda: set_runtime(previous))


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


# --- the groups that live with their package ----------------------------------------------
# Each package's ``cli.py`` holds its commands; the main command only registers them (the groups
# import cloudmgr.cli_common, never cloudmgr.cli back).

from cloudmgr.capacity.cli import capacity  # noqa: E402
from cloudmgr.cloudservers.cli import servers_group  # noqa: E402
from cloudmgr.identity.cli import users  # noqa: E402
from cloudmgr.inventory.cli import inventory  # noqa: E402
from cloudmgr.lines.cli import lines_group  # noqa: E402
from cloudmgr.moves.cli import moves  # noqa: E402
from cloudmgr.organisation.cli import clouds, demo_logins, org, seed_demo  # noqa: E402
from cloudmgr.programme.cli import programme_group, waves_group  # noqa: E402
from cloudmgr.quotas.cli import quotas  # noqa: E402
from cloudmgr.runbooks.cli import runbook  # noqa: E402
from cloudmgr.servicerequests.cli import requests_group  # noqa: E402

for _group in (
    seed_demo,
    demo_logins,
    org,
    users,
    clouds,
    quotas,
    requests_group,
    capacity,
    inventory,
    lines_group,
    waves_group,
    programme_group,
    runbook,
    moves,
    servers_group,
):
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
