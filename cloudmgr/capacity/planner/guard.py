"""The classified rule for the planner's uploaded CSV (issue 14), for every entry point a person
uses: ``POST /api/v1/planner`` ("planner.api"), ``/ops/planner`` ("planner.page") and
``cloudmgr plan consolidate`` ("planner.cli").

A CSV is typed by hand and cannot be trusted to say what is classified, so before planning:

* a row named after a system of the legacy inventory (hostname compared trimmed and
  case-insensitively) takes the inventory's classification, not the file's: a classified
  system (or one on the e-government intranet) is refused whatever the row says;
* a row the file marks classified is refused, whatever the inventory says (the safe reading);
* a row with no classification (empty cell, or no column) that is not in the inventory is
  *unknown* and refused, unless the operator says explicitly that blank rows are
  non-classified (``blank_is_non_classified``).

Refused rows are left out of the plan and listed with their reason; each refusal is audited
(``planner.row_refused``: who, which row, the entry point) once the plan is made.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from cloudmgr.audit.models import AuditEvent
from cloudmgr.capacity.planner.inventory import Inventory
from cloudmgr.capacity.planner.model import CLASSIFIED_MESSAGE
from cloudmgr.db import utcnow
from cloudmgr.inventory.models import Classification, LegacyNetwork, LegacySystem
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor

REFUSED_ACTION = "planner.row_refused"
AUDIT_TARGET = "planner_row"
ENTRY_POINTS = frozenset({"planner.api", "planner.page", "planner.cli"})
BLANK_MESSAGE = Message(
    N_(
        "classification unknown: the row does not say whether it is classified and no inventory system has "
        "this name (say 'non-classified' in the file, or plan blanks as non-classified explicitly)"
    )
)
BLANK_REASON = str(BLANK_MESSAGE)


@dataclass(frozen=True, slots=True)
class RowRefusal:
    index: int
    name: str
    line: int | None
    reason: str
    source: str  # "inventory", "file" or "blank"
    legacy_system_id: int | None = None


def _inventory_reason(hostname: str, classification: str, network: str) -> Message | None:
    if classification == Classification.CLASSIFIED:
        return message(
            N_("classified in the inventory (%(host)s): stays on the e-government intranet, never on the cloud"),
            host=hostname,
        )
    if network == LegacyNetwork.INTRANET:
        return message(
            N_("on the e-government intranet in the inventory (%(host)s): not planned onto the cloud"), host=hostname
        )
    return None


def apply_inventory_rules(
    session: Session, inventory: Inventory, *, blank_is_non_classified: bool = False
) -> list[RowRefusal]:
    """Mark the rows to refuse in ``inventory`` (in place) and return them, in row order.

    Only reads the database: the caller audits with :func:`audit_refusals` after planning,
    so no write is held open while the planner works."""
    known: dict[str, tuple[int, str, str, str]] = {
        hostname.strip().lower(): (system_id, hostname, classification, network)
        for system_id, hostname, classification, network in session.execute(
            select(LegacySystem.id, LegacySystem.hostname, LegacySystem.classification, LegacySystem.network)
        )
    }
    refusals: list[RowRefusal] = []
    classified = inventory.classified.copy()
    names = inventory.names
    # only these rows can be refused: most rows of a large file are none of them
    candidates = inventory.classified.copy()
    if not blank_is_non_classified:
        candidates |= inventory.classification_blank
    if known:
        candidates = candidates | _in_inventory(names, known)
    for i in np.flatnonzero(candidates).tolist():
        name = names[i]
        line = int(inventory.lines[i]) or None
        match = known.get(name.strip().lower())
        reason: Message | None = None
        source = ""
        system_id = None
        if match is not None:
            system_id = match[0]
            reason = _inventory_reason(match[1], match[2], match[3])
            source = "inventory"
        if reason is None and inventory.classified[i]:
            reason, source = CLASSIFIED_MESSAGE, "file"
        if reason is None and match is None and inventory.classification_blank[i] and not blank_is_non_classified:
            reason, source = BLANK_MESSAGE, "blank"
        if reason is None:
            continue
        classified[i] = True
        inventory.refusal_reasons[i] = str(reason)
        inventory.refusal_messages[i] = reason
        refusals.append(RowRefusal(i, name, line, str(reason), source, system_id))
    inventory.classified = np.ascontiguousarray(classified, dtype=np.bool_)
    return refusals


def _in_inventory(names: list[str], known: dict[str, tuple[int, str, str, str]]) -> npt.NDArray[np.bool_]:
    """Which ``names`` (compared trimmed and case-insensitively) are among the ``known`` hostnames."""
    joined = "\n".join(names)
    keys: Iterable[str]
    if joined.isascii() and joined.count("\n") == len(names) - 1:
        keys = map(str.strip, joined.lower().split("\n"))  # ASCII: lowering the whole lowers each name
    else:
        keys = (n.strip().lower() for n in names)
    return np.fromiter((k in known for k in keys), dtype=np.bool_, count=len(names))


def audit_refusals(session: Session, refusals: list[RowRefusal], *, actor: Actor, entry_point: str) -> None:
    """One audit event per refused row, in the caller's unit of work (one multi-row INSERT)."""
    if not refusals:
        return
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "at": now,
            "actor": actor.username,
            "action": REFUSED_ACTION,
            "target_type": AUDIT_TARGET,
            "target_id": r.name[:128],
            "reason": r.reason,
            "detail": {
                "entry_point": entry_point,
                "line": r.line,
                "source": r.source,
                "legacy_system_id": r.legacy_system_id,
            },
        }
        for r in refusals
    ]
    # A Core insert on the table: the same rows (the values are given whole, nothing for the ORM
    # to fill in), in the same transaction, at half the ORM bulk path's cost (2M-server plan:
    # ~40,000 refusals, 0.8 -> 0.4 s).
    session.execute(insert(cast(Table, AuditEvent.__table__)), rows)
