"""Session-only runbook services: configure where a system's runbook acts, and queue a step as a work item
in the caller's unit of work (the worker runs it after the commit; nothing here reaches a cloud or Ansible)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.inventory.errors import SystemNotFound
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.organisation.actor import Actor
from cloudmgr.runbooks.errors import (
    RunbookTargetInvalid,
)
from cloudmgr.runbooks.models import (
    RunbookRun,
    RunbookTarget,
    RunState,
)
from cloudmgr.runbooks.rules import (
    AUDIT_TARGET,
    RUN_STEP_KIND,
    _check_allowed,
    _check_not_busy,
    parse_step,
    require_may_run_steps,
)
from cloudmgr.runbooks.variables import target_problems
from cloudmgr.workqueue.services import enqueue


def configure_target(
    session: Session,
    system: LegacySystem,
    *,
    actor: Actor,
    target_host: str | None = None,
    service_address: str | None = None,
    vars: Mapping[str, Any] | None = None,
    source_vars: Mapping[str, Any] | None = None,
    target_vars: Mapping[str, Any] | None = None,
) -> RunbookTarget:
    """Set where the system's runbook acts; given variables are merged into the stored ones.

    Every value is checked first (:mod:`cloudmgr.runbooks.variables`): one refused value
    raises :class:`RunbookTargetInvalid` naming each problem, and nothing is changed."""
    problems = target_problems(
        target_host=target_host,
        service_address=service_address,
        vars=vars,
        source_vars=source_vars,
        target_vars=target_vars,
    )
    if problems:
        raise RunbookTargetInvalid(f"{system.hostname}: " + "; ".join(problems), problems)
    target = session.get(RunbookTarget, system.id)
    username = actor.username
    if target is None:
        target = RunbookTarget(system_id=system.id, vars={}, source_vars={}, target_vars={}, updated_by=username)
        session.add(target)
    if target_host is not None:
        target.target_host = target_host or None
    if service_address is not None:
        target.service_address = service_address or None
    if vars:
        target.vars = {**target.vars, **vars}
    if source_vars:
        target.source_vars = {**target.source_vars, **source_vars}
    if target_vars:
        target.target_vars = {**target.target_vars, **target_vars}
    target.updated_by = username
    audit.record(
        session,
        actor=username,
        action="runbook.configure",
        target_type=AUDIT_TARGET,
        target_id=system.id,
        detail={
            "target_host": target.target_host,
            "service_address": target.service_address,
            "vars": sorted(target.vars),
            "source_vars": sorted(target.source_vars),
            "target_vars": sorted(target.target_vars),
        },
    )
    session.flush()
    return target


def request_step(
    session: Session, system_id: int, step: str, *, actor: Actor, wave_id: int | None = None
) -> RunbookRun:
    """Queue one step for the scheduler's workers (pages, API); the run starts as ``queued``.

    Refused unless :func:`~cloudmgr.runbooks.rules.may_request_step` (operators only, one step at a
    time, in a state the step allows)."""
    require_may_run_steps(actor)
    parsed = parse_step(step)
    system = session.get(LegacySystem, system_id, with_for_update=True)
    if system is None:
        raise SystemNotFound(f"no legacy system {system_id}")
    _check_not_busy(session, system)
    _check_allowed(session, system, parsed)
    run = RunbookRun(
        system_id=system.id,
        wave_id=wave_id,
        step=parsed.value,
        state=RunState.QUEUED,
        actor=actor.username,
        event_count=0,
    )
    session.add(run)
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="runbook.request",
        target_type=AUDIT_TARGET,
        target_id=system.id,
        detail={"run_id": run.id, "step": parsed.value},
    )
    enqueue(session, RUN_STEP_KIND, f"{RUN_STEP_KIND}:{run.id}", {"run_id": run.id})
    return run
