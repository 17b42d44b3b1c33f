"""The explicit state machines of a request and of each server it provisions."""

from __future__ import annotations

import enum

from cloudmgr.servicerequests.errors import InvalidTransition


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


def check_transition(current: str, target: RequestState) -> None:
    state = RequestState(current)
    if target not in REQUEST_TRANSITIONS[state]:
        raise InvalidTransition(f"a request that is {state.value} cannot become {target.value}")


class ServerState(enum.StrEnum):
    PENDING = "pending"  # reserved, not yet asked of the cloud
    BUILDING = "building"  # the cloud accepted it
    ACTIVE = "active"
    STOPPED = "stopped"
    ERROR = "error"  # the cloud refused or failed it; the reason is kept
    CANCELLED = "cancelled"  # never booted: the request was cancelled or rejected
    DELETING = "deleting"
    DELETED = "deleted"
