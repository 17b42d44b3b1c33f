"""The explicit state machines of a request and of each server it provisions."""

from __future__ import annotations

import enum

from cloudmgr.servicerequests.errors import InvalidTransition
from cloudmgr.statemachine import StateMachine


class RequestState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"  # waiting for the approval step in ``current_step``
    APPROVED = "approved"  # every step approved; provisioning queued
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    PARTIALLY_ACTIVE = "partially_active"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    RETIRED = "retired"  # every server it made has been deleted


REQUEST_TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    RequestState.DRAFT: frozenset({RequestState.SUBMITTED, RequestState.CANCELLED}),
    RequestState.SUBMITTED: frozenset(
        {RequestState.SUBMITTED, RequestState.APPROVED, RequestState.REJECTED, RequestState.CANCELLED}
    ),
    RequestState.APPROVED: frozenset({RequestState.PROVISIONING, RequestState.CANCELLED}),
    RequestState.PROVISIONING: frozenset(
        {RequestState.ACTIVE, RequestState.PARTIALLY_ACTIVE, RequestState.FAILED, RequestState.CANCELLED}
    ),
    RequestState.ACTIVE: frozenset({RequestState.PROVISIONING, RequestState.RETIRED, RequestState.PARTIALLY_ACTIVE}),
    RequestState.PARTIALLY_ACTIVE: frozenset({RequestState.PROVISIONING, RequestState.RETIRED, RequestState.ACTIVE}),
    RequestState.FAILED: frozenset({RequestState.PROVISIONING, RequestState.CANCELLED, RequestState.RETIRED}),
    RequestState.REJECTED: frozenset(),
    RequestState.CANCELLED: frozenset(),
    RequestState.RETIRED: frozenset(),
}

OPEN_STATES = frozenset({RequestState.DRAFT, RequestState.SUBMITTED, RequestState.APPROVED, RequestState.PROVISIONING})

REQUEST_MACHINE: StateMachine[RequestState] = StateMachine(
    "a request",
    RequestState,
    transitions=REQUEST_TRANSITIONS,
    error=InvalidTransition,
    open_states=OPEN_STATES,
)


def check_transition(current: str, target: RequestState) -> None:
    REQUEST_MACHINE.check(current, target)


class ServerState(enum.StrEnum):
    PENDING = "pending"  # reserved, not yet asked of the cloud
    BUILDING = "building"  # the cloud accepted it
    ACTIVE = "active"
    STOPPED = "stopped"
    ERROR = "error"  # the cloud refused or failed it; the reason is kept
    CANCELLED = "cancelled"  # never booted: the request was cancelled or rejected
    DELETING = "deleting"
    DELETED = "deleted"
