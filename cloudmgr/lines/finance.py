"""Finance's review of line rentals and renewals, decided here once for every path (page, API, CLI).

A department asks to rent a new line or to renew a line's contract (draft → submitted); finance approves
or blocks it (a block needs a reason).  Who decided, when and why are written (with the audit event)
before anything else the decision changes: an approved renewal then extends the line's contract and
sets its new rent.

**Findings** beside each request (:func:`findings_for`):

* ``extranet_reaches`` (a flag): the line is non-classified and not for public services, and the
  e-government extranet already reaches the places of both its ends (:mod:`cloudmgr.lines.coverage`):
  the extranet can carry it instead of a rented line;
* ``retire_by_rule`` (a flag, renewals): every system the line carries is on the cloud and its rooms
  are closed, so the rule says retire it (:func:`cloudmgr.lines.rules.proposed_target`);
* ``cutover_planned`` (a flag, renewals): its cut-over is planned before the new contract would end;
* ``classified`` (information): the line carries classified business, so the extranet is no
  alternative (the intranet is).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.audit import services as audit
from cloudmgr.db import utcnow
from cloudmgr.errors import PermissionDenied
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.lines.coverage import Place, extranet_coverage
from cloudmgr.lines.errors import LineNotFound, RentalInvalid, RentalNotFound, RentalTransitionInvalid
from cloudmgr.lines.finance_models import (
    BASIS_LABELS,
    BlockBasis,
    LineRentalRequest,
    RentalKind,
    RentalState,
)
from cloudmgr.lines.models import Carrier, LineState, LineTarget, LineType, NetworkLine
from cloudmgr.lines.rules import carries_classified, proposed_target
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role

AUDIT_TARGET = "network_line_rental"
REASON_MAX = 1000
PURPOSE_MAX = 1000
MAX_RENT = Decimal("10000000")
MAX_BANDWIDTH = 1_000_000
MAX_YEARS = 10
#: Which transitions exist: (from, action) -> to.
MACHINE: dict[tuple[RentalState, str], RentalState] = {
    (RentalState.DRAFT, "submit"): RentalState.SUBMITTED,
    (RentalState.SUBMITTED, "approve"): RentalState.APPROVED,
    (RentalState.SUBMITTED, "block"): RentalState.BLOCKED,
}
DECISIONS = ("approve", "block")
READ_ONLY_TEXT = N_("Only finance, operators and administrators read every department's line requests.")
RENT_FIELD = N_("Monthly rent (yuan)")
START_FIELD = N_("Contract starts")
END_FIELD = N_("Contract ends")
LINE_FIELD = N_("Line to renew")
BASIS_FIELD = N_("Blocked because")
END_FIELDS = {
    "a": {"site": N_("A end: site"), "city": N_("A end: city"), "county": N_("A end: county"),
          "township": N_("A end: township")},
    "b": {"site": N_("B end: site"), "city": N_("B end: city"), "county": N_("B end: county"),
          "township": N_("B end: township")},
}  # fmt: skip
#: Lines whose contract may be renewed: still rented.
RENEWABLE = frozenset({LineState.IN_SERVICE, LineState.PLANNED})


def _refuse(field: str, text: str, **params: Any) -> NoReturn:
    problem = _problem(field, text, **params)
    raise RentalInvalid(problem, [problem])


def may_review(actor: Actor) -> bool:
    """Finance decides line rentals (as it decides hardware purchases)."""
    return actor.role == Role.FINANCE


def may_read_all(actor: Actor) -> bool:
    return actor.role in {Role.FINANCE, Role.OPERATOR, Role.ADMIN}


# --- findings --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    kind: str  # extranet_reaches | retire_by_rule | cutover_planned | classified
    severity: str  # flag | info
    message: Message  # for people, in their language where it is shown
    places: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Stored and answered: the English text, and the msgid and parameters a page translates."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": str(self.message),
            "msgid": self.message.msgid,
            "params": {k: _stored(v) for k, v in self.message.params.items()},
            "places": list(self.places),
        }


def _stored(value: object) -> object:
    return {"msgid": value.msgid, "params": dict(value.params)} if isinstance(value, Message) else value


CLASSIFIED_TEXT = N_(
    "It carries classified business: the extranet is no alternative; it belongs on the e-government intranet."
)
EXTRANET_TEXT = N_("The e-government extranet already reaches %(places)s: cut over to it instead of renting a line.")
RETIRE_TEXT = N_("Every system it carries is on the cloud and its server rooms are closed: retire it, do not renew.")
CUTOVER_TEXT = N_("Its cut-over onto %(target)s is planned for %(date)s, before the new contract would end.")
#: A target's name, translated where it is shown.
TARGET_WORDS = {
    LineTarget.INTRANET: Message(N_("E-government intranet")),
    LineTarget.EXTRANET: Message(N_("E-government extranet")),
    LineTarget.INTERNET: Message(N_("Internet")),
    LineTarget.RETIRE: Message(N_("Retire")),
}


def _place_of(city: str, county: str, township: str) -> Place:
    return Place(city, county, township if county else "")


def _place_name(place: Place) -> str:
    return place.city + place.county + place.township


def reached_places(session: Session) -> set[Place]:
    """The places (cities, counties, townships) the extranet reaches now."""
    return {row.place for row in extranet_coverage(session) if row.reached}


def findings_for(session: Session, rental: LineRentalRequest, *, reached: set[Place] | None = None) -> list[Finding]:
    reached = reached_places(session) if reached is None else reached
    line = rental.line
    classified = rental.declared_classified or (line is not None and carries_classified(line))
    out: list[Finding] = []
    if classified:
        text = CLASSIFIED_TEXT
        out.append(Finding("classified", "info", Message(text)))
    ends = (
        _place_of(rental.a_city, rental.a_county, rental.a_township),
        _place_of(rental.b_city, rental.b_county, rental.b_township),
    )
    if not classified and not rental.public_facing and all(end in reached for end in ends):
        names = tuple(dict.fromkeys(_place_name(end) for end in ends))
        out.append(
            Finding(
                "extranet_reaches",
                "flag",
                message(
                    EXTRANET_TEXT,
                    places=", ".join(names),
                ),
                names,
            )
        )
    if line is not None and rental.kind == RentalKind.RENEWAL:
        if proposed_target(line).target == LineTarget.RETIRE:
            text = RETIRE_TEXT
            out.append(Finding("retire_by_rule", "flag", Message(text)))
        elif line.state == LineState.PLANNED and line.cutover_date and line.cutover_date <= rental.contract_end:
            target = TARGET_WORDS[line.target] if line.target else ""
            text = CUTOVER_TEXT
            out.append(
                Finding("cutover_planned", "flag", message(text, target=target, date=line.cutover_date.isoformat()))
            )
    return out


def default_basis(findings: list[dict[str, Any]]) -> BlockBasis:
    kinds = {f.get("kind") for f in findings}
    if "extranet_reaches" in kinds:
        return BlockBasis.EXTRANET_REACHES
    if "retire_by_rule" in kinds:
        return BlockBasis.RETIRE
    return BlockBasis.OTHER


# --- reading -----------------------------------------------------------------------------------------


def _query() -> Any:
    return select(LineRentalRequest).options(
        selectinload(LineRentalRequest.department),
        selectinload(LineRentalRequest.line).selectinload(NetworkLine.systems).selectinload(LegacySystem.server_room),
        selectinload(LineRentalRequest.line).selectinload(NetworkLine.rooms),
    )


def get_rental(session: Session, actor: Actor, rental_id: int) -> LineRentalRequest:
    """One request; another department's is not found (department users see their own only)."""
    rental: LineRentalRequest | None = session.scalars(_query().where(LineRentalRequest.id == rental_id)).one_or_none()
    if rental is None or not actor.can_see_department(rental.department_id):
        raise RentalNotFound(message(N_("There is no line request #%(id)d."), id=rental_id))
    return rental


