"""``cloudmgr purchases list|show|decide`` and ``cloudmgr showback`` (added to the main CLI)."""

from __future__ import annotations

import click

from cloudmgr.cli_common import domain_errors
from cloudmgr.console import acting_user_options, console_actor
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.purchases.models import PurchaseState
from cloudmgr.purchases.rules import may_review_purchases


def _finance_actor(username: str, password: str) -> Actor:
    """The reviewer at the console, refused early (before the database) unless the service says finance."""
    actor = console_actor(username, password)
    if not may_review_purchases(actor):
        raise click.ClickException(f"{username} is not a finance reviewer")
    return actor


@click.group("purchases")
def purchases_group() -> None:
    """Hardware purchase requests and finance's review."""


@purchases_group.command("list")
@click.option("--state", default=None, type=click.Choice([s.value for s in PurchaseState]))
@click.option("--queue", is_flag=True, help="only what waits for finance, strongest findings first")
@domain_errors
def purchases_list(state: str | None, queue: bool) -> None:
    """List purchase requests, newest first."""
    from cloudmgr.purchases import services
    from cloudmgr.runtime import get_runtime

    actor = Actor("cli", Role.FINANCE)
    with get_runtime().db.unit_of_work() as uow:
        if queue:
            rows = list(services.review_queue(uow.session, actor))
            total = len(rows)
        else:
            found, total = services.list_purchases(
                uow.session, actor, services.PurchaseFilter(state=state, per_page=200)
            )
            rows = list(found)
        for p in rows:
            kinds = ",".join(f.kind for f in p.findings) or "-"
            click.echo(
                f"#{p.id:<5} {p.state:<12} {p.department.key:<22} {p.category:<12} "
                f"{p.amount_yuan:>14} yuan  findings: {kinds}"
            )
        click.echo(f"{total} purchase request(s)")


@purchases_group.command("show")
@click.argument("purchase_id", type=click.IntRange(1, 2**31 - 1))
@domain_errors
def purchases_show(purchase_id: int) -> None:
    """One purchase request with its items, findings and history."""
    from cloudmgr.purchases import services
    from cloudmgr.runtime import get_runtime

    with get_runtime().db.unit_of_work() as uow:
        p = services.get_purchase(uow.session, Actor("cli", Role.FINANCE), purchase_id)
        click.echo(f"purchase #{p.id} {p.state}" + (f": {p.state_reason}" if p.state_reason else ""))
        click.echo(f"  department  {p.department.key} ({p.department.name_zh})")
        click.echo(f"  title       {p.title} [{p.category}] for {p.application_system}")
        click.echo(f"  amount      {p.amount_yuan} yuan")
        for item in p.items:
            click.echo(
                f"  item        {item.quantity} x {item.description} ({item.vcpus} vCPU, {item.ram_gb} GB RAM, "
                f"{item.disk_gb} GB disk) at {item.unit_price}"
            )
        for f in p.findings:
            click.echo(f"  finding     [{f.severity}] {f.kind}: {f.summary}")
        for e in p.events:
            why = f" ({e.reason})" if e.reason else ""
            at = e.at.isoformat(timespec="seconds")
            click.echo(f"  {at} {e.actor:<20} {e.action:<9} {e.from_state} -> {e.to_state}{why}")


@purchases_group.command("decide")
@click.argument("purchase_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--approve", "decision", flag_value="approve")
@click.option("--block", "decision", flag_value="block")
@click.option("--return", "decision", flag_value="return", help="return to the department for information")
@click.option("--reason", default="", help="required to block or return")
@click.option(
    "--basis", default=None, help="why it is blocked: cloud_provides, server_room, duplicate, migrating, other"
)
@acting_user_options("the finance reviewer deciding")
@domain_errors
def purchases_decide(
    purchase_id: int, decision: str | None, reason: str, basis: str | None, username: str, password: str
) -> None:
    """Approve, block or return a purchase request, as a finance reviewer who gives their password."""
    from cloudmgr.purchases import services
    from cloudmgr.runtime import get_runtime

    if decision is None:
        raise click.UsageError("choose --approve, --block or --return")
    actor = _finance_actor(username, password)
    with get_runtime().db.unit_of_work() as uow:
        p = services.decide_purchase(uow.session, actor, purchase_id, decision=decision, reason=reason, basis=basis)
        click.echo(f"purchase #{p.id} {p.state}")


@click.command("showback")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a table")
@domain_errors
def showback_command(as_csv: bool) -> None:
    """Monthly cost per department and cloud at the catalog's rates."""
    from cloudmgr.purchases import showback
    from cloudmgr.runtime import get_runtime

    runtime = get_runtime()
    rate = showback.backup_rate(runtime.settings.rates_file)
    with runtime.db.unit_of_work() as uow:
        report = showback.showback(uow.session, Actor("cli", Role.FINANCE), backup_gb_price=rate)
    if as_csv:
        click.echo(showback.showback_csv(report), nl=False)
        return
    for r in report.rows:
        click.echo(
            f"{r.department_key:<22} {r.cloud_key:<20} {r.servers:>4} servers {r.server_vcpus:>5} vCPU "
            f"{r.volume_gb:>6} disk GB {r.addresses:>3} addresses {r.backup_gb:>6} backup GB "
            f"{r.ledger_cores:>5} ledger cores {r.monthly_yuan:>12} yuan/month"
        )
    click.echo(f"total {report.monthly_yuan} yuan/month")
