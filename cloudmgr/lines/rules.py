"""The target rule for a line, decided here once for every path (service, CLI, later the API and pages).

- classified business (a carried system is classified or on the intranet, or the line is declared
  classified) → the e-government intranet, never the extranet or the internet;
- a line whose carried systems are all on the cloud (or decommissioned) and whose server rooms are all
  closed → retire;
- public services (declared public-facing, or carrying an internet-facing system) → the internet;
- any other non-classified business → the e-government extranet.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudmgr.inventory.models import DONE_STATES, LegacyNetwork, ServerRoom
from cloudmgr.lines.models import LineTarget, NetworkLine
from cloudmgr.messages import N_, Message

#: Where a classified line may be planned: nowhere a non-classified network reaches.
CLASSIFIED_TARGETS = frozenset({LineTarget.INTRANET, LineTarget.RETIRE})
#: Where a non-classified line may be planned (the intranet is for classified business only).
NON_CLASSIFIED_TARGETS = frozenset({LineTarget.EXTRANET, LineTarget.INTERNET, LineTarget.RETIRE})


@dataclass(frozen=True)
class TargetDecision:
    target: LineTarget
    classified: bool
    reason: Message  # for people: the pages say it in their language, the API and CLI in English


def carries_classified(line: NetworkLine) -> bool:
    """Classified business: declared so, or a carried system is classified or lives on the intranet."""
    return line.declared_classified or any(s.is_classified or s.network == LegacyNetwork.INTRANET for s in line.systems)


def line_rooms(line: NetworkLine) -> list[ServerRoom]:
    """The server rooms a line serves: those linked to it and those of the systems it carries."""
    rooms = {room.id: room for room in line.rooms}
    for system in line.systems:
        rooms.setdefault(system.server_room.id, system.server_room)
    return list(rooms.values())


def everything_moved(line: NetworkLine) -> bool:
    """The line carries something, every carried system is on the cloud (or switched off) and every
    server room it serves is closed."""
    rooms = line_rooms(line)
    if not line.systems and not rooms:
        return False
    return all(s.state in DONE_STATES for s in line.systems) and all(r.closed_at is not None for r in rooms)


def proposed_target(line: NetworkLine) -> TargetDecision:
    classified = carries_classified(line)
    if everything_moved(line):
        return TargetDecision(
            LineTarget.RETIRE,
            classified,
            Message(N_("Every system it carries is on the cloud and its server rooms are closed: retire it.")),
        )
    if classified:
        return TargetDecision(
            LineTarget.INTRANET,
            True,
            Message(N_("It carries classified business: the e-government intranet, never the extranet.")),
        )
    if line.public_facing or any(s.network == LegacyNetwork.INTERNET for s in line.systems):
        return TargetDecision(LineTarget.INTERNET, False, Message(N_("It serves the public: the internet.")))
    return TargetDecision(
        LineTarget.EXTRANET, False, Message(N_("It carries non-classified business: the e-government extranet."))
    )


def allowed_targets(line: NetworkLine) -> frozenset[LineTarget]:
    return CLASSIFIED_TARGETS if carries_classified(line) else NON_CLASSIFIED_TARGETS


def effective_target(line: NetworkLine) -> LineTarget:
    """The planned target when there is one, else the target by rule."""
    return line.target if line.target is not None else proposed_target(line).target


def breaks_classified_rule(line: NetworkLine) -> bool:
    """A line planned onto (or cut over to) the extranet or the internet that carries classified business:
    a system it carries was classified after the plan.  Planning and cut-over refuse it; this finds it."""
    return line.target is not None and line.target not in CLASSIFIED_TARGETS and carries_classified(line)