def list_rentals(session: Session, actor: Actor, *, state: RentalState | None = None) -> list[LineRentalRequest]:
    """Newest first; a department user sees their own department's only."""
    query = _query().order_by(LineRentalRequest.id.desc())
    if actor.department_scope is not None:
        query = query.where(LineRentalRequest.department_id == actor.department_scope)
    elif not may_read_all(actor):
        raise PermissionDenied(Message(READ_ONLY_TEXT))
    if state is not None:
        query = query.where(LineRentalRequest.state == state)
    return list(session.scalars(query))


@dataclass(frozen=True)
class QueueRow:
    rental: LineRentalRequest
    findings: list[Finding]

    @property
    def flagged(self) -> bool:
        return any(f.severity == "flag" for f in self.findings)


def review_queue(session: Session, actor: Actor) -> list[QueueRow]:
    """Submitted requests with their live findings, flagged ones first, then the oldest."""
    if not may_read_all(actor):
        raise PermissionDenied(Message(READ_ONLY_TEXT))
    reached = reached_places(session)
    rows = [
        QueueRow(r, findings_for(session, r, reached=reached))
        for r in list_rentals(session, actor, state=RentalState.SUBMITTED)
    ]
    rows.sort(key=lambda row: (not row.flagged, row.rental.submitted_at or row.rental.created_at, row.rental.id))
    return rows


