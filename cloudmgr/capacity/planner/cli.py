"""``cloudmgr plan …``: consolidation planning from an inventory CSV.

The lead registers the group in ``cloudmgr/cli.py`` with ``main.add_command(plan_group)``.
"""

from __future__ import annotations

import functools
import gc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec

import click

from cloudmgr.capacity.planner.inventory import ZONE_NAMES, read_servers_csv
from cloudmgr.capacity.planner.model import (
    DEFAULT_HEADROOM,
    DEFAULT_MAX_WAVE,
    MIB_PER_GB,
    ConsolidationPlan,
    HostSpec,
    PlannerInputError,
    Zone,
)
from cloudmgr.capacity.planner.plan import EXACT_LIMIT, EXACT_TIME_LIMIT, plan_inventory
from cloudmgr.errors import CloudmgrError

P = ParamSpec("P")


@click.group("plan")
def plan_group() -> None:
    """Capacity plans: consolidating department servers onto cloud hosts."""


def _collector_paused(command: Callable[P, None]) -> Callable[P, None]:
    """Millions of servers make millions of small objects; the cyclic garbage collector would
    walk them over and over for nothing (there are no cycles to find): pause it meanwhile."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        gc.disable()
        try:
            command(*args, **kwargs)
        finally:
            gc.enable()

    return run


@plan_group.command("consolidate")
@click.option(
    "--servers",
    "servers_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="inventory CSV: name,vcpus,ram_gb,disk_gb[,cpu_p95,ram_p95,anti_affinity,department,zone,classification]",
)
@click.option("--host-vcpus", required=True, type=click.IntRange(min=1), help="physical vCPUs (threads) per host")
@click.option("--host-ram-gb", required=True, type=click.FloatRange(min=0, min_open=True), help="RAM per host, GB")
@click.option("--host-disk-gb", required=True, type=click.FloatRange(min=0, min_open=True), help="disk per host, GB")
@click.option(
    "--cpu-ratio",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="vCPU overcommit: capacity = host vCPUs x ratio",
)
@click.option(
    "--ram-ratio",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="RAM overcommit: capacity = host RAM x ratio",
)
@click.option(
    "--max-wave",
    default=DEFAULT_MAX_WAVE,
    show_default=True,
    type=click.IntRange(min=1),
    help="at most this many servers per migration wave",
)
@click.option(
    "--headroom",
    default=DEFAULT_HEADROOM,
    show_default=True,
    type=click.FloatRange(min=1.0),
    help="right-sizing: demand = ceil(size x p95 x headroom) when p95 columns are given",
)
@click.option(
    "--default-zone",
    type=click.Choice(ZONE_NAMES),
    default=Zone.EXTRANET.value,
    show_default=True,
    help="zone of servers whose zone column is empty",
)
@click.option(
    "--exact/--no-exact",
    default=None,
    help=f"refine with the exact solver (CP-SAT); default: automatic for zones of <= {EXACT_LIMIT} servers",
)
@click.option(
    "--time-limit",
    default=EXACT_TIME_LIMIT,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="seconds the exact solver may take per zone",
)
@click.option(
    "--allow-oversized", is_flag=True, help="report servers larger than a host as unplaced instead of failing"
)
@click.option(
    "--blank-is-non-classified",
    is_flag=True,
    help="plan rows with an empty classification (and not in the legacy inventory) as non-classified; "
    "by default they are refused as unknown",
)
@click.option("--json", "as_json", is_flag=True, help="print the plan as JSON")
@_collector_paused
def consolidate(
    servers_file: Path,
    host_vcpus: int,
    host_ram_gb: float,
    host_disk_gb: float,
    cpu_ratio: float,
    ram_ratio: float,
    max_wave: int,
    headroom: float,
    default_zone: str,
    exact: bool | None,
    time_limit: float,
    allow_oversized: bool,
    blank_is_non_classified: bool,
    as_json: bool,
) -> None:
    """Plan how many hosts the servers need, where each goes, and the migration waves.

    Rows named after a legacy inventory system take the inventory's classification; classified
    rows, and rows whose classification is empty (unless --blank-is-non-classified), are refused
    and each refusal is audited."""
    from cloudmgr.capacity.planner.guard import apply_inventory_rules, audit_refusals
    from cloudmgr.cli_common import cli_system_actor
    from cloudmgr.runtime import get_runtime

    try:
        host = HostSpec(host_vcpus, host_ram_gb, host_disk_gb, cpu_ratio, ram_ratio)
        if not servers_file.is_file():
            raise PlannerInputError([f"{servers_file}: no such file"])
        try:
            inventory = read_servers_csv(servers_file, headroom=headroom, default_zone=Zone(default_zone))
        except UnicodeDecodeError as exc:
            raise PlannerInputError([f"{servers_file}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
        db = get_runtime().db
        with db.unit_of_work() as uow:  # read only: no transaction stays open while the planner works
            refusals = apply_inventory_rules(uow.session, inventory, blank_is_non_classified=blank_is_non_classified)
        plan = plan_inventory(inventory, host, max_wave=max_wave, exact=exact, time_limit=time_limit)
        with db.unit_of_work() as uow:
            audit_refusals(uow.session, refusals, actor=cli_system_actor(), entry_point="planner.cli")
        if plan.unplaced and not allow_oversized:
            raise PlannerInputError(
                [(f"line {r.line}: " if r.line else "") + f"{r.name}: {r.reason}" for r in plan.unplaced[:20]]
                + ([f"… and {len(plan.unplaced) - 20} more"] if len(plan.unplaced) > 20 else [])
            )
    except CloudmgrError as exc:
        raise click.ClickException(f"{servers_file}: {exc}") from exc
    if as_json:
        plan.write_json(sys.stdout)  # as json.dumps(plan.as_dict()) would, in slices
        sys.stdout.write("\n")
    else:
        _print_plan(plan)


def _print_plan(plan: ConsolidationPlan) -> None:
    cap = plan.capacity
    echo = click.echo
    echo(f"host capacity: {cap[0]} vCPUs, {cap[1] / MIB_PER_GB:g} GB RAM, {cap[2] / MIB_PER_GB:g} GB disk")
    echo(f"hosts needed: {plan.hosts_used}   lower bound: {plan.lower_bound}   ratio: {plan.ratio:.4f}")
    for b in plan.bounds:
        echo(
            f"  {b.zone}: {b.servers} servers, bound {b.bound} "
            f"(L1 vcpu/ram/disk {b.l1[0]}/{b.l1[1]}/{b.l1[2]}, L2 {b.l2[0]}/{b.l2[1]}/{b.l2[2]}, "
            f"anti-affinity {b.anti_affinity})"
        )
    for e in plan.exact:
        how = "lower bound reached" if e.method == "bound" else f"CP-SAT, {e.seconds:.1f} s"
        echo(f"  exact ({e.zone}): {e.status}, {e.hosts} hosts, best bound {e.best_bound}, gap {e.gap:.2%} ({how})")
    echo(f"placed: {len(plan.placements)}   refused: {len(plan.refused)}   unplaced: {len(plan.unplaced)}")
    echo("")
    echo("hosts:")
    for h in plan.hosts:
        echo(
            f"  host {h.index:>5} {h.zone:<8} {h.servers:>4} servers  "
            f"vCPU {h.vcpus:>5}/{cap[0]}  RAM {h.ram_mib / MIB_PER_GB:>8g}/{cap[1] / MIB_PER_GB:g} GB  "
            f"disk {h.disk_mib / MIB_PER_GB:>9g}/{cap[2] / MIB_PER_GB:g} GB"
        )
    echo("")
    echo(f"waves ({len(plan.waves)}):")
    for number, (wave, dept) in enumerate(zip(plan.waves, plan.wave_departments, strict=True), start=1):
        hosts = sorted({plan.placements[name] for name in wave})
        echo(f"  wave {number:>4} [{dept}] {len(wave)} servers -> hosts {_ranges(hosts)}: {', '.join(wave)}")
    if plan.refused:
        echo("")
        echo("refused:")
        for r in plan.refused:
            echo(f"  {r.name}: {r.reason}")
    if plan.unplaced:
        echo("")
        echo("unplaced:")
        for r in plan.unplaced:
            echo(f"  {r.name}: {r.reason}")


def _ranges(values: list[int]) -> str:
    out: list[str] = []
    start = prev = None
    for v in values:
        if start is None:
            start = prev = v
        elif prev is not None and v == prev + 1:
            prev = v
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = v
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(out)
