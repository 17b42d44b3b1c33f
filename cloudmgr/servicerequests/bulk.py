"""Deciding several requests at once: each through the same service call as a single decision.

Every row is its own savepoint: a row refused (the quota no longer fits, the system became
classified, the step is not the actor's, separation of duties …) leaves nothing of its attempt
behind and the others go on; the caller commits the unit of work once.  The outcome names, per
request, what happened or the :class:`~cloudmgr.errors.DomainError` that refused it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from cloudmgr.errors import DomainError
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.servicerequests.approvals import approve_request, reject_request
from cloudmgr.servicerequests.errors import RequestInvalid

#: How many requests one bulk decision may carry (a page of the queue at its largest).
MAX_BULK = 200
DECISIONS = ("approve", "reject")


@dataclass(frozen=True, slots=True)
class RowRefused:
    request_id: int
    error: DomainError


@dataclass(slots=True)
class BulkOutcome:
    decided: list[int] = field(default_factory=list)
    refused: list[RowRefused] = field(default_factory=list)


def decide_many(
    session: Session, actor: Actor, request_ids: Iterable[int], decision: str, *, reason: str = ""
) -> BulkOutcome:
    """Approve or reject each of ``request_ids`` (duplicates once, in the order given)."""
    if decision not in DECISIONS:
        raise RequestInvalid(message(N_("unknown decision %(decision)s"), decision=decision))
    ids = list(dict.fromkeys(request_ids))
    if not ids:
        raise RequestInvalid(Message(N_("choose at least one request")))
    if len(ids) > MAX_BULK:
        raise RequestInvalid(message(N_("at most %(count)d requests at once"), count=MAX_BULK))
    if decision == "reject" and not reason.strip():
        # The same rule as one rejection, said once for the lot rather than once per row.
        raise RequestInvalid(Message(N_("a reason is required to reject")))
    outcome = BulkOutcome()
    for request_id in ids:
        savepoint = session.begin_nested()
        try:
            if decision == "approve":
                approve_request(session, actor, request_id, reason=reason)
            else:
                reject_request(session, actor, request_id, reason=reason)
        except DomainError as exc:
            savepoint.rollback()
            outcome.refused.append(RowRefused(request_id, exc))
        else:
            savepoint.commit()
            outcome.decided.append(request_id)
    return outcome
