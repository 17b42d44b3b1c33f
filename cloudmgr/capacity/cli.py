"""``cloudmgr capacity …``: the data-centre bases' capacity, its forecast and consolidation runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cloudmgr.cli_common import cli_system_actor, domain_errors
from cloudmgr.runtime import get_runtime


@click.group("capacity")
def capacity() -> None:
    """Capacity of the data-centre bases against the target server counts."""


def _capacity_config() -> Any:
    from cloudmgr.capacity.config import read_capacity_file
    from cloudmgr.organisation import services as org_services

    runtime = get_runtime()
    with runtime.db.unit_of_work() as uow:
        keys = {c.key for c in org_services.list_clouds(uow.session)}
    return read_capacity_file(runtime.settings.capacity_file, keys or None)


@capacity.command("snapshot")
@domain_errors
def capacity_snapshot() -> None:
    """Read every cloud's Placement capacity now and store a snapshot."""
    from cloudmgr.capacity.services import take_snapshots

    runtime = get_runtime()
    result = take_snapshots(runtime.db, runtime.providers, _capacity_config())
    click.echo(f"{result.snapshots} snapshot(s), {result.hosts} host(s)")
    for problem in result.problems:
        click.echo(f"note: {problem}", err=True)


@capacity.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@domain_errors
def capacity_import(path: Path) -> None:
    """Import capacity outside OpenStack from CSV (base,date,physical_servers,vcpus,ram_gb,disk_gb)."""
    from cloudmgr.capacity.services import import_csv

    config = _capacity_config()
    with get_runtime().db.unit_of_work() as uow:
        text = path.read_text(encoding="utf-8")
        count = import_csv(uow.session, config, text, source_name=path.name, actor=cli_system_actor())
    click.echo(f"imported {count} row(s)")


@capacity.command("show")
@domain_errors
def capacity_show() -> None:
    """Capacity per base, and the forecast against each target."""
    from cloudmgr.capacity.services import forecast, server_trend, totals_by_base

    config = _capacity_config()
    with get_runtime().db.unit_of_work() as uow:
        totals = totals_by_base(uow.session, config)
        trend = server_trend(uow.session)
    names = {b.key: b.name_zh for b in config.bases}
    click.echo(f"{'base':<16}{'servers':>9}{'vCPU used/total':>20}{'RAM GB used/total':>22}{'disk GB used/total':>22}")
    for key, t in totals.items():
        click.echo(
            f"{names.get(key, key):<16}{t.physical_servers:>9}{t.vcpus_used:>10}/{t.vcpus_total:<9}"
            f"{t.ram_mb_used // 1024:>11}/{t.ram_mb_total // 1024:<10}{t.disk_gb_used:>11}/{t.disk_gb_total:<10}"
        )
    for target in config.targets:
        f = forecast(trend, target)
        if f.reached:
            verdict = "reached"
        elif f.expected is None:
            verdict = "not reached at the current rate" if f.servers_per_day is not None else "not enough data"
        else:
            verdict = f"expected {f.expected} (between {f.earliest or '?'} and {f.latest or 'never'})"
        click.echo(f"target {target.servers:,} by {target.date}: now {f.current:,}; {verdict}")


@capacity.command("consolidate")
@click.option("--cloud", "cloud_key", required=True, help="the cloud whose hosts to empty")
@click.option("--max-wave", default=5, show_default=True, type=click.IntRange(1, 500))
@domain_errors
def capacity_consolidate(cloud_key: str, max_wave: int) -> None:
    """Plan live migrations that empty as many hosts as possible (nothing moves until `run-start`)."""
    from cloudmgr.capacity import consolidation

    runtime = get_runtime()
    run_id = consolidation.plan_run(
        runtime.db, runtime.providers, cloud_key, actor=cli_system_actor(), max_wave=max_wave
    )
    _show_run(run_id)


def _show_run(run_id: int) -> None:
    from cloudmgr.capacity import consolidation

    with get_runtime().db.unit_of_work() as uow:
        run = consolidation.get_run(uow.session, run_id)
        summary = run.plan["summary"]
        click.echo(
            f"run #{run.id} on {run.cloud.key}: {run.state}; "
            f"{summary['moves']} moves in {len(run.plan['waves'])} waves "
            f"empty {summary['emptied']} of {summary['hosts']} hosts (at most {summary['max_emptiable']} can be; "
            f"at least {summary['min_moves_bound']} moves needed; {summary['method']}, {summary['status']})"
        )
        for index, wave in enumerate(run.plan["waves"]):
            mark = "done" if index < run.next_wave else "next" if index == run.next_wave else ""
            moves = ", ".join(f"{m['vm']} {m['from']}->{m['to']}" for m in wave)
            click.echo(f"  wave {index + 1} {mark:<4} {moves}")
        if run.last_error:
            click.echo(f"  last error: {run.last_error}")


@capacity.command("run")
@click.argument("run_id", type=int)
@click.argument("action", type=click.Choice(["show", "start", "stop"]))
@domain_errors
def capacity_run(run_id: int, action: str) -> None:
    """Show, start (or resume) or stop a consolidation run; the scheduler executes its waves."""
    from cloudmgr.capacity import consolidation

    if action != "show":
        with get_runtime().db.unit_of_work() as uow:
            if action == "start":
                consolidation.start_run(uow.session, run_id, actor=cli_system_actor())
            else:
                consolidation.stop_run(uow.session, run_id, actor=cli_system_actor())
    _show_run(run_id)
