"""``cloudmgr moves``: migrate, drain, move between clouds, confirm, revert (or undo), resume, list."""

from __future__ import annotations

import click

from cloudmgr.cli_common import cli_system_actor, domain_errors
from cloudmgr.runtime import get_runtime

NOW_HELP = "run the move in this process now (default: the scheduler's workers run it)"


@click.group("moves")
def moves() -> None:
    """Moves inside and between clouds: live/cold migration, host drain, cross-cloud move."""


def _show(move_id: int) -> None:
    from cloudmgr.moves import services

    with get_runtime().db.unit_of_work() as uow:
        move = services.get_move(uow.session, move_id)
        where = move.target_cloud.key if move.target_cloud else (move.target_host or "(scheduler)")
        click.echo(
            f"move #{move.id} {move.kind} on {move.cloud.key}: {move.state}"
            + (f" — {move.state_reason}" if move.state_reason else "")
        )
        if move.kind == "drain":
            subject = f"host {move.source_host}"
        elif move.kind == "system":
            order = " → ".join(", ".join(layer) for layer in (move.resources or {}).get("layers", []))
            subject = f"system {move.server_name} ({order})"
        else:
            subject = f"server {move.server_name} ({move.server_id})"
        click.echo(f"  {subject} from {move.source_host or '-'} to {where}")
        click.echo(f"  asked by {move.created_by} at {move.created_at:%Y-%m-%d %H:%M:%S}Z: {move.reason}")
        for step in move.steps:
            took = f" {step.seconds:.1f}s" if step.seconds is not None else ""
            error = f" — {step.error}" if step.error else ""
            click.echo(f"  {step.position}. {step.name:<15} {step.state:<8}{took}{error}")
        for child in move.children:
            click.echo(
                f"    #{child.id} {child.kind:<5} {child.server_name} ({child.server_id}): {child.state}"
                + (f" — {child.state_reason}" if child.state_reason else "")
            )


def _maybe_run(move_id: int, now: bool, force: bool = False) -> None:
    if now:
        from cloudmgr.moves.jobs import run_now

        runtime = get_runtime()
        run_now(
            runtime.db,
            runtime.providers,
            move_id,
            lease_seconds=float(runtime.settings.work_lease_seconds),
            force=force,
        )
    _show(move_id)


@moves.command("list")
@click.option("--state", default=None)
@click.option("--kind", type=click.Choice(["live", "cold", "drain", "cross_cloud", "system"]), default=None)
@domain_errors
def moves_list(state: str | None, kind: str | None) -> None:
    """The latest moves, newest first (a drain's per-server moves are under `show`)."""
    from cloudmgr.moves import services

    with get_runtime().db.unit_of_work() as uow:
        for move in services.list_moves(uow.session, state=state, kind=kind):
            subject = move.source_host if move.kind == "drain" else move.server_name
            click.echo(
                f"#{move.id:<5} {move.kind:<11} {move.state:<16} {move.cloud.key:<16} {subject or '-':<30} "
                f"{move.current_step or '':<14} {move.created_by}"
            )


@moves.command("show")
@click.argument("move_id", type=int)
@domain_errors
def moves_show(move_id: int) -> None:
    """A move with its steps (outcome, duration, error) and, for a drain, each server's move."""
    _show(move_id)


def _migration(kind: str, cloud_key: str, server_id: str, host: str | None, reason: str, auto: bool) -> int:
    from cloudmgr.moves import services

    runtime = get_runtime()
    return services.start_migration(
        runtime.db,
        runtime.providers,
        kind=kind,
        cloud_key=cloud_key,
        server_id=server_id,
        target_host=host,
        actor=cli_system_actor(),
        reason=reason,
        auto_confirm=auto,
    )


@moves.command("live")
@click.argument("server_id")
@click.option("--cloud", "cloud_key", required=True)
@click.option("--host", default=None, help="target compute host (default: the scheduler picks)")
@click.option("--reason", required=True, help="why (stored and audited)")
@click.option("--now", is_flag=True, help=NOW_HELP)
@domain_errors
def moves_live(server_id: str, cloud_key: str, host: str | None, reason: str, now: bool) -> None:
    """Live-migrate a running server to another host."""
    _maybe_run(_migration("live", cloud_key, server_id, host, reason, False), now)


@moves.command("cold")
@click.argument("server_id")
@click.option("--cloud", "cloud_key", required=True)
@click.option("--host", default=None, help="target compute host (default: the scheduler picks)")
@click.option("--reason", required=True, help="why (stored and audited)")
@click.option("--auto-confirm", is_flag=True, help="confirm at once instead of waiting for `moves confirm`")
@click.option("--now", is_flag=True, help=NOW_HELP)
@domain_errors
def moves_cold(server_id: str, cloud_key: str, host: str | None, reason: str, auto_confirm: bool, now: bool) -> None:
    """Cold-migrate a server; it then waits for `moves confirm` or `moves revert`."""
    _maybe_run(_migration("cold", cloud_key, server_id, host, reason, auto_confirm), now)


