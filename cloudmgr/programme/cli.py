"""``cloudmgr waves …`` and ``cloudmgr programme …``."""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from cloudmgr.cli_common import cli_system_actor, domain_errors
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import get_runtime


def _errors(func: Any) -> Any:
    return domain_errors(func)


def _actor() -> Actor:
    return cli_system_actor()


@click.group("waves")
def waves_group() -> None:
    """Migration waves: legacy systems moved onto a cloud in groups."""


def _show(wave_id: int) -> None:
    from cloudmgr.programme import services

    with get_runtime().db.unit_of_work() as uow:
        wave = services.get_wave(uow.session, wave_id)
        click.echo(
            f"wave #{wave.id} {wave.name}: {wave.state} on {wave.cloud.key}/{wave.zone}, "
            f"{wave.window_start}–{wave.window_end}" + (f" ({wave.state_reason})" if wave.state_reason else "")
        )
        for system in services.members_easy_first(uow.session, wave):
            click.echo(
                f"  {system.hostname:<32} {system.department.key:<24} {system.state:<14} "
                f"complexity {system.complexity_score}"
            )
        result = wave.check_result
        if result:
            click.echo(
                f"  last check {result.get('checked_at')} by {result.get('checked_by')}: "
                f"{'fits' if result.get('fits') else 'does NOT fit'}"
            )
            for line in result.get("quota", []):
                if not line["ok"]:
                    short = (
                        "no quota" if line["no_quota"] else ", ".join(f"{k} {v}" for k, v in line["shortfall"].items())
                    )
                    click.echo(f"    quota {line['department']}: short of {short}")
            capacity = result.get("capacity", {})
            if capacity.get("read"):
                click.echo(
                    f"    capacity: {capacity.get('hosts_used')} hosts used of {capacity.get('hosts')} "
                    f"({capacity.get('hosts_free')} empty); {capacity.get('hosts_needed')} empty hosts would hold it"
                )
            for item in result.get("unplaced", []):
                click.echo(f"    unplaced {item['hostname']}: {item['reason']}")
            for problem in result.get("problems", []):
                click.echo(f"    problem: {problem}")
            for warning in result.get("warnings", []):
                click.echo(f"    warning: {warning}")


@waves_group.command("list")
@click.option("--state", default=None, type=click.Choice(["draft", "checked", "running", "done", "cancelled"]))
def waves_list(state: str | None) -> None:
    """The waves, newest first."""
    from cloudmgr.programme import services

    with get_runtime().db.unit_of_work() as uow:
        found = services.list_waves(uow.session, state=state)
        counts = services.member_counts(uow.session, [w.id for w in found])
        for wave in found:
            click.echo(
                f"#{wave.id:<5} {wave.state:<10} {wave.cloud.key:<20} {wave.zone:<9} "
                f"{wave.window_start}–{wave.window_end} {counts.get(wave.id, 0):>4} systems  {wave.name}"
            )
        if not found:
            click.echo("no waves")


