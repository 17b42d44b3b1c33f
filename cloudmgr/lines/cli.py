"""``cloudmgr lines …``: import, list and plan the departments' dedicated lines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from cloudmgr.cli_common import cli_system_actor, domain_errors
from cloudmgr.runtime import get_runtime

#: What the contracts-ending list says should happen to a line (tracking.ACTIONS' keys), in English.
ACTION_WORDS = {
    "renew": "renew",
    "cut_over_extranet": "cut over to the e-government extranet",
    "cut_over_intranet": "cut over to the e-government intranet",
    "cut_over_internet": "move to the internet",
    "retire": "retire",
}


def _target(target: str) -> str:
    """A line target in English (the domain's words for it)."""
    from cloudmgr.lines.models import LineTarget
    from cloudmgr.lines.services import TARGET_WORDS

    return str(TARGET_WORDS[LineTarget(target)])


def _state(state: str) -> str:
    """A line state in English (the domain's words for it)."""
    from cloudmgr.lines.models import LineState
    from cloudmgr.lines.services import STATE_WORDS

    return str(STATE_WORDS[LineState(state)])


@click.group("lines")
def lines_group() -> None:
    """The departments' dedicated network lines (专线) and their consolidation.

    Output is in English, like the rest of the CLI (the console says the same in the reader's
    language); place names, department keys and line numbers are data, as stored."""


@lines_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@domain_errors
def lines_import(path: Path) -> None:
    """Check and import a CSV or XLSX file of lines (every line or none)."""
    from cloudmgr.lines.errors import LinesInvalid
    from cloudmgr.lines.importer import MAX_BYTES, import_lines

    try:
        if path.stat().st_size > MAX_BYTES:
            raise click.ClickException(
                f"{path.name}: the file is too large (over {MAX_BYTES} bytes); no line was imported"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from exc
    try:
        with get_runtime().db.unit_of_work() as uow:
            result = import_lines(
                uow.session, data, filename=path.name, actor=cli_system_actor(), entry_point="lines.import.cli"
            )
    except LinesInvalid as exc:
        # the problems are the domain's messages: in English here, as every CLI error
        for row, field, reason in exc.problems:
            where = f"row {row}" if row else "the file"
            click.echo(f"{where}, {field}: {reason}", err=True)
        raise click.ClickException(exc.message) from exc
    click.echo(
        f"imported {result.total} lines from {path.name}: {result.created} new, {result.updated} updated, "
        f"{result.unchanged} unchanged"
    )
    if result.plans_cleared:
        click.echo(
            f"{len(result.plans_cleared)} lines now carry classified business; their extranet/internet "
            "cut-over plans were cancelled: " + ", ".join(result.plans_cleared),
            err=True,
        )


@lines_group.command("list")
@click.option("--department", "department_key", default=None, help="department key")
@click.option(
    "--target",
    default=None,
    help="intranet, extranet, internet or retire: the planned target, else the target by rule",
)
@domain_errors
def lines_list(department_key: str | None, target: str | None) -> None:
    """Lines with their target by rule, their planned target and state."""
    from sqlalchemy import select

    from cloudmgr.lines.rules import breaks_classified_rule, carries_classified, proposed_target
    from cloudmgr.lines.services import LineFilter, list_lines, parse_target
    from cloudmgr.organisation.models import Department

    chosen = parse_target(target) if target is not None else None
    with get_runtime().db.unit_of_work() as uow:
        department_id = None
        if department_key:
            department_id = uow.session.scalar(select(Department.id).where(Department.key == department_key))
            if department_id is None:
                raise click.ClickException(f"there is no department {department_key!r}")
        rows = list_lines(uow.session, LineFilter(department_id=department_id, target=chosen))
        rent = sum((line.monthly_rent for line in rows), start=0)
        for line in rows:
            rule = proposed_target(line)
            planned = _target(line.target) if line.target else "-"
            click.echo(
                f"{line.code:<20} {line.department.key:<24} {line.carrier.value} "
                f"{line.line_type.value} {line.bandwidth_mbps}M  {line.a_city}{line.a_county} → "
                f"{line.b_city}{line.b_county}  ¥{line.monthly_rent}/month  ends {line.contract_end}  "
                f"{'classified ' if carries_classified(line) else ''}rule: {_target(rule.target)}  "
                f"planned: {planned}{f' {line.cutover_date}' if line.cutover_date else ''}  {_state(line.state)}"
                + (
                    "  ⚠ breaks the classified rule: must move onto the e-government intranet"
                    if breaks_classified_rule(line)
                    else ""
                )
            )
        click.echo(f"{len(rows)} lines, monthly rent ¥{rent} in all")


@lines_group.command("plan")
@click.argument("code")
@click.option("--target", required=True, help="intranet, extranet, internet or retire")
@click.option("--date", "on", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="cut-over date")
@domain_errors
def lines_plan(code: str, target: str, on: datetime | None) -> None:
    """Plan a line's cut-over onto a target (a classified line: the intranet or retirement only)."""
    from cloudmgr.lines.services import parse_target, plan_line

    chosen = parse_target(target)
    with get_runtime().db.unit_of_work() as uow:
        plan_line(uow.session, code, chosen, actor=cli_system_actor(), entry_point="cli", on=on.date() if on else None)
    click.echo(f"line {code}: cut-over onto {_target(chosen)} planned" + (f" for {on:%Y-%m-%d}" if on else ""))


@lines_group.command("record")
@click.argument("code")
@domain_errors
def lines_record(code: str) -> None:
    """Record that a planned line was cut over onto its target (or retired)."""
    from cloudmgr.lines.services import record_cutover

    with get_runtime().db.unit_of_work() as uow:
        line = record_cutover(uow.session, code, actor=cli_system_actor(), entry_point="cli")
        state, target = line.state, line.target
    assert target is not None
    click.echo(f"line {code}: {_state(state)} ({_target(target)})")


@lines_group.command("seed-demo")
@domain_errors
def lines_seed_demo() -> None:
    """Create the demo departments' lines not stored yet (make run; after the demo inventory)."""
    from cloudmgr.lines.demo import seed_demo_lines

    with get_runtime().db.unit_of_work() as uow:
        created = seed_demo_lines(uow.session, actor=cli_system_actor())
    click.echo(f"demo lines: {created} new" if created else "demo lines: none new")


@lines_group.command("conflicts")
@domain_errors
def lines_conflicts() -> None:
    """Lines on (or planned onto) the extranet or the internet that now carry classified business; exits 1
    when there is one."""
    from cloudmgr.lines.services import classified_conflicts

    with get_runtime().db.unit_of_work() as uow:
        rows = classified_conflicts(uow.session)
        for line in rows:
            assert line.target is not None
            classified = [s.hostname for s in line.systems if s.is_classified or s.network == "intranet"]
            click.echo(
                f"{line.code:<20} {line.department.key:<24} {_target(line.target)} {_state(line.state)}"
                f"  classified: {', '.join(classified) or '(declared classified)'}"
            )
    if rows:
        raise click.ClickException(
            f"{len(rows)} lines carry classified business on the extranet or the internet: "
            "they must move onto the e-government intranet"
        )
    click.echo("no line breaks the classified rule")


@lines_group.command("add")
@click.option("--code", required=True, help="the carrier circuit number or the department's own code")
@click.option("--department", required=True, help="department key")
@click.option("--carrier", required=True, help="telecom, unicom, mobile, broadnet, other (or 中国电信 …)")
@click.option("--type", "line_type", required=True, help="mstp, sdh, mpls_vpn, leased_fibre, internet")
@click.option("--bandwidth", "bandwidth_mbps", required=True, help="Mbit/s")
@click.option("--a-site", required=True)
@click.option("--a-city", required=True)
@click.option("--a-county", default="")
@click.option("--a-township", default="")
@click.option("--b-site", required=True)
@click.option("--b-city", required=True)
@click.option("--b-county", default="")
@click.option("--b-township", default="")
@click.option("--rent", "monthly_rent", required=True, help="monthly rent, yuan")
@click.option("--start", "contract_start", required=True, help="contract start, YYYY-MM-DD")
@click.option("--end", "contract_end", required=True, help="contract end, YYYY-MM-DD")
@click.option("--system", "systems", multiple=True, help="hostname of a legacy system it carries (repeatable)")
@click.option("--room", "server_rooms", multiple=True, help="code of a server room it links (repeatable)")
@click.option("--classified", is_flag=True, help="carries classified business (also derived from its systems)")
@click.option("--public-facing", is_flag=True, help="serves the public")
@domain_errors
def lines_add(**options: object) -> None:
    """Declare one line, checked like an imported row."""
    from cloudmgr.lines.errors import LinesInvalid
    from cloudmgr.lines.importer import declare_line
    from cloudmgr.lines.rules import proposed_target

    values = dict(options)
    values["systems"] = " ".join(str(v) for v in options["systems"])  # type: ignore[attr-defined]
    values["server_rooms"] = " ".join(str(v) for v in options["server_rooms"])  # type: ignore[attr-defined]
    values["classified"] = "yes" if options["classified"] else "no"
    values["public_facing"] = "yes" if options["public_facing"] else "no"
    try:
        with get_runtime().db.unit_of_work() as uow:
            line = declare_line(uow.session, values, actor=cli_system_actor(), entry_point="lines.add.cli")
            target = proposed_target(line).target
    except LinesInvalid as exc:
        for _row, field, reason in exc.problems:
            click.echo(f"{field}: {reason}", err=True)
        raise click.ClickException(exc.message) from exc
    click.echo(f"line {values['code']} declared; by the rules it goes to {_target(target)}")


@lines_group.command("coverage")
@click.option("--city", default=None, help="only this city (e.g. 唐山市)")
def lines_coverage(city: str | None) -> None:
    """Whether the e-government extranet reaches each city, county and township (by the lines cut over onto it)."""
    from cloudmgr.lines.coverage import extranet_coverage

    with get_runtime().db.unit_of_work() as uow:
        rows = [r for r in extranet_coverage(uow.session) if city is None or r.place.city == city]
    for row in rows:
        p = row.place
        indent = {"city": "", "county": "  ", "township": "    "}[p.level]
        name = p.township or p.county or p.city
        click.echo(f"{indent}{name:<12} {'reached' if row.reached else 'not reached'}  lines {row.lines}")
    reached = sum(1 for r in rows if r.reached)
    click.echo(f"{reached}/{len(rows)} places reached by the e-government extranet")


@lines_group.command("batch")
@click.option("--city", required=True, help="e.g. 唐山市")
@click.option("--county", default=None, help="e.g. 迁安市")
@click.option("--date", "on", type=click.DateTime(formats=["%Y-%m-%d"]), required=True, help="cut-over date")
@domain_errors
def lines_batch(city: str, county: str | None, on: datetime) -> None:
    """Plan a cut-over batch: every line in service ending in the city (county) onto its target by rule."""
    from cloudmgr.lines.models import LineState
    from cloudmgr.lines.services import plan_batch

    with get_runtime().db.unit_of_work() as uow:
        result = plan_batch(
            uow.session, city=city, county=county, on=on.date(), actor=cli_system_actor(), entry_point="batch.cli"
        )
    for code, why in result.skipped:
        click.echo(f"skipped {code} ({_state(LineState(why))})")
    planned = ", ".join(result.planned)
    click.echo(f"{city}{county or ''}: {len(result.planned)} lines planned to cut over on {on:%Y-%m-%d}: {planned}")


# --- the network programme and finance (issue 19): contracts ending, savings, burndown ---------------------


@lines_group.command("contracts-ending")
@click.option("--days", type=click.IntRange(1, 3650), default=90, show_default=True, help="ending within")
@domain_errors
def lines_contracts_ending(days: int) -> None:
    """Line contracts ending within DAYS (or ended, the line still rented) and what should happen to each."""
    from cloudmgr.lines import tracking

    with get_runtime().db.unit_of_work() as uow:
        rows = tracking.contracts_ending(uow.session, tracking.today(), days=days)
        for r in rows:
            left = f"ends in {r.days_left} days" if r.days_left >= 0 else f"ended {-r.days_left} days ago"
            click.echo(
                f"{r.line.code:<20} {r.line.department.key:<24} {r.line.contract_end}  {left:<20} "
                f"¥{r.line.monthly_rent}/month  {ACTION_WORDS.get(r.action, r.action)}: {r.reason}"
            )
    click.echo(f"{len(rows)} line contracts end within {days} days")


@lines_group.command("savings")
@click.option("--year", type=click.IntRange(2000, 2100), default=None, help="only lines cut over or retired that year")
@click.option("--by", "group", type=click.Choice(["year", "department", "city", "rows"]), default="rows")
@domain_errors
def lines_savings(year: int | None, group: str) -> None:
    """Monthly rent no longer paid (lines cut over or retired), by year, department and city."""
    from cloudmgr.lines import tracking

    with get_runtime().db.unit_of_work() as uow:
        sv = tracking.savings(uow.session, year=year)
    if group == "rows":
        for row in sv.rows:
            click.echo(
                f"{row.year}  {row.department_key:<24} {row.city:<8} {row.lines:>3} lines  ¥{row.monthly_rent}/month"
            )
    else:
        if group == "year":
            groups = [(str(y), n, rent) for y, n, rent in sv.by_year]
        else:
            groups = sv.by_department if group == "department" else sv.by_city
        for key, n, rent in groups:
            click.echo(f"{key!s:<24} {n:>3} lines  ¥{rent}/month")
    click.echo(f"in all {sv.lines} lines, monthly rent saved ¥{sv.monthly_rent} (¥{sv.monthly_rent * 12} a year)")


@lines_group.command("burndown")
@click.option("--department", "department_key", default=None, help="one department (key)")
@click.option("--city", default=None, help="lines whose B end is in this city (e.g. 唐山市)")
@domain_errors
def lines_burndown(department_key: str | None, city: str | None) -> None:
    """Lines and monthly rent still rented at each month's end, and each department's status against the
    network deadline (at risk: at the last 90 days' pace the remaining lines are not done by it)."""
    from sqlalchemy import select

    from cloudmgr.lines import tracking
    from cloudmgr.organisation.models import Department

    config = tracking.read_lines_config(get_runtime().settings.programme_file)
    when = tracking.today()
    with get_runtime().db.unit_of_work() as uow:
        department_id = None
        if department_key:
            department_id = uow.session.scalar(select(Department.id).where(Department.key == department_key))
            if department_id is None:
                raise click.ClickException(f"there is no department {department_key!r}")
        burn = tracking.burndown(uow.session, config, when, department_id=department_id, city=city)
        figures = tracking.compute(uow.session, config, when, department_id=department_id)
    label = config.deadline.label_en or config.deadline.label_zh
    click.echo(f"deadline {config.deadline.date}" + (f" ({label})" if label else "") + f", as of {when}")
    for day, n, rent in burn.points:
        click.echo(f"{day}  {n:>4} lines left  monthly rent ¥{rent}")
    status = {"done": "done", "on_track": "on track", "at_risk": "at risk", "overdue": "overdue"}
    for row in figures.departments:
        finish = row.projected_finish.isoformat() if row.projected_finish else "no pace"
        click.echo(
            f"{row.key:<24} {status[row.status]:<9} {row.remaining}/{row.total} lines left  "
            f"monthly rent left ¥{row.rent_remaining}  projected finish {finish}"
        )
