"""``cloudmgr requests …``: the operator's view of the VM requests."""

from __future__ import annotations

import click

from cloudmgr.cli_common import domain_errors
from cloudmgr.console import acting_user_options, console_actor
from cloudmgr.runtime import get_runtime


@click.group("requests")
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
