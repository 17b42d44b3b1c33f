"""``cloudmgr runbook …``: run a migration step of a legacy system, configure and show its runbook."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click
import yaml

from cloudmgr.cli_common import cli_system_actor
from cloudmgr.errors import CloudmgrError
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import get_runtime


def _actor() -> Actor:
    return cli_system_actor()


def _system_id(hostname: str) -> int:
    from cloudmgr.inventory.services import get_system_by_hostname

    with get_runtime().db.unit_of_work() as uow:
        return get_system_by_hostname(uow.session, hostname).id


def _print_event(event: Mapping[str, Any]) -> None:
    name = event.get("event")
    data = event.get("event_data") or {}
    if name == "playbook_on_play_start":
        click.echo(f"PLAY {data.get('play', '')}")
    elif name in {"runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped"}:
        raw = data.get("res")
        res: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        status = {
            "runner_on_ok": "changed" if res.get("changed") else "ok",
            "runner_on_failed": "ignored" if data.get("ignore_errors") else "FAILED",
            "runner_on_unreachable": "UNREACHABLE",
            "runner_on_skipped": "skipped",
        }[str(name)]
        message = f": {res.get('msg')}" if status in {"FAILED", "UNREACHABLE"} and res.get("msg") else ""
        click.echo(f"  {status:<11} {data.get('host', '')}  {data.get('task', '')}{message}")


def _parse_vars(pairs: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE")
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as exc:
            raise click.BadParameter(f"{pair!r}: {exc}") from exc
    return values


@click.group("runbook")
def runbook() -> None:
    """Migration runbooks: a legacy system's move onto the cloud, step by step (Ansible)."""


@runbook.command("run")
@click.argument("hostname")
@click.argument(
    "step",
    type=click.Choice(
        ["precheck", "provision", "replicate", "cutover", "verify", "rollback", "decommission", "migrate"]
    ),
)
def runbook_run(hostname: str, step: str) -> None:
    """Run STEP of HOSTNAME now, printing Ansible's events ("migrate": every remaining step).

    A failed cutover or verify rolls back at once.  Exits non-zero when the step failed.
    """
    from cloudmgr.runbooks import services
    from cloudmgr.runbooks.models import RunState

    runtime = get_runtime()
    try:
        system_id = _system_id(hostname)
        if step == "migrate":
            outcome = services.migrate_system(
                runtime.db, runtime.settings, runtime.providers, system_id, actor=_actor(), on_event=_print_event
            )
        else:
            outcome = services.run_step(
                runtime.db, runtime.settings, runtime.providers, system_id, step, actor=_actor(), on_event=_print_event
            )
    except CloudmgrError as exc:
        raise click.ClickException(str(exc)) from exc
    if outcome is None:
        click.echo(f"{hostname}: nothing to do (not migrating, or already on the cloud)")
        return
    state = outcome.state.value
    click.echo(f"run #{outcome.run_id} {outcome.step.value}: {state} (rc={outcome.rc}, changed={outcome.changed})")
    if outcome.rollback is not None:
        rb = outcome.rollback
        click.echo(f"rollback run #{rb.run_id}: {rb.state.value} (rc={rb.rc})")
    if outcome.state != RunState.SUCCEEDED:
        raise click.ClickException(outcome.reason or f"{outcome.step.value} {outcome.state.value}")


@runbook.command("configure")
@click.argument("hostname")
@click.option("--target-host", default=None, help="the address Ansible reaches the target VM on ('' clears it)")
@click.option("--service-address", default=None, help="the address clients use, moved at cutover ('' clears it)")
@click.option("--var", "group_vars", multiple=True, metavar="KEY=VALUE", help="a variable for every host")
@click.option("--source-var", "source_vars", multiple=True, metavar="KEY=VALUE", help="a host variable of the source")
@click.option("--target-var", "target_vars", multiple=True, metavar="KEY=VALUE", help="a host variable of the target")
def runbook_configure(
    hostname: str,
    target_host: str | None,
    service_address: str | None,
    group_vars: tuple[str, ...],
    source_vars: tuple[str, ...],
    target_vars: tuple[str, ...],
) -> None:
    """Set where HOSTNAME's runbook acts (variables are merged into the stored ones)."""
    from cloudmgr.inventory.services import get_system_by_hostname
    from cloudmgr.runbooks.services import configure_target

    try:
        with get_runtime().db.unit_of_work() as uow:
            system = get_system_by_hostname(uow.session, hostname)
            target = configure_target(
                uow.session,
                system,
                actor=_actor(),
                target_host=target_host,
                service_address=service_address,
                vars=_parse_vars(group_vars),
                source_vars=_parse_vars(source_vars),
                target_vars=_parse_vars(target_vars),
            )
            shown = {
                "target_host": target.target_host,
                "service_address": target.service_address,
                "vars": target.vars,
                "source_vars": target.source_vars,
                "target_vars": target.target_vars,
            }
    except CloudmgrError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(shown, ensure_ascii=False, indent=2, sort_keys=True))


@runbook.command("show")
@click.argument("hostname")
def runbook_show(hostname: str) -> None:
    """HOSTNAME's runbook runs, newest first."""
    from cloudmgr.inventory.services import get_system_by_hostname
    from cloudmgr.runbooks.services import list_runs

    try:
        with get_runtime().db.unit_of_work() as uow:
            system = get_system_by_hostname(uow.session, hostname)
            click.echo(f"{system.hostname}: {system.state}")
            for run in list_runs(uow.session, system.id):
                when = run.started_at.strftime("%Y-%m-%d %H:%M:%S") if run.started_at else "-"
                line = f"  #{run.id:<5} {run.step:<12} {run.state:<11} rc={run.rc} changed={run.changed}"
                line += f" {when} {run.actor}"
                click.echo(line + (f"  {run.reason}" if run.reason else ""))
    except CloudmgrError as exc:
        raise click.ClickException(str(exc)) from exc
