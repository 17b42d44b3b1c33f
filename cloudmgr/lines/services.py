"""The line register: listing, planning a line's target (the classified rule enforced and every
refusal audited) and exporting.  Every path (CLI, API and pages) plans through :func:`plan_line`.

The web layer reaches the importer, the coverage table and the target rule through this module
(re-exported below): it is the domain's public face."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.audit import services as audit
from cloudmgr.db import utcnow
from cloudmgr.errors import PermissionDenied
from cloudmgr.exports import csv_text
from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.lines import coverage, importer
from cloudmgr.lines.errors import ClassifiedLineRefused, InvalidLineTarget, LineNotFound
from cloudmgr.lines.models import (
    AUDIT_TARGET,
    CARRIER_LABELS,
    LINE_TYPE_LABELS,
    STATE_LABELS,
    TARGET_LABELS,
    Carrier,
    LineState,
    LineTarget,
    LineType,
    NetworkLine,
)
from cloudmgr.lines.rules import (
    TargetDecision,
    allowed_targets,
    breaks_classified_rule,
    carries_classified,
    effective_target,
    proposed_target,
)
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor

log = logging.getLogger(__name__)

__all__ = [
    "AUDIT_TARGET",
    "CITIES",
    "COLUMNS",
    "FIELD_NAMES",
    "MAX_IMPORT_BYTES",
    "CoverageRow",
    "ImportResult",
    "TargetDecision",
    "allowed_targets",
    "breaks_classified_rule",
    "carries_classified",
    "declare_line",
    "extranet_coverage",
    "import_lines",
    "proposed_target",
]

# The importer, the coverage table and the rule, for the pages and the API (see the docstring).
import_lines = importer.import_lines
declare_line = importer.declare_line
ImportResult = importer.ImportResult
COLUMNS = importer.COLUMNS
FIELD_NAMES = importer.FIELD_NAMES
MAX_IMPORT_BYTES = importer.MAX_BYTES
extranet_coverage = coverage.extranet_coverage
CoverageRow = coverage.CoverageRow
CITIES = coverage.CITIES
PLANNED_ACTION = "network_line.plan"
REFUSED_ACTION = "network_line.placement_refused"

#: States in which a line's target may still be (re)planned.
PLANNABLE_STATES = frozenset({LineState.IN_SERVICE, LineState.PLANNED})


@dataclass(frozen=True)
class LineFilter:
    department_id: int | None = None
    #: the line's target: the planned one, else the one by rule
    target: LineTarget | None = None
    carrier: Carrier | None = None
    line_type: LineType | None = None
    state: LineState | None = None
    #: either end in this city (and county)
    city: str | None = None
    county: str | None = None
    #: a piece of the code, a site or a place (either end), case-insensitive
    search: str | None = None

    def matches(self, line: NetworkLine) -> bool:
        if self.target is not None and effective_target(line) != self.target:
            return False
        if self.carrier is not None and line.carrier != self.carrier:
            return False
        if self.line_type is not None and line.line_type != self.line_type:
            return False
        if self.state is not None and line.state != self.state:
            return False
        ends = ((line.a_city, line.a_county), (line.b_city, line.b_county))
        if self.city and not any(c == self.city and (not self.county or k == self.county) for c, k in ends):
            return False
        if self.county and not self.city and not any(k == self.county for _c, k in ends):
            return False
        if self.search:
            needle = self.search.strip().casefold()
            haystack = (
                line.code, line.a_site, line.a_city, line.a_county, line.a_township,
                line.b_site, line.b_city, line.b_county, line.b_township,
            )  # fmt: skip
            if not any(needle in value.casefold() for value in haystack):
                return False
        return True


def _loaded() -> Select[tuple[NetworkLine]]:
    return select(NetworkLine).options(
        selectinload(NetworkLine.department),
        selectinload(NetworkLine.systems).selectinload(LegacySystem.server_room),
        selectinload(NetworkLine.rooms),
    )


def list_lines(session: Session, flt: LineFilter | None = None, *, actor: Actor | None = None) -> list[NetworkLine]:
    """Lines by department and code; a department user sees only their own department's."""
    flt = flt or LineFilter()
    query = _loaded().order_by(NetworkLine.department_id, NetworkLine.code)
    scope = actor.department_scope if actor is not None else None
    if scope is not None:
        query = query.where(NetworkLine.department_id == scope)
    if flt.department_id is not None:
        query = query.where(NetworkLine.department_id == flt.department_id)
    lines: Sequence[NetworkLine] = session.scalars(query).all()
    return [line for line in lines if flt.matches(line)]