def count_waiting(session: Session) -> int:
    query = select(func.count()).select_from(LineRentalRequest).where(LineRentalRequest.state == RentalState.SUBMITTED)
    return int(session.scalar(query) or 0)


# --- writing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RentalInput:
    """What the department fills in.  A renewal names ``line_code`` and gives the new contract and rent
    (the line's carrier, type, bandwidth and ends are copied from the register)."""

    kind: str
    monthly_rent: str
    contract_end: str
    contract_start: str = ""
    line_code: str = ""
    purpose: str = ""
    carrier: str = ""
    line_type: str = ""
    bandwidth_mbps: str = ""
    a_site: str = ""
    a_city: str = ""
    a_county: str = ""
    a_township: str = ""
    b_site: str = ""
    b_city: str = ""
    b_county: str = ""
    b_township: str = ""
    classified: bool = False
    public_facing: bool = False


def _problem(field: str, text: str, **params: Any) -> Message:
    """A problem with a field, said in the reader's language where it is shown."""
    return message(N_("%(field)s: %(message)s"), field=Message(field), message=message(text, **params))


def _date(value: str, field: str, problems: list[Message]) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        problems.append(_problem(field, N_("Enter a date as YYYY-MM-DD, not %(value)s."), value=repr(value)))
        return None


def _enum(enum_cls: type[Carrier] | type[LineType], value: str, field: str, problems: list[Message]) -> Any:
    try:
        return enum_cls(value.strip())
    except ValueError:
        choices = ", ".join(m.value for m in enum_cls)
        text = N_("%(value)s is not valid; use one of: %(choices)s")
        problems.append(_problem(field, text, value=repr(value), choices=choices))
        return None


def _text(value: str, field: str, problems: list[Message], *, required: bool, max_length: int = 64) -> str:
    text = value.strip()
    if required and not text:
        problems.append(_problem(field, N_("This field is required.")))
    elif len(text) > max_length:
        problems.append(_problem(field, N_("At most %(max)d characters."), max=max_length))
    return text


def _common(data: RentalInput, problems: list[Message]) -> tuple[Decimal | None, date | None, str]:
    rent: Decimal | None = None
    try:
        rent = Decimal(data.monthly_rent.strip())
        if not rent.is_finite() or rent <= 0 or rent > MAX_RENT or rent != rent.quantize(Decimal("0.01")):
            text = N_("Enter an amount above 0 and at most %(max)s yuan, with at most two decimals.")
            problems.append(_problem(RENT_FIELD, text, max=str(MAX_RENT)))
            rent = None
    except InvalidOperation:
        problems.append(_problem(RENT_FIELD, N_("%(value)s is not an amount in yuan."), value=repr(data.monthly_rent)))
    end = _date(data.contract_end, END_FIELD, problems)
    purpose = _text(data.purpose, N_("Why the line is needed"), problems, required=False, max_length=PURPOSE_MAX)
    return rent, end, purpose