@moves.command("confirm")
@click.argument("move_id", type=int)
@click.option("--reason", default=None)
@click.option("--now", is_flag=True, help=NOW_HELP)
@domain_errors
def moves_confirm(move_id: int, reason: str | None, now: bool) -> None:
    """Confirm a cold migration waiting in awaiting_confirm."""
    from cloudmgr.moves import services

    with get_runtime().db.unit_of_work() as uow:
        services.confirm(uow.session, move_id, actor=cli_system_actor(), reason=reason)
    _maybe_run(move_id, now)


@moves.command("revert")
@click.argument("move_id", type=int)
@click.option("--reason", default=None)
@click.option("--now", is_flag=True, help=NOW_HELP)
@domain_errors
def moves_revert(move_id: int, reason: str | None, now: bool) -> None:
    """Send a cold migration waiting in awaiting_confirm back to its source host, or undo a
    failed cross-cloud move whose source is not being deleted yet."""
    from cloudmgr.moves import services

    with get_runtime().db.unit_of_work() as uow:
        services.revert(uow.session, move_id, actor=cli_system_actor(), reason=reason)
    _maybe_run(move_id, now)


@moves.command("drain")
@click.argument("host")
@click.option("--cloud", "cloud_key", required=True)
@click.option("--reason", required=True, help="why (stored and audited)")
@click.option(
    "--disable/--no-disable", "disable_host", default=True, help="disable the host's compute service meanwhile"
)
@click.option("--keep-disabled", is_flag=True, help="leave the host disabled once empty (for maintenance)")
@click.option("--only-managed", is_flag=True, help="move only servers of the projects cloudmgr manages")
@click.option("--now", is_flag=True, help=NOW_HELP)
@domain_errors
def moves_drain(
    host: str, cloud_key: str, reason: str, disable_host: bool, keep_disabled: bool, only_managed: bool, now: bool
) -> None:
    """Live-migrate every server off HOST; refused when the other hosts cannot take them."""
    from cloudmgr.moves import services

    runtime = get_runtime()
    move_id = services.start_drain(
        runtime.db,
        runtime.providers,
        cloud_key=cloud_key,
        host=host,
        actor=cli_system_actor(),
        reason=reason,
        disable_host=disable_host,
        keep_disabled=keep_disabled,
        only_managed=only_managed,
    )
    _maybe_run(move_id, now)


@moves.command("cross-cloud")
@click.argument("server_id")
@click.option("--cloud", "cloud_key", required=True, help="the cloud the server is on")
@click.option("--to", "target_cloud_key", required=True, help="the cloud to move it into")
@click.option("--department", default=None, help="target department (default: the server's own)")
@click.option("--zone", type=click.Choice(["internet", "extranet"]), default=None, help="default: the server's zone")
@click.option("--reason", required=True, help="why (stored and audited)")
@click.option("--now", is_flag=True, help=NOW_HELP)
@domain_errors
def moves_cross_cloud(
    server_id: str,
    cloud_key: str,
    target_cloud_key: str,
    department: str | None,
    zone: str | None,
    reason: str,
    now: bool,
) -> None:
    """Move a server into another cloud: snapshot, image, boot there, verify, delete the source."""
    from cloudmgr.moves import services

    runtime = get_runtime()
    move_id = services.start_cross_cloud_move(
        runtime.db,
        runtime.providers,
        cloud_key=cloud_key,
        server_id=server_id,
        target_cloud_key=target_cloud_key,
        target_department_key=department,
        target_zone=zone,
        actor=cli_system_actor(),
        reason=reason,
    )
    _maybe_run(move_id, now)


@moves.command("system")
@click.argument("application_system")
@click.option("--department", required=True, help="the department whose application system it is")
@click.option("--cloud", "cloud_key", required=True, help="the cloud its servers are on")
@click.option("--to", "target_cloud_key", required=True, help="the cloud to move them into")
@click.option("--zone", type=click.Choice(["internet", "extranet"]), default=None, help="default: each server's zone")
@click.option("--reason", required=True, help="why (stored and audited)")
@click.option("--now", is_flag=True, help=NOW_HELP)
@domain_errors
def moves_system(
    application_system: str,
    department: str,
    cloud_key: str,
    target_cloud_key: str,
    zone: str | None,
    reason: str,
    now: bool,
) -> None:
    """Move every server of a legacy system (its application and database servers, as the
    inventory lists its hosts) into another cloud as one move, in dependency order."""
    from cloudmgr.moves import services

    runtime = get_runtime()
    move_id = services.start_system_move(
        runtime.db,
        runtime.providers,
        cloud_key=cloud_key,
        department_key=department,
        application_system=application_system,
        target_cloud_key=target_cloud_key,
        target_zone=zone,
        actor=cli_system_actor(),
        reason=reason,
    )
    _maybe_run(move_id, now)


@moves.command("resume")
@click.argument("move_id", type=int)
@click.option("--reason", default=None)
@click.option("--now", is_flag=True, help=NOW_HELP)
@click.option("--force", is_flag=True, help="with --now: take the move over from a worker that died")
@domain_errors
def moves_resume(move_id: int, reason: str | None, now: bool, force: bool) -> None:
    """Carry a failed or interrupted move on from the step where it stopped."""
    from cloudmgr.moves import services

    with get_runtime().db.unit_of_work() as uow:
        services.resume(uow.session, move_id, actor=cli_system_actor(), reason=reason)
    _maybe_run(move_id, now, force)
