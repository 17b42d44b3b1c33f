"""The purchase rules every path follows: the limits on what may be typed, the state machine, the weights of
the findings, and who may see, change and decide a purchase (``may_change``/``may_decide`` answer the
pages' buttons; the services raise with the same rules)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from cloudmgr.organisation import duties
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.purchases.errors import (
    PurchaseForbidden,
    PurchaseTransitionInvalid,
)
from cloudmgr.purchases.models import (
    PENDING_STATES,
    Category,
    FindingKind,
    PurchaseRequest,
    PurchaseState,
)
from cloudmgr.statemachine import StateMachine

MAX_ITEMS = 50


MAX_AMOUNT = Decimal("10000000000")  # ten billion yuan: anything above is a typo


MAX_QUANTITY = 10_000


MAX_VCPUS = 10_000


MAX_RAM_GB = 1_000_000


MAX_DISK_GB = 100_000_000


TITLE_MAX = 200


TEXT_MAX = 4000


REASON_MAX = 2000


SHA256 = re.compile(r"^[0-9a-f]{64}$")


MAX_ATTACHMENT_BYTES = 10 * 1024**3


DUPLICATE_WINDOW_DAYS = 365


CENT = Decimal("0.01")


P = PurchaseState


# Each action takes a purchase from one state to another: (from → to) per action.
PURCHASE_MACHINE: StateMachine[PurchaseState] = StateMachine(
    "a purchase request",
    PurchaseState,
    events={
        "submit": {P.DRAFT: P.SUBMITTED},
        "resubmit": {P.RETURNED: P.RESUBMITTED},
        "approve": {P.SUBMITTED: P.APPROVED, P.RESUBMITTED: P.APPROVED},
        "block": {P.SUBMITTED: P.BLOCKED, P.RESUBMITTED: P.BLOCKED},
        "return": {P.SUBMITTED: P.RETURNED, P.RESUBMITTED: P.RETURNED},
        "withdraw": {
            P.DRAFT: P.WITHDRAWN,
            P.SUBMITTED: P.WITHDRAWN,
            P.RETURNED: P.WITHDRAWN,
            P.RESUBMITTED: P.WITHDRAWN,
        },
    },
    error=PurchaseTransitionInvalid,
    open_states=frozenset(PurchaseState) - {P.APPROVED, P.BLOCKED, P.WITHDRAWN},
)


DECISIONS = ("approve", "block", "return")


# How much each finding weighs in the reviewer's queue.
WEIGHTS = {
    FindingKind.CLOUD_PROVIDES: 40,
    FindingKind.SERVER_ROOM: 40,
    FindingKind.DUPLICATE: 30,
    FindingKind.MIGRATING: 20,
    FindingKind.NO_CLOUD_OFFER: 0,
    FindingKind.CLASSIFIED: 0,
}


HARDWARE = frozenset({Category.SERVER, Category.STORAGE, Category.OTHER})


def _visible(actor: Actor, purchase: PurchaseRequest) -> bool:
    return actor.can_see_department(purchase.department_id)


def _require_department_user(actor: Actor) -> int:
    if actor.role not in {Role.DEPT_STAFF, Role.DEPT_HEAD} or actor.department_id is None:
        raise PurchaseForbidden("only department users request purchases")
    return actor.department_id


def may_change(actor: Actor, purchase: PurchaseRequest) -> bool:
    """Whether ``actor`` may edit, attach to, submit or withdraw ``purchase``: its author, or the
    head of its department (the rule of VM requests' drafts); a colleague may not."""
    return (
        actor.is_department
        and actor.department_id == purchase.department_id
        and (purchase.created_by == actor.username or actor.role == Role.DEPT_HEAD)
    )


def may_edit(actor: Actor, purchase: PurchaseRequest) -> bool:
    """Whether ``actor`` may change what ``purchase`` asks for (its items, total and texts): its
    author alone, as for a VM request's draft (servicerequests.may_edit).  The department head
    submits or withdraws a colleague's purchase (:func:`may_change`) but does not rewrite it."""
    return (
        actor.is_department and actor.department_id == purchase.department_id and purchase.created_by == actor.username
    )


def _require_author(actor: Actor, purchase: PurchaseRequest) -> None:
    if not may_edit(actor, purchase):
        raise PurchaseForbidden(f"only the author ({purchase.created_by}) changes purchase request {purchase.id}")


def _require_author_or_head(actor: Actor, purchase: PurchaseRequest) -> None:
    if not may_change(actor, purchase):
        raise PurchaseForbidden(
            f"only the author ({purchase.created_by}) or the department head changes purchase request {purchase.id}"
        )


def may_review_purchases(actor: Actor) -> bool:
    """Who decides purchase requests at all: finance's reviewers."""
    return actor.role == Role.FINANCE


def may_decide(session: Session, actor: Actor, purchase: PurchaseRequest) -> bool:
    """Whether ``actor`` may decide ``purchase`` now (pages hide the decision form otherwise)."""
    return (
        may_review_purchases(actor)
        and purchase.state in PENDING_STATES
        and duties.may_decide_own(session, actor, author=purchase.created_by, department_id=purchase.department_id)
    )


def may_read_other_departments_findings(actor: Actor) -> bool:
    """Whether ``actor`` reads a finding's whole evidence, other departments' purchases included (finance,
    operators, administrators); a department learns only that similar requests of others exist."""
    return not actor.is_department


def finding_evidence_for(actor: Actor, kind: str, evidence: Mapping[str, Any]) -> dict[str, Any]:
    """A finding's evidence as ``actor`` may read it: a department never learns about another
    department's purchases (a duplicate's matches are its own, and a count of the others')."""
    if may_read_other_departments_findings(actor) or kind != FindingKind.DUPLICATE:
        return dict(evidence)
    matches = evidence.get("matches", [])
    return {
        "matches": [m for m in matches if m.get("same_department")],
        "other_departments": sum(1 for m in matches if not m.get("same_department")),
    }