def classified_conflicts(session: Session, *, actor: Actor | None = None) -> list[NetworkLine]:
    """Lines planned onto or cut over to the extranet or the internet that now carry classified business
    (a system classified since): they must move to the intranet."""
    return [line for line in list_lines(session, actor=actor) if breaks_classified_rule(line)]


#: The targets and states inside refusals, in the reader's language (the pages' own words for them).
TARGET_WORDS: dict[LineTarget, Message] = {
    LineTarget.INTRANET: Message(N_("E-government intranet")),
    LineTarget.EXTRANET: Message(N_("E-government extranet")),
    LineTarget.INTERNET: Message(N_("Internet")),
    LineTarget.RETIRE: Message(N_("Retire")),
}
STATE_WORDS: dict[LineState, Message] = {
    LineState.IN_SERVICE: Message(N_("In service")),
    LineState.PLANNED: Message(N_("Cut-over planned")),
    LineState.CUT_OVER: Message(N_("Cut over onto its target")),
    LineState.RETIRED: Message(N_("Line retired")),
}
OPERATORS_ONLY = Message(N_("Only operators plan and record line cut-overs."))


def get_line(session: Session, code: str, *, actor: Actor | None = None) -> NetworkLine:
    line: NetworkLine | None = session.scalars(_loaded().where(NetworkLine.code == code)).one_or_none()
    if line is None or (actor is not None and not actor.can_see_department(line.department_id)):
        raise LineNotFound(message(N_("There is no line numbered %(code)s."), code=repr(code)))
    return line


def get_line_by_id(session: Session, line_id: int, *, actor: Actor) -> NetworkLine:
    """One line by its id; another department's line is not found (the department wall)."""
    line: NetworkLine | None = session.scalars(_loaded().where(NetworkLine.id == line_id)).one_or_none()
    if line is None or not actor.can_see_department(line.department_id):
        raise LineNotFound(message(N_("There is no line with id %(id)d."), id=line_id))
    return line


def line_places(session: Session, *, actor: Actor | None = None) -> dict[str, list[str]]:
    """The cities (the 11 first, in their order) and, for each, the counties the register's lines end in:
    what a cut-over batch can be planned for."""
    places: dict[str, set[str]] = {city: set() for city in CITIES}
    for line in list_lines(session, actor=actor):
        for city, county in ((line.a_city, line.a_county), (line.b_city, line.b_county)):
            places.setdefault(city, set())
            if county:
                places[city].add(county)
    return {city: sorted(counties) for city, counties in places.items()}


@dataclass(frozen=True)
class LinkChoices:
    """What a department's line may carry: its legacy systems (hostname, classified) and server rooms
    (code, Chinese name, English name)."""

    systems: list[tuple[str, bool]]
    rooms: list[tuple[str, str, str]]


def link_choices(session: Session, department_id: int) -> LinkChoices:
    systems = session.execute(
        select(LegacySystem.hostname, LegacySystem.classification)
        .where(LegacySystem.department_id == department_id)
        .order_by(LegacySystem.hostname)
    )
    rooms = session.execute(
        select(ServerRoom.code, ServerRoom.name_zh, ServerRoom.name_en)
        .where(ServerRoom.department_id == department_id)
        .order_by(ServerRoom.code)
    )
    return LinkChoices(
        systems=[(row.hostname, row.classification == "classified") for row in systems],
        rooms=[(row.code, row.name_zh, row.name_en) for row in rooms],
    )


def parse_target(value: str) -> LineTarget:
    """A target from its code (intranet, extranet, internet, retire) or its Chinese name."""
    text = value.strip()
    for target in LineTarget:
        if text in (target.value, TARGET_LABELS[target]):
            return target
    names = ", ".join(f"{t.value} ({TARGET_LABELS[t]})" for t in LineTarget)
    raise InvalidLineTarget(
        message(N_("Target %(value)s is not valid; use one of: %(choices)s"), value=repr(value[:64]), choices=names)
    )


