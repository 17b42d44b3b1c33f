"""``cloudmgr inventory …``: import, list and show the legacy systems."""

from __future__ import annotations

from pathlib import Path

import click

from cloudmgr.cli_common import cli_system_actor, domain_errors
from cloudmgr.console import acting_user_options, console_actor
from cloudmgr.runtime import get_runtime


@click.group("inventory")
def inventory() -> None:
    """Legacy systems in the departments' server rooms (the Ansible inventory)."""


@inventory.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--only-new",
    is_flag=True,
    help="import only hosts cloudmgr does not have yet; leave every stored system as it is (make run)",
)
@domain_errors
def inventory_import(path: Path, only_new: bool) -> None:
    """Validate and import an Ansible YAML inventory or a CSV (all hosts or none).

    A lower classification than the stored one is not applied: it waits for an
    administrator's approval (`cloudmgr inventory declassifications`)."""
    from cloudmgr.inventory.errors import InventoryInvalid
    from cloudmgr.inventory.importer import import_inventory

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from exc
    try:
        with get_runtime().db.unit_of_work() as uow:
            result = import_inventory(
                uow.session,
                text,
                filename=path.name,
                actor=cli_system_actor(),
                entry_point="inventory.import.cli",
                only_new=only_new,
            )
    except InventoryInvalid as exc:
        for host, reason in exc.problems:
            click.echo(f"{host}: {reason}", err=True)
        raise click.ClickException(exc.message) from exc
    click.echo(
        f"imported {result.total} system(s) from {path.name}: {result.created} new, {result.updated} updated, "
        f"{result.unchanged} unchanged; {result.out_of_scope} classified/intranet (out of scope); "
        f"{result.rooms_created} new server room(s)"
        + (f"; {result.skipped_existing} already stored, left as they are" if only_new else "")
    )
    if result.declassifications_held:
        click.echo(
            f"{result.declassifications_held} declassification(s) held for an administrator's approval "
            f"(not applied): {', '.join(result.held_hosts)}"
        )
    if result.alerts_raised:
        click.echo(f"{result.alerts_raised} system(s) classified with servers on the cloud: see the alerts", err=True)


@inventory.command("list")
@click.option("--department", "department_key", default=None, help="department key")
@click.option("--state", default=None, help="legacy, intranet, planned, migrating, on_cloud, rolled_back, …")
@click.option("--scope", type=click.Choice(["in", "out"]), default=None, help="in: non-classified internet/extranet")
def inventory_list(department_key: str | None, state: str | None, scope: str | None) -> None:
    """Systems from easy to hard (complexity score); classified ones listed separately."""
    from sqlalchemy import select

    from cloudmgr.inventory.services import SystemFilter, list_systems
    from cloudmgr.organisation.models import Department

    with get_runtime().db.unit_of_work() as uow:
        department_id = None
        if department_key:
            department_id = uow.session.scalar(select(Department.id).where(Department.key == department_key))
            if department_id is None:
                raise click.ClickException(f"unknown department {department_key!r}")
        rows, total = list_systems(uow.session, SystemFilter(department_id=department_id, state=state, scope=scope))
        in_scope = [s for s in rows if s.in_scope]
        out_scope = [s for s in rows if not s.in_scope]
        for title, systems in (("in scope", in_scope), ("classified / intranet (out of scope)", out_scope)):
            if not systems:
                continue
            click.echo(f"-- {title}: {len(systems)}")
            for s in systems:
                click.echo(
                    f"#{s.id:<4} {s.hostname:<22} {s.state:<14} {s.complexity_score:>4}  {s.department.key:<22} "
                    f"{s.network:<9} {s.os_name} {s.os_version}  {s.application_system}"
                )
        click.echo(f"{total} system(s)")


@inventory.command("show")
@click.argument("hostname")
@domain_errors
def inventory_show(hostname: str) -> None:
    """One system: its variables, complexity reasons and history."""
    from cloudmgr.inventory.services import dependants, get_system_by_hostname, state_history

    with get_runtime().db.unit_of_work() as uow:
        s = get_system_by_hostname(uow.session, hostname)
        click.echo(
            f"{s.hostname} (#{s.id}) {s.state}" + ("  [classified: stays on the intranet]" if s.is_classified else "")
        )
        click.echo(f"  department   {s.department.key} ({s.department.name_zh})")
        click.echo(f"  server room  {s.server_room.code} ({s.server_room.name_zh})")
        click.echo(f"  application  {s.application_system}")
        click.echo(f"  class/net    {s.classification} / {s.network}")
        click.echo(f"  os           {s.os_family}: {s.os_name} {s.os_version}")
        click.echo(f"  size         {s.vcpus} vCPU, {s.ram_mb} MB RAM, {s.disk_gb} GB disk, {s.data_gb} GB data")
        click.echo(f"  use (p95)    CPU {s.cpu_p95_pct:g}%, RAM {s.ram_p95_pct:g}%")
        click.echo(f"  depends on   {', '.join(s.dependencies) or '-'}")
        click.echo(f"  used by      {', '.join(dependants(uow.session, s)) or '-'}")
        click.echo(f"  owner        {s.owner_name} {s.owner_contact}")
        click.echo(f"  ansible_host {s.ansible_host or '-'}")
        click.echo(f"  complexity   {s.complexity_score}")
        for reason in s.complexity_reasons:
            click.echo(f"    +{reason['points']:<3} {reason['code']}: {reason['detail']}")
        click.echo("  history")
        for event in state_history(uow.session, s):
            click.echo(f"    {event.at:%Y-%m-%d %H:%M} {event.actor}: {event.action} {event.reason or ''}")