def _check_term(start: date | None, end: date | None, problems: list[Message]) -> None:
    if start is None or end is None:
        return
    if end <= start:
        problems.append(_problem(END_FIELD, N_("The contract ends before it starts.")))
    elif end.year - start.year > MAX_YEARS:
        problems.append(_problem(END_FIELD, N_("A contract runs at most %(years)d years."), years=MAX_YEARS))


def _fill_new(rental: LineRentalRequest, data: RentalInput, problems: list[Message]) -> None:
    rental.carrier = _enum(Carrier, data.carrier, N_("Carrier"), problems)
    rental.line_type = _enum(LineType, data.line_type, N_("Line type"), problems)
    try:
        bandwidth = int(data.bandwidth_mbps.strip())
        if not 1 <= bandwidth <= MAX_BANDWIDTH:
            raise ValueError
        rental.bandwidth_mbps = bandwidth
    except ValueError:
        text = N_("Enter a whole number from 1 to %(max)d.")
        problems.append(_problem(N_("Bandwidth (Mbit/s)"), text, max=MAX_BANDWIDTH))
    for end in ("a", "b"):
        names = END_FIELDS[end]
        for part, required, limit in (("site", True, 128), ("city", True, 64), ("county", False, 64)):
            value = _text(getattr(data, f"{end}_{part}"), names[part], problems, required=required, max_length=limit)
            setattr(rental, f"{end}_{part}", value)
        township = _text(getattr(data, f"{end}_township"), names["township"], problems, required=False)
        setattr(rental, f"{end}_township", township)
    rental.declared_classified = data.classified
    rental.public_facing = data.public_facing
    rental.contract_start = _date(data.contract_start, START_FIELD, problems)  # type: ignore[assignment]


def _fill_renewal(
    session: Session, actor: Actor, rental: LineRentalRequest, data: RentalInput, problems: list[Message]
) -> None:
    code = data.line_code.strip()
    line = session.scalars(select(NetworkLine).where(NetworkLine.code == code)).one_or_none() if code else None
    if line is None or not actor.can_see_department(line.department_id):
        raise LineNotFound(message(N_("There is no line numbered %(code)s."), code=code))
    if line.state not in RENEWABLE:
        text = N_("Line %(code)s is cut over or retired: it cannot be renewed.")
        problems.append(_problem(LINE_FIELD, text, code=line.code))
    open_request = session.scalar(
        select(LineRentalRequest.id).where(
            LineRentalRequest.line_id == line.id,
            LineRentalRequest.state.in_([RentalState.DRAFT, RentalState.SUBMITTED]),
        )
    )
    if open_request is not None:
        text = N_("Line %(code)s already has a renewal waiting (#%(id)d).")
        problems.append(_problem(LINE_FIELD, text, code=line.code, id=open_request))
    rental.line, rental.line_id, rental.department_id = line, line.id, line.department_id
    for name in ("carrier", "line_type", "bandwidth_mbps", "public_facing", "declared_classified"):
        setattr(rental, name, getattr(line, name))
    for end in ("a", "b"):
        for part in ("site", "city", "county", "township"):
            setattr(rental, f"{end}_{part}", getattr(line, f"{end}_{part}"))
    start = _date(data.contract_start, START_FIELD, problems) if data.contract_start.strip() else None
    rental.contract_start = start or line.contract_end
    if start is not None and start < line.contract_start:
        problems.append(_problem(START_FIELD, N_("A renewal cannot start before the current contract started.")))


