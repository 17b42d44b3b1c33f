"""What a runbook step needs and when it may run: the steps' allowed system states, the work kinds, the checks
every path (page, API, CLI, wave, job) goes through before a step is queued or run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.errors import DomainError
from cloudmgr.inventory.errors import SystemNotFound
from cloudmgr.inventory.models import LegacySystem, SystemState
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runbooks.errors import (
    RunbookBusy,
    RunbookOperatorRequired,
    StepNotAllowed,
    UnknownStep,
)
from cloudmgr.runbooks.models import (
    ACTIVE_RUN_STATES,
    RunbookRun,
    Step,
)
from cloudmgr.runbooks.reading import completed_steps

AUDIT_TARGET = "legacy_system"


RUN_STEP_KIND = "runbook.run_step"


MIGRATE_KIND = "runbook.migrate_system"


# The states a system may be in for each step (the step may move it to "migrating" first).
_STEP_STATES: Mapping[Step, frozenset[str]] = {
    Step.PRECHECK: frozenset({SystemState.LEGACY, SystemState.PLANNED, SystemState.MIGRATING, SystemState.ROLLED_BACK}),
    Step.PROVISION: frozenset({SystemState.PLANNED, SystemState.MIGRATING, SystemState.ROLLED_BACK}),
    Step.REPLICATE: frozenset({SystemState.PLANNED, SystemState.MIGRATING, SystemState.ROLLED_BACK}),
    Step.CUTOVER: frozenset({SystemState.PLANNED, SystemState.MIGRATING, SystemState.ROLLED_BACK}),
    Step.VERIFY: frozenset({SystemState.MIGRATING, SystemState.ON_CLOUD}),
    Step.ROLLBACK: frozenset({SystemState.MIGRATING, SystemState.ON_CLOUD, SystemState.ROLLED_BACK}),
    Step.DECOMMISSION: frozenset({SystemState.ON_CLOUD}),
}


_MOVES_TO_MIGRATING = frozenset({Step.PROVISION, Step.REPLICATE, Step.CUTOVER})


_NEEDS_TARGET = frozenset({Step.PROVISION, Step.REPLICATE, Step.CUTOVER, Step.VERIFY, Step.ROLLBACK, Step.DECOMMISSION})


_NEEDS_SERVICE_ADDRESS = frozenset({Step.CUTOVER, Step.VERIFY, Step.ROLLBACK, Step.DECOMMISSION})


Heartbeat = Callable[[], None]


EventListener = Callable[[Mapping[str, Any]], None]


def parse_step(value: str) -> Step:
    try:
        return Step(value)
    except ValueError:
        raise UnknownStep(f"unknown runbook step {value!r}: one of {', '.join(s.value for s in Step)}") from None


def target_name(system: LegacySystem) -> str:
    """The new VM's name (and its Ansible inventory name)."""
    return f"{system.hostname}-cloud"


def _system(session: Session, system_id: int) -> LegacySystem:
    system = session.get(LegacySystem, system_id)
    if system is None:
        raise SystemNotFound(f"no legacy system {system_id}")
    return system


def _check_allowed(session: Session, system: LegacySystem, step: Step) -> None:
    if system.state not in _STEP_STATES[step]:
        raise StepNotAllowed(f"{step.value} cannot run while {system.hostname} is {system.state}")
    if step == Step.DECOMMISSION and Step.VERIFY not in completed_steps(session, system.id):
        raise StepNotAllowed(f"{system.hostname}: decommission only after a successful verify")


def _check_not_busy(session: Session, system: LegacySystem, *, except_run: int | None = None) -> None:
    query = select(RunbookRun.id, RunbookRun.step).where(
        RunbookRun.system_id == system.id, RunbookRun.state.in_(ACTIVE_RUN_STATES)
    )
    if except_run is not None:
        query = query.where(RunbookRun.id != except_run)
    busy = session.execute(query.limit(1)).first()
    if busy is not None:
        raise RunbookBusy(f"{system.hostname} already has runbook run #{busy[0]} ({busy[1]}) under way")


def may_run_steps(actor: Actor) -> bool:
    """Who runs a system's runbook: operators (cloudmgr's jobs and the console act as operators)."""
    return actor.role == Role.OPERATOR


def require_may_run_steps(actor: Actor) -> None:
    if not may_run_steps(actor):
        raise RunbookOperatorRequired(f"{actor.username} may not run runbook steps: operators run them")


def may_request_step(session: Session, actor: Actor, system: LegacySystem, step: Step) -> bool:
    """Whether :func:`~cloudmgr.runbooks.requesting.request_step` would queue ``step`` for ``actor`` now:
    the same checks (who, one step at a time, the system's state, decommission after a verify), asked
    without raising so that a page can offer only the steps the service accepts."""
    try:
        require_may_run_steps(actor)
        _check_not_busy(session, system)
        _check_allowed(session, system, step)
    except DomainError:
        return False
    return True