@inventory.command("set-target")
@click.argument("hostname")
@click.option("--cloud", "cloud_key", required=True, help="the cloud the system moves to")
@domain_errors
def inventory_set_target(hostname: str, cloud_key: str) -> None:
    """Choose the cloud a system moves to (refused for a classified system)."""
    from cloudmgr.inventory.planning import set_target_cloud

    with get_runtime().db.unit_of_work() as uow:
        set_target_cloud(uow.session, hostname, cloud_key, actor=cli_system_actor(), entry_point="cli")
    click.echo(f"{hostname} will move to {cloud_key}")


@inventory.command("plan")
@click.option("--host-vcpus", default=64, show_default=True, type=click.IntRange(1, 100000))
@click.option("--host-ram-gb", default=512.0, show_default=True, type=click.FloatRange(0.001, 10**7))
@click.option("--host-disk-gb", default=4000.0, show_default=True, type=click.FloatRange(0.001, 10**9))
@click.option("--department", "department_key", default=None, help="department key")
@domain_errors
def inventory_plan(host_vcpus: int, host_ram_gb: float, host_disk_gb: float, department_key: str | None) -> None:
    """Cloud hosts needed for the systems still to move; classified systems are refused."""
    from sqlalchemy import select

    from cloudmgr.inventory.planning import plan_systems
    from cloudmgr.organisation.models import Department

    with get_runtime().db.unit_of_work() as uow:
        department_id = None
        if department_key:
            department_id = uow.session.scalar(select(Department.id).where(Department.key == department_key))
            if department_id is None:
                raise click.ClickException(f"unknown department {department_key!r}")
        result = plan_systems(
            uow.session,
            host_vcpus=host_vcpus,
            host_ram_gb=host_ram_gb,
            host_disk_gb=host_disk_gb,
            actor=cli_system_actor(),
            department_id=department_id,
        )
    plan = result.plan
    click.echo(
        f"{result.systems} system(s) to place: {plan.hosts_used} host(s) needed "
        f"(lower bound {plan.lower_bound}), {len(plan.waves)} wave(s)"
    )
    for hostname in result.refused:
        click.echo(f"refused (classified: stays on the intranet): {hostname}")


# --- declassification approvals and reclassification alerts (issue 14) ----------------------------


@inventory.command("declassifications")
@click.option("--state", type=click.Choice(["pending", "approved", "rejected"]), default="pending", show_default=True)
def inventory_declassifications(state: str) -> None:
    """Requests to lower a system's classification, waiting for (or decided by) an administrator."""
    from cloudmgr.inventory.reclassification import list_requests

    with get_runtime().db.unit_of_work() as uow:
        rows = list_requests(uow.session, state=state)
        for r in rows:
            click.echo(
                f"#{r.id:<4} {r.system.hostname:<22} {r.from_classification}/{r.from_network} -> "
                f"{r.to_classification}/{r.to_network}  {r.state}  asked by {r.requested_by} "
                f"{r.requested_at:%Y-%m-%d %H:%M} via {r.entry_point}  {r.reason}"
                + (f"  decided by {r.decided_by}: {r.decision_reason or ''}" if r.decided_by else "")
            )
        click.echo(f"{len(rows)} request(s)")


@inventory.command("decide-declassification")
@click.argument("request_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--approve/--reject", "approve", required=True)
@acting_user_options("the administrator deciding (not the requester)")
@click.option("--reason", default="", help="why (required to reject)")
@domain_errors
def inventory_decide_declassification(
    request_id: int, approve: bool, username: str, password: str, reason: str
) -> None:
    """Approve or reject a declassification request (administrators, by their password; never your own)."""
    from cloudmgr.inventory import reclassification

    actor = console_actor(username, password)
    with get_runtime().db.unit_of_work() as uow:
        decide = reclassification.approve if approve else reclassification.reject
        request = decide(uow.session, request_id, actor=actor, reason=reason)
        hostname, state = request.system.hostname, request.state
    click.echo(f"declassification #{request_id} of {hostname}: {state}")


@inventory.command("alerts")
def inventory_alerts() -> None:
    """Open alerts: systems classified while servers for them run on the cloud."""
    from cloudmgr.inventory.reclassification import open_alerts

    with get_runtime().db.unit_of_work() as uow:
        views = open_alerts(uow.session)
        for view in views:
            a = view.alert
            click.echo(
                f"#{a.id:<4} {a.system.hostname:<22} raised {a.raised_at:%Y-%m-%d %H:%M} by {a.raised_by}; "
                f"still on the cloud: {', '.join(view.servers_now) or 'nothing (close it)'}"
            )
        click.echo(f"{len(views)} open alert(s)")


@inventory.command("close-alert")
@click.argument("alert_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--reason", default="", help="required while servers are still on the cloud")
@domain_errors
def inventory_close_alert(alert_id: int, reason: str) -> None:
    """Close a reclassification alert (resolved, or acknowledged with a reason)."""
    from cloudmgr.inventory.reclassification import close_alert

    with get_runtime().db.unit_of_work() as uow:
        alert = close_alert(uow.session, alert_id, actor=cli_system_actor(), reason=reason)
        state = alert.state
    click.echo(f"alert #{alert_id}: {state}")
