"""The runbook runner's public face: a legacy system's migration, one step (one playbook run) at a time.

Every step runs through the one wrapper over ``ansible_runner.run``
(:func:`cloudmgr.automation.run_playbook`) with its own private data directory under
``settings.ansible_artifacts_dir`` (kept), and never inside a unit of work: the run row
is committed as ``running`` first, each Ansible event is stored in its own small unit of
work as it arrives (the system page polls them), and the outcome is committed after.
So a page reads the live events, and SQLite's single write lock is never held for the
minutes a playbook takes.

* precheck → provision → replicate → cutover → verify (:func:`migrate_system`); the
  system goes to ``migrating`` before the first step that changes anything and to
  ``on_cloud`` when verify succeeds, always through
  :func:`cloudmgr.inventory.services.transition_system`.
* provision boots the target VM through the cloud adapter first: the classified rule
  (:func:`~cloudmgr.inventory.classification.ensure_placeable`), then
  ``CloudProvider.create_server`` with an idempotency key (a rerun finds the same VM).
* a failed cutover or verify runs ``rollback`` at once: the service address and the
  service go back to the source, the failed run ends ``rolled_back`` and the system
  ``rolled_back`` with its source serving.
* decommission only after a verified cutover, and only when asked.
* the playbooks are idempotent, so re-running a step is safe; a run left ``running`` by a
  worker that died is marked failed ("interrupted") when the system's migration resumes,
  and its step runs again.

The rules live in :mod:`~cloudmgr.runbooks.rules` (when a step may run), the session-only services in
:mod:`~cloudmgr.runbooks.requesting` and :mod:`~cloudmgr.runbooks.reading`, the job-shaped ones (which own
their units of work and reach the cloud and Ansible) in :mod:`~cloudmgr.runbooks.execution`; this module
re-exports what the web, the CLI and the jobs use.
"""

from __future__ import annotations

from cloudmgr.runbooks.ansible_inventory import DEFAULT_GROUP_VARS, DEFAULT_HOST_VARS, build_inventory
from cloudmgr.runbooks.events import STORED_EVENTS
from cloudmgr.runbooks.execution import StepOutcome, interrupt_stale_runs, migrate_system, run_step
from cloudmgr.runbooks.reading import completed_steps, events_after, get_run, get_target, list_runs
from cloudmgr.runbooks.requesting import configure_target, request_step
from cloudmgr.runbooks.rules import (
    AUDIT_TARGET,
    MIGRATE_KIND,
    RUN_STEP_KIND,
    EventListener,
    Heartbeat,
    may_request_step,
    may_run_steps,
    parse_step,
    target_name,
)

__all__ = [
    "AUDIT_TARGET",
    "DEFAULT_GROUP_VARS",
    "DEFAULT_HOST_VARS",
    "MIGRATE_KIND",
    "RUN_STEP_KIND",
    "STORED_EVENTS",
    "EventListener",
    "Heartbeat",
    "StepOutcome",
    "build_inventory",
    "completed_steps",
    "configure_target",
    "events_after",
    "get_run",
    "get_target",
    "interrupt_stale_runs",
    "list_runs",
    "may_request_step",
    "may_run_steps",
    "migrate_system",
    "parse_step",
    "request_step",
    "run_step",
    "target_name",
]
