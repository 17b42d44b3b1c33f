"""Migration runbooks on the operators' pages (issue 6).

The system page (``/ops/systems/<id>``, owned by the inventory) includes
``runbooks/_system_runs.html``, which reads the runs through the ``runbook_panel``
template global; ``/ops/runbooks/<run_id>`` shows one run's whole event log;
``/ops/runbooks/<run_id>/events.json`` feeds the live view (``static/js/runbooks.js``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from cloudmgr.errors import DomainError
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.inventory.services import get_system
from cloudmgr.runbooks.models import ACTIVE_RUN_STATES, RunbookRun, RunbookTarget, Step
from cloudmgr.runbooks.services import (
    completed_steps,
    events_after,
    get_run,
    get_target,
    list_runs,
    may_request_step,
    request_step,
)
from web.common.runbook_json import event_json, run_json
from web.core.security import require_user
from web.core.uow import request_uow, restart_request_uow
from web.operations.blueprint import bp

RUN_ID = "<int(max=2147483647):run_id>"
SYSTEM_ID = "<int(max=2147483647):system_id>"
MAX_STDOUT_BYTES = 2 * 1024 * 1024

STEP_LABELS: Mapping[str, object] = {
    "precheck": _l("Pre-check"),
    "provision": _l("Provision the target VM"),
    "replicate": _l("Replicate data"),
    "cutover": _l("Cut over"),
    "verify": _l("Verify"),
    "rollback": _l("Roll back"),
    "decommission": _l("Decommission the source"),
}
RUN_STATE_LABELS: Mapping[str, object] = {
    "queued": _l("Queued"),
    "running": _l("Running"),
    "succeeded": _l("Succeeded"),
    "failed": _l("Failed"),
    "rolled_back": _l("Failed, rolled back"),
}
RUN_STATE_CLASSES: Mapping[str, str] = {
    "queued": "pending",
    "running": "pending",
    "succeeded": "ok",
    "failed": "bad",
    "rolled_back": "bad",
}


@bp.app_template_filter("label_runbook_step")
def step_label(code: object) -> str:
    return str(STEP_LABELS.get(str(code), code))


@bp.app_template_filter("label_runbook_state")
def run_state_label(code: object) -> str:
    return str(RUN_STATE_LABELS.get(str(code), code))


@bp.app_template_filter("runbook_state_class")
def run_state_class(code: object) -> str:
    return f"state state-{RUN_STATE_CLASSES.get(str(code), 'off')}"


@dataclass(frozen=True)
class RunbookPanel:
    runs: list[RunbookRun]
    target: RunbookTarget | None
    busy: bool
    done: set[str]
    steps: list[str]
    #: the steps the runbook service would queue for the viewer now (the others' buttons are disabled)
    startable: set[str]

    @property
    def latest(self) -> RunbookRun | None:
        return self.runs[0] if self.runs else None


@bp.app_template_global("runbook_panel")
def runbook_panel(system: LegacySystem) -> RunbookPanel:
    """What the system page's runbook panel shows (runs newest first)."""
    session = request_uow().session
    actor = require_user().actor
    runs = list(list_runs(session, system.id, limit=30))
    return RunbookPanel(
        runs=runs,
        target=get_target(session, system.id),
        busy=any(r.state in ACTIVE_RUN_STATES for r in runs),
        done={s.value for s in completed_steps(session, system.id)},
        steps=[s.value for s in Step],
        startable={s.value for s in Step if may_request_step(session, actor, system, s)},
    )


@bp.post(f"/systems/{SYSTEM_ID}/runbook/<step>")
def start_runbook_step(system_id: int, step: str) -> ResponseReturnValue:
    session = request_uow().session
    system = get_system(session, system_id)
    try:
        run = request_step(session, system.id, step, actor=require_user().actor)
    except DomainError as exc:
        restart_request_uow()
        flash(_("The step could not start: %(error)s", error=exc.message), "error")
        return redirect(url_for("ops.system_detail", system_id=system_id) + "#runbook")
    flash(_("%(step)s is queued (run #%(id)d).", step=step_label(run.step), id=run.id), "success")
    return redirect(url_for("ops.system_detail", system_id=system_id) + "#runbook")


@bp.get(f"/runbooks/{RUN_ID}")
def runbook_run(run_id: int) -> ResponseReturnValue:
    session = request_uow().session
    run = get_run(session, run_id)
    events = list(events_after(session, run.id, 0, limit=5000))
    return render_template(
        "runbooks/run.html",
        run=run,
        system=run.system,
        events=events,
        has_stdout=_stdout_path(run) is not None,
    )


@bp.get(f"/runbooks/{RUN_ID}/events.json")
def runbook_run_events(run_id: int) -> Response:
    try:
        after = int(request.args.get("after", "0") or 0)
    except ValueError:
        after = -1
    if not 0 <= after <= 2_147_483_647:
        response = jsonify({"error": "invalid", "message": "after must be a non-negative event id"})
        response.status_code = 400
        return response
    session = request_uow().session
    run = get_run(session, run_id)
    return jsonify({"run": run_json(run), "items": [event_json(e) for e in events_after(session, run.id, after)]})


def _stdout_path(run: RunbookRun) -> Path | None:
    if not run.artifacts_path:
        return None
    path = Path(run.artifacts_path) / "stdout"
    return path if path.is_file() else None


@bp.get(f"/runbooks/{RUN_ID}/stdout")
def runbook_run_stdout(run_id: int) -> ResponseReturnValue:
    """The run's Ansible output from its kept artefacts (the last 2 MB)."""
    run = get_run(request_uow().session, run_id)
    path = _stdout_path(run)
    if path is None:
        abort(404)
    with path.open("rb") as handle:
        size = path.stat().st_size
        handle.seek(max(0, size - MAX_STDOUT_BYTES))
        data = handle.read()
    return Response(data, mimetype="text/plain; charset=utf-8")