@waves_group.command("create")
@click.argument("name")
@click.option("--cloud", "cloud_key", required=True, help="the target cloud's key")
@click.option("--zone", required=True, type=click.Choice(["internet", "extranet"]))
@click.option("--start", "window_start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="YYYY-MM-DD")
@click.option("--end", "window_end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="YYYY-MM-DD")
def waves_create(name: str, cloud_key: str, zone: str, window_start: Any, window_end: Any) -> None:
    """Create a draft wave."""

    @_errors
    def run() -> int:
        from cloudmgr.programme import services

        with get_runtime().db.unit_of_work() as uow:
            return services.create_wave(
                uow.session,
                name=name,
                cloud_key=cloud_key,
                zone=zone,
                window_start=window_start.date(),
                window_end=window_end.date(),
                actor=_actor(),
            ).id

    _show(run())


@waves_group.command("add")
@click.argument("wave_id", type=click.IntRange(1, 2147483647))
@click.argument("hostnames", nargs=-1, required=True)
def waves_add(wave_id: int, hostnames: tuple[str, ...]) -> None:
    """Add legacy systems (by hostname) to a wave: all of them or none."""

    @_errors
    def run() -> None:
        from cloudmgr.programme import services

        with get_runtime().db.unit_of_work() as uow:
            services.add_systems(uow.session, wave_id, list(hostnames), actor=_actor())

    run()
    _show(wave_id)


@waves_group.command("remove")
@click.argument("wave_id", type=click.IntRange(1, 2147483647))
@click.argument("hostname")
def waves_remove(wave_id: int, hostname: str) -> None:
    """Take a system out of a draft or checked wave."""

    @_errors
    def run() -> None:
        from cloudmgr.inventory.services import get_system_by_hostname
        from cloudmgr.programme import services

        with get_runtime().db.unit_of_work() as uow:
            system = get_system_by_hostname(uow.session, hostname)
            services.remove_system(uow.session, wave_id, system.id, actor=_actor())

    run()
    _show(wave_id)


@waves_group.command("check")
@click.argument("wave_id", type=click.IntRange(1, 2147483647))
def waves_check(wave_id: int) -> None:
    """Check the wave against the departments' quotas and the cloud's free capacity."""

    @_errors
    def run() -> bool:
        from cloudmgr.programme import services

        runtime = get_runtime()
        return bool(services.check_wave(runtime.db, runtime.providers, wave_id, actor=_actor())["fits"])

    fits = run()
    _show(wave_id)
    if not fits:
        raise click.ClickException(f"wave {wave_id} does not fit")


@waves_group.command("start")
@click.argument("wave_id", type=click.IntRange(1, 2147483647))
def waves_start(wave_id: int) -> None:
    """Start a checked wave: its systems migrate (the scheduler runs their runbooks)."""

    @_errors
    def run() -> None:
        from cloudmgr.programme import services

        with get_runtime().db.unit_of_work() as uow:
            services.start_wave(uow.session, wave_id, actor=_actor())

    run()
    _show(wave_id)


@waves_group.command("cancel")
@click.argument("wave_id", type=click.IntRange(1, 2147483647))
@click.option("--reason", default="", help="why")
def waves_cancel(wave_id: int, reason: str) -> None:
    """Cancel a draft or checked wave (its systems go back to legacy)."""

    @_errors
    def run() -> None:
        from cloudmgr.programme import services

        with get_runtime().db.unit_of_work() as uow:
            services.cancel_wave(uow.session, wave_id, actor=_actor(), reason=reason)

    run()
    _show(wave_id)


@waves_group.command("show")
@click.argument("wave_id", type=click.IntRange(1, 2147483647))
def waves_show(wave_id: int) -> None:
    """A wave, its systems from easy to hard and its last check."""
    _errors(_show)(wave_id)


@click.group("programme")
def programme_group() -> None:
    """The cloud programme against its deadlines."""


@programme_group.command("show")
@click.option("--today", "when", default=None, type=click.DateTime(["%Y-%m-%d"]), help="default: today")
def programme_show(when: Any) -> None:
    """Progress, overdue and at-risk systems, server rooms closed."""

    @_errors
    def run() -> None:
        from cloudmgr.programme import tracking
        from cloudmgr.programme.config import read_programme_file

        runtime = get_runtime()
        config = read_programme_file(runtime.settings.programme_file)
        day: date = when.date() if when else tracking.today()
        with runtime.db.unit_of_work() as uow:
            f = tracking.compute(uow.session, config, day)
        click.echo(
            f"{day}: {f.done} of {f.in_scope} in-scope systems done ({f.pct}%), {f.remaining} remaining; "
            f"deadline {config.cloud.date}; {len(f.overdue)} overdue, {len(f.at_risk)} at risk; "
            f"server rooms closed {f.rooms_closed} of {len(f.rooms)} (deadline {config.rooms.date})"
        )
        for row in f.departments:
            click.echo(
                f"  {row.key:<28} {row.done:>5}/{row.in_scope:<5} {row.pct:>3}%  "
                f"overdue {row.overdue:<4} at risk {row.at_risk}"
            )

    run()


@programme_group.command("snapshot")
def programme_snapshot() -> None:
    """Take today's snapshot now (the scheduler does it daily) and queue the reminders."""

    @_errors
    def run() -> None:
        from cloudmgr.programme import tracking
        from cloudmgr.programme.config import read_programme_file
        from cloudmgr.programme.jobs import run_daily

        runtime = get_runtime()
        result = run_daily(runtime.db, read_programme_file(runtime.settings.programme_file), tracking.today())
        click.echo(
            f"snapshot of {result.taken_on} {'taken' if result.created else 'updated'}; "
            f"reminders queued for {', '.join(result.reminders) or 'nobody'}"
        )

    run()


@programme_group.command("seed-demo")
def programme_seed_demo() -> None:
    """The province demo mid-programme (`make run`, CLOUDMGR_DEMO=1): deadlines relative to today,
    months of finished waves and snapshots, a wave ready to start and one at risk."""

    @_errors
    def run() -> None:
        from cloudmgr.programme.demo import seed_demo_programme

        runtime = get_runtime()
        summary = seed_demo_programme(runtime.db, runtime.providers, runtime.settings)
        click.echo(
            f"programme demo: deadlines in {summary.programme_file}; {summary.hosts} demo hosts, "
            f"{summary.targets} runbook targets new"
        )
        if summary.skipped:
            click.echo(f"  waves and history not made: {summary.skipped}")
        elif summary.waves:
            click.echo(
                f"  waves: {', '.join(f'#{i} {n}' for n, i in summary.waves.items())}; "
                f"{summary.programme_snapshots} programme and {summary.capacity_snapshots} capacity snapshots back"
            )
        else:
            click.echo("  waves and history were seeded before: left as they are")

    run()