def ensure_target_allowed(
    session: Session, line: NetworkLine, target: LineTarget, *, actor: Actor, entry_point: str
) -> None:
    """Refuse a target the rule forbids.  A classified line onto the extranet or the internet is refused
    and the refusal audited (the record survives the caller's rollback)."""
    if target in allowed_targets(line):
        return
    if carries_classified(line):
        refusal = message(
            N_(
                "Line %(code)s carries classified business: it may only go to the e-government intranet or be "
                "retired, never to %(target)s."
            ),
            code=line.code,
            target=TARGET_WORDS[target],
        )
        audit.record_surviving_rollback(
            session,
            actor=actor.username,
            action=REFUSED_ACTION,
            target_type=AUDIT_TARGET,
            target_id=line.id,
            reason=refusal,
            detail={"code": line.code, "target": target.value, "entry_point": entry_point},
        )
        log.warning(
            "refused planning classified line %s onto %s via %s by %s", line.code, target, entry_point, actor.username
        )
        raise ClassifiedLineRefused(refusal, line_id=line.id, code=line.code, entry_point=entry_point)
    raise InvalidLineTarget(
        message(
            N_(
                "Line %(code)s carries no classified business: the e-government intranet carries only classified "
                "business; use the extranet or the internet."
            ),
            code=line.code,
        )
    )


def plan_line(
    session: Session,
    code: str,
    target: LineTarget | str,
    *,
    actor: Actor,
    entry_point: str,
    on: date | None = None,
) -> NetworkLine:
    """Plan a line's cut-over onto ``target`` (operators and administrators).

    ``entry_point`` names the path for the audit log ("cli", "api", "page")."""
    if actor.is_department:
        raise PermissionDenied(OPERATORS_ONLY)
    line = get_line(session, code, actor=actor)
    chosen = target if isinstance(target, LineTarget) else parse_target(target)
    ensure_target_allowed(session, line, chosen, actor=actor, entry_point=entry_point)
    # a line cut over to the extranet that carries classified business since may (must) be planned again
    if line.state not in PLANNABLE_STATES and not breaks_classified_rule(line):
        raise InvalidLineTarget(
            message(
                N_("Line %(code)s cannot be planned again: %(state)s."), code=line.code, state=STATE_WORDS[line.state]
            )
        )
    before = line.target
    line.target = chosen
    line.state = LineState.PLANNED
    line.planned_by = actor.username
    line.planned_at = utcnow()
    if on is not None:
        line.cutover_date = on
    audit.record(
        session,
        actor=actor.username,
        action=PLANNED_ACTION,
        target_type=AUDIT_TARGET,
        target_id=line.id,
        reason=message(
            N_("planned onto %(target)s (%(entry_point)s)"), target=TARGET_WORDS[chosen], entry_point=entry_point
        ),
        detail={
            "code": line.code,
            "from": before.value if before else None,
            "to": chosen.value,
            "by_rule": proposed_target(line).target.value,
            "date": on.isoformat() if on else None,
            "entry_point": entry_point,
        },
    )
    session.flush()
    return line


EXPORT_HEADER = (
    "编号", "部门", "运营商", "类型", "带宽(Mbit/s)", "A端", "A端市", "A端县", "A端乡镇", "B端", "B端市", "B端县",
    "B端乡镇", "月租(元)", "合同开始", "合同结束", "涉密", "面向公众", "规则目标", "规划目标", "状态", "承载系统",
)  # fmt: skip


def export_csv(lines: Sequence[NetworkLine]) -> str:
    """The lines as CSV for a spreadsheet; every text cell neutralised against formula injection."""
    rows = []
    for line in lines:
        rows.append(
            (
                line.code, line.department.name_zh, CARRIER_LABELS[line.carrier], LINE_TYPE_LABELS[line.line_type],
                line.bandwidth_mbps, line.a_site, line.a_city, line.a_county, line.a_township, line.b_site,
                line.b_city, line.b_county, line.b_township, line.monthly_rent, line.contract_start.isoformat(),
                line.contract_end.isoformat(), "是" if carries_classified(line) else "否",
                "是" if line.public_facing else "否", TARGET_LABELS[proposed_target(line).target],
                TARGET_LABELS[line.target] if line.target else "", STATE_LABELS[line.state],
                " ".join(s.hostname for s in line.systems),
            )
        )  # fmt: skip
    return csv_text(EXPORT_HEADER, rows)


RECORDED_ACTION = "network_line.transition"