def create_rental(
    session: Session, actor: Actor, data: RentalInput, *, submit: bool, entry_point: str
) -> LineRentalRequest:
    """A department user asks to rent a new line or renew one of their department's lines (a draft, or
    submitted at once).  Every problem is reported together; nothing is stored unless all are fixed."""
    if not actor.is_department or actor.department_id is None:
        raise PermissionDenied(Message(N_("Only department users ask to rent or renew a line.")))
    try:
        kind = RentalKind(data.kind.strip())
    except ValueError as exc:
        problem = _problem(N_("Request"), N_("Choose new (a new line) or renewal (a line's contract)."))
        raise RentalInvalid(problem, [problem]) from exc
    problems: list[Message] = []
    rental = LineRentalRequest(kind=kind, state=RentalState.DRAFT, department_id=actor.department_id, findings=[])
    rent, end, purpose = _common(data, problems)
    if kind == RentalKind.RENEWAL:
        _fill_renewal(session, actor, rental, data, problems)
        if end is not None and rental.line is not None and end <= rental.line.contract_end:
            text = N_("A renewal ends after the current contract does (%(date)s).")
            problems.append(_problem(END_FIELD, text, date=rental.line.contract_end.isoformat()))
    else:
        _fill_new(rental, data, problems)
    _check_term(rental.contract_start, end, problems)
    if problems:
        summary = message(N_("The line request was not saved: %(problems)s"), problems="; ".join(map(str, problems)))
        raise RentalInvalid(summary, problems)
    assert rent is not None and end is not None
    rental.monthly_rent, rental.contract_end, rental.purpose = rent, end, purpose
    rental.created_by, rental.created_at = actor.username, utcnow()
    session.add(rental)
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="network_line_rental.create",
        target_type=AUDIT_TARGET,
        target_id=rental.id,
        detail={"kind": kind.value, "line": rental.line.code if rental.line else None, "entry_point": entry_point},
    )
    if submit:
        submit_rental(session, actor, rental.id, entry_point=entry_point)
    return rental


STATE_WORDS = {
    RentalState.DRAFT: Message(N_("Draft")),
    RentalState.SUBMITTED: Message(N_("Waiting for finance")),
    RentalState.APPROVED: Message(N_("Approved")),
    RentalState.BLOCKED: Message(N_("Blocked")),
}


def _fire(rental: LineRentalRequest, action: str) -> RentalState:
    target = MACHINE.get((rental.state, action))
    if target is None:
        text = N_("Line request #%(id)d is %(state)s: that cannot be done to it now.")
        raise RentalTransitionInvalid(message(text, id=rental.id, state=STATE_WORDS[rental.state]))
    return target


def submit_rental(session: Session, actor: Actor, rental_id: int, *, entry_point: str) -> LineRentalRequest:
    """The department sends its draft to finance; the findings are taken then."""
    if not actor.is_department:
        raise PermissionDenied(Message(N_("Only department users submit line requests.")))
    rental = get_rental(session, actor, rental_id)
    target = _fire(rental, "submit")
    findings = [f.as_dict() for f in findings_for(session, rental)]
    audit.record(
        session,
        actor=actor.username,
        action="network_line_rental.submit",
        target_type=AUDIT_TARGET,
        target_id=rental.id,
        detail={"findings": [f["kind"] for f in findings], "entry_point": entry_point},
    )
    rental.state, rental.findings = target, findings
    rental.submitted_by, rental.submitted_at = actor.username, utcnow()
    session.flush()
    return rental


