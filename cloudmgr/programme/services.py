"""The programme's waves, the public face: the wave's life (:mod:`cloudmgr.programme.waves`)
and its check (:mod:`cloudmgr.programme.checks`).

* A wave has a target cloud, a network zone and a window; systems join while it is a draft
  (or checked: any change of members makes it a draft again).  Classified systems and
  systems whose department may not use the wave's cloud are refused, and refused again when
  the wave starts and when each system's migration work item runs.
* Who reads whose programme and who closes a server room are decided in
  :mod:`cloudmgr.programme.tracking` (:func:`visible_department`, :func:`may_close_room`).
* :func:`check_wave` is job-shaped (it reads the cloud's free capacity between its own units
  of work); everything else works in the caller's session and never calls a cloud.
* :func:`start_wave` queues one ``runbook.migrate_system`` work item per system in the
  caller's unit of work; :func:`finish_waves` (the ``waves.progress`` job) marks running
  waves done once every member has settled.
"""

from __future__ import annotations

from cloudmgr.programme.checks import check_wave, evaluate
from cloudmgr.programme.tracking import close_room, may_close_room, visible_department
from cloudmgr.programme.wave_bulk import SystemRefused, WaveBulkOutcome, add_systems_each
from cloudmgr.programme.wave_lists import editable_waves, waves_page
from cloudmgr.programme.waves import (
    AUDIT_TARGET,
    JOINABLE_STATES,
    MAX_MEMBERS,
    MAX_NAME,
    MIGRATE_KIND,
    SETTLED_STATES,
    WAVES_PROGRESS,
    ZONES,
    add_systems,
    cancel_wave,
    candidates,
    create_wave,
    department_name,
    ensure_department_may_use,
    finish_waves,
    fit_failure_messages,
    fit_failure_text,
    get_wave,
    list_waves,
    member_counts,
    members_easy_first,
    open_wave_of,
    remove_system,
    start_wave,
)

__all__ = [
    "AUDIT_TARGET",
    "JOINABLE_STATES",
    "MAX_MEMBERS",
    "MAX_NAME",
    "MIGRATE_KIND",
    "SETTLED_STATES",
    "WAVES_PROGRESS",
    "ZONES",
    "SystemRefused",
    "WaveBulkOutcome",
    "add_systems",
    "add_systems_each",
    "cancel_wave",
    "candidates",
    "check_wave",
    "close_room",
    "create_wave",
    "department_name",
    "editable_waves",
    "ensure_department_may_use",
    "evaluate",
    "finish_waves",
    "fit_failure_messages",
    "fit_failure_text",
    "get_wave",
    "list_waves",
    "may_close_room",
    "member_counts",
    "members_easy_first",
    "open_wave_of",
    "remove_system",
    "start_wave",
    "visible_department",
    "waves_page",
]