def record_cutover(session: Session, code: str, *, actor: Actor, entry_point: str) -> NetworkLine:
    """Record that a planned line was cut over onto its target (or retired, when the target is retirement).

    The classified rule is checked again here: a line that became classified since it was planned onto
    the extranet or the internet is refused (and audited), never cut over."""
    if actor.is_department:
        raise PermissionDenied(OPERATORS_ONLY)
    line = get_line(session, code, actor=actor)
    if line.state != LineState.PLANNED or line.target is None:
        raise InvalidLineTarget(
            message(
                N_("Line %(code)s has no cut-over planned (%(state)s): there is no cut-over to record."),
                code=line.code,
                state=STATE_WORDS[line.state],
            )
        )
    ensure_target_allowed(session, line, line.target, actor=actor, entry_point=entry_point)
    before = line.state
    line.state = LineState.RETIRED if line.target == LineTarget.RETIRE else LineState.CUT_OVER
    line.cut_over_at = utcnow()
    audit.record(
        session,
        actor=actor.username,
        action=RECORDED_ACTION,
        target_type=AUDIT_TARGET,
        target_id=line.id,
        reason=message(N_("%(state)s (%(entry_point)s)"), state=STATE_WORDS[line.state], entry_point=entry_point),
        detail={"code": line.code, "from": before.value, "to": line.state.value, "target": line.target.value,
                "entry_point": entry_point},
    )  # fmt: skip
    session.flush()
    return line


@dataclass
class BatchResult:
    planned: list[str] = field(default_factory=list)
    #: (code, its state's code) for the lines of the place left out: planned already, cut over or retired
    skipped: list[tuple[str, str]] = field(default_factory=list)


def plan_batch(
    session: Session, *, city: str, county: str | None = None, on: date, actor: Actor, entry_point: str
) -> BatchResult:
    """Plan a cut-over batch: every line in service with an end in ``city`` (and ``county``) onto its target by
    rule, on ``on``.  Each line goes through :func:`plan_line`, so the classified rule holds per line."""
    if actor.is_department:
        raise PermissionDenied(OPERATORS_ONLY)
    if not city.strip():
        raise InvalidLineTarget(Message(N_("Choose a city.")))
    result = BatchResult()
    for line in list_lines(session, actor=actor):
        ends = ((line.a_city, line.a_county), (line.b_city, line.b_county))
        if not any(c == city and (not county or k == county) for c, k in ends):
            continue
        if line.state != LineState.IN_SERVICE:
            result.skipped.append((line.code, line.state.value))
            continue
        plan_line(session, line.code, proposed_target(line).target, actor=actor, entry_point=entry_point, on=on)
        result.planned.append(line.code)
    if not result.planned and not result.skipped:
        raise LineNotFound(message(N_("There are no lines in %(place)s."), place=f"{city}{county or ''}"))
    return result


# --- finance's review of line rentals and renewals, and the network programme (issue 19) ------------------
# The pages and the API reach cloudmgr.lines.finance and cloudmgr.lines.tracking here (the domain's public
# face); imported last because the programme reads the register above.
from cloudmgr.lines import finance as _finance  # noqa: E402
from cloudmgr.lines import tracking as _tracking  # noqa: E402

RentalInput = _finance.RentalInput
Finding = _finance.Finding
RentalQueueRow = _finance.QueueRow
RENTAL_DECISIONS = _finance.DECISIONS
RENTAL_REASON_MAX = _finance.REASON_MAX
RENEWABLE_STATES = _finance.RENEWABLE
may_review_rentals = _finance.may_review
create_rental = _finance.create_rental
submit_rental = _finance.submit_rental
decide_rental = _finance.decide_rental
get_rental = _finance.get_rental
list_rentals = _finance.list_rentals
rental_review_queue = _finance.review_queue
count_rentals_waiting = _finance.count_waiting
rental_findings = _finance.findings_for
rental_ends_reached = _finance.ends_reached
rental_json = _finance.rental_json
LinesConfig = _tracking.LinesConfig
ProgrammeFigures = _tracking.Figures
ProgrammeRow = _tracking.Row
Burndown = _tracking.Burndown
EndingRow = _tracking.EndingRow
Savings = _tracking.Savings
CONTRACT_ACTIONS = _tracking.ACTIONS
ENDING_DAYS = _tracking.ENDING_DAYS
read_lines_config = _tracking.read_lines_config
programme_today = _tracking.today
programme_figures = _tracking.compute
programme_burndown = _tracking.burndown
contracts_ending = _tracking.contracts_ending
savings = _tracking.savings