def decide_rental(
    session: Session,
    actor: Actor,
    rental_id: int,
    *,
    decision: str,
    reason: str = "",
    basis: str | None = None,
    entry_point: str,
) -> LineRentalRequest:
    """Finance approves or blocks a submitted request (blocking needs a reason; the basis defaults to the
    strongest finding).  The decision and its audit event are written first; then an approved renewal
    extends the line's contract and sets its rent."""
    if not may_review(actor):
        raise PermissionDenied(Message(N_("Only finance decides line requests.")))
    if decision not in DECISIONS:
        _refuse(N_("Decision"), N_("Choose approve or block."))
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        _refuse(N_("Reason"), N_("At most %(max)d characters."), max=REASON_MAX)
    if decision == "block" and not reason:
        _refuse(N_("Reason"), N_("A reason is required to block."))
    rental = get_rental(session, actor, rental_id)
    target = _fire(rental, decision)
    findings = [f.as_dict() for f in findings_for(session, rental)]
    chosen: BlockBasis | None = None
    if decision == "block":
        try:
            chosen = BlockBasis(basis) if basis else default_basis(findings)
        except ValueError as exc:
            choices = ", ".join(b.value for b in BlockBasis)
            _refuse(
                BASIS_FIELD, N_("%(value)s is not valid; use one of: %(choices)s"), value=repr(basis), choices=choices
            )
            raise AssertionError("unreachable") from exc
        if chosen == BlockBasis.EXTRANET_REACHES and not any(f["kind"] == "extranet_reaches" for f in findings):
            _refuse(
                BASIS_FIELD, N_("The e-government extranet does not reach both ends: that is no basis for a block.")
            )
    elif basis:
        _refuse(BASIS_FIELD, N_("A basis is given only when blocking."))
    # who decided, when and why: first
    rental.decided_by, rental.decided_at = actor.username, utcnow()
    rental.decision_reason, rental.block_basis, rental.findings = reason or None, chosen, findings
    audit.record(
        session,
        actor=actor.username,
        action=f"network_line_rental.{decision}",
        target_type=AUDIT_TARGET,
        target_id=rental.id,
        reason=reason or None,
        detail={
            "kind": rental.kind.value,
            "line": rental.line.code if rental.line else None,
            "basis": chosen.value if chosen else None,
            "basis_zh": BASIS_LABELS[chosen] if chosen else None,
            "findings": [f["kind"] for f in findings],
            "entry_point": entry_point,
        },
    )
    rental.state = target
    session.flush()
    if target == RentalState.APPROVED and rental.kind == RentalKind.RENEWAL and rental.line is not None:
        line = rental.line
        before = (line.contract_end.isoformat(), str(line.monthly_rent))
        line.contract_end, line.monthly_rent = rental.contract_end, rental.monthly_rent
        audit.record(
            session,
            actor=actor.username,
            action="network_line.renewed",
            target_type="network_line",
            target_id=line.id,
            reason=message(
                N_("renewed until %(date)s (request #%(id)s)"), date=rental.contract_end.isoformat(), id=rental.id
            ),
            detail={
                "code": line.code,
                "from": before,
                "to": (rental.contract_end.isoformat(), str(rental.monthly_rent)),
            },
        )
        session.flush()
    return rental


def rental_json(rental: LineRentalRequest, findings: list[Finding] | None = None) -> dict[str, Any]:
    shown = [f.as_dict() for f in findings] if findings is not None else list(rental.findings or [])
    return {
        "id": rental.id,
        "kind": rental.kind.value,
        "state": rental.state.value,
        "department": rental.department.key,
        "line": rental.line.code if rental.line else None,
        "carrier": rental.carrier.value,
        "line_type": rental.line_type.value,
        "bandwidth_mbps": rental.bandwidth_mbps,
        "a": {"site": rental.a_site, "city": rental.a_city, "county": rental.a_county, "township": rental.a_township},
        "b": {"site": rental.b_site, "city": rental.b_city, "county": rental.b_county, "township": rental.b_township},
        "monthly_rent": str(rental.monthly_rent),
        "contract_start": rental.contract_start.isoformat(),
        "contract_end": rental.contract_end.isoformat(),
        "classified": rental.declared_classified,
        "public_facing": rental.public_facing,
        "purpose": rental.purpose,
        "flagged": any(f.get("severity") == "flag" for f in shown),
        "findings": shown,
        "created_by": rental.created_by,
        "created_at": rental.created_at.isoformat(),
        "submitted_at": rental.submitted_at.isoformat() if rental.submitted_at else None,
        "decided_by": rental.decided_by,
        "decided_at": rental.decided_at.isoformat() if rental.decided_at else None,
        "decision_reason": rental.decision_reason,
        "block_basis": rental.block_basis.value if rental.block_basis else None,
    }


def ends_reached(session: Session, rental: LineRentalRequest) -> list[tuple[str, str, bool]]:
    """What the extranet offers beside a request: each end (A, B) as (end, place, reached)."""
    reached = reached_places(session)
    return [
        (end, _place_name(place), place in reached)
        for end, place in (
            ("A", _place_of(rental.a_city, rental.a_county, rental.a_township)),
            ("B", _place_of(rental.b_city, rental.b_county, rental.b_township)),
        )
    ]
