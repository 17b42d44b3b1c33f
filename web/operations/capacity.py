"""Capacity per base and the targets (/ops/capacity), in-cloud consolidation runs
(/ops/consolidation) and the planner for an uploaded inventory (/ops/planner)."""

from __future__ import annotations

import csv
import math
from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from wtforms.fields.choices import SelectChoice

from cloudmgr.capacity import consolidation
from cloudmgr.capacity.errors import CapacityCsvInvalid
from cloudmgr.capacity.models import RunState
from cloudmgr.capacity.services import import_csv, take_snapshots
from cloudmgr.errors import DomainError
from cloudmgr.organisation import services as org
from web.common.capacity import capacity_config, render_capacity
from web.common.display import refusal_text
from web.common.selfservice_forms import ButtonForm
from web.core.i18n import current_locale
from web.core.security import require_user
from web.core.uow import request_uow, restart_request_uow, run_job_outside_request, runtime
from web.operations.blueprint import bp
from web.operations.capacity_forms import CapacityCsvForm, PlannerForm, PlanRunForm

# The exact solver may refine small zones; a web request waits at most this long per zone.


def _problems(exc: DomainError) -> list[str]:
    return [line for line in exc.message.splitlines() if line.strip()]


# --- capacity --------------------------------------------------------------------------------------


@bp.get("/capacity")
def capacity() -> ResponseReturnValue:
    return render_capacity(csv_form=CapacityCsvForm(formdata=None))


@bp.post("/capacity/snapshots")
def take_snapshot() -> ResponseReturnValue:
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    rt = runtime()
    # The operator asked for the capacity as it is now: the flash says what was read.
    result = run_job_outside_request(take_snapshots, rt.db, rt.providers, capacity_config())
    flash(
        _("Snapshot taken: %(snapshots)d endpoints, %(hosts)d hosts.", snapshots=result.snapshots, hosts=result.hosts),
        "success",
    )
    for problem in result.problems:
        flash(problem, "warning")
    return redirect(url_for("ops.capacity"))


@bp.post("/capacity/import")
def import_capacity() -> ResponseReturnValue:
    form = CapacityCsvForm()
    if not form.validate_on_submit():
        return render_capacity(csv_form=form, status=400)
    upload = form.csv_file.data
    name = (upload.filename or "upload.csv").rsplit("/", 1)[-1][:120]
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        form.csv_file.errors.append(_("The file is not UTF-8 text."))
        return render_capacity(csv_form=form, status=400)
    try:
        rows = import_csv(request_uow().session, capacity_config(), text, source_name=name, actor=require_user().actor)
    except CapacityCsvInvalid as exc:
        restart_request_uow()
        form.form_errors.extend(_problems(exc))
        return render_capacity(csv_form=form, status=400)
    except csv.Error as exc:  # the reader's own refusals (a field over its size limit …)
        restart_request_uow()
        form.form_errors.append(f"{name}: {exc}")
        return render_capacity(csv_form=form, status=400)
    flash(_("%(rows)d rows imported from %(name)s.", rows=rows, name=name), "success")
    return redirect(url_for("ops.capacity"))


# --- consolidation runs ----------------------------------------------------------------------------


def _run_form(formdata: Any = None) -> PlanRunForm:
    form = PlanRunForm() if formdata is None else PlanRunForm(formdata=formdata)
    locale = current_locale()
    form.cloud.choices = [SelectChoice(c.key, c.display_name(locale)) for c in org.list_clouds(request_uow().session)]
    return form


def _runs_page(form: PlanRunForm, status: int = 200) -> ResponseReturnValue:
    runs = consolidation.list_runs(request_uow().session)
    return render_template("capacity/runs.html", runs=runs, form=form, locale=current_locale()), status


@bp.get("/consolidation")
def consolidation_runs() -> ResponseReturnValue:
    form = PlanRunForm(formdata=None)
    form.cloud.choices = [
        SelectChoice(c.key, c.display_name(current_locale())) for c in org.list_clouds(request_uow().session)
    ]
    return _runs_page(form)


@bp.post("/consolidation")
def plan_consolidation_run() -> ResponseReturnValue:
    form = _run_form()
    if not form.validate_on_submit():
        return _runs_page(form, 400)
    rt = runtime()
    actor = require_user().actor
    try:
        # The plan is the answer: it is made from the cloud's live placement while the operator waits.
        run_id = run_job_outside_request(
            consolidation.plan_run, rt.db, rt.providers, form.cloud.data, actor=actor, max_wave=form.max_wave.data
        )
    except DomainError as exc:
        restart_request_uow()
        form.form_errors.append(refusal_text(exc))
        return _runs_page(form, exc.http_status)
    flash(_("Consolidation run #%(id)d planned; nothing moves until it is started.", id=run_id), "success")
    return redirect(url_for("ops.consolidation_run", run_id=run_id))


def _run_page(run_id: int, *, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    run = consolidation.get_run(request_uow().session, run_id)
    waves = run.plan.get("waves", [])
    return (
        render_template(
            "capacity/run.html",
            run=run,
            waves=waves,
            summary=run.plan.get("summary", {}),
            emptied=run.plan.get("emptied", []),
            button=ButtonForm(formdata=None),
            can_start=run.state in {RunState.PLANNED.value, RunState.STOPPED.value} and run.next_wave < len(waves),
            can_stop=run.state == RunState.RUNNING.value,
            error=error,
            locale=current_locale(),
        ),
        status,
    )


@bp.get("/consolidation/<int(max=2147483647):run_id>")
def consolidation_run(run_id: int) -> ResponseReturnValue:
    return _run_page(run_id)


def _run_action(run_id: int, action: str) -> ResponseReturnValue:
    session = request_uow().session
    consolidation.get_run(session, run_id)  # 404 before anything else
    if not ButtonForm().validate_on_submit():
        return _run_page(run_id, error=_("The form expired; please try again."), status=400)
    try:
        if action == "start":
            consolidation.start_run(session, run_id, actor=require_user().actor)
            flash(_("Run #%(id)d started: the waves run one after the other.", id=run_id), "success")
        else:
            consolidation.stop_run(session, run_id, actor=require_user().actor)
            flash(_("Run #%(id)d stops after the move under way.", id=run_id), "success")
    except DomainError as exc:
        restart_request_uow()
        return _run_page(run_id, error=refusal_text(exc), status=exc.http_status)
    return redirect(url_for("ops.consolidation_run", run_id=run_id))


@bp.post("/consolidation/<int(max=2147483647):run_id>/start")
def start_consolidation_run(run_id: int) -> ResponseReturnValue:
    return _run_action(run_id, "start")


@bp.post("/consolidation/<int(max=2147483647):run_id>/stop")
def stop_consolidation_run(run_id: int) -> ResponseReturnValue:
    return _run_action(run_id, "stop")


# --- the planner for an uploaded inventory -----------------------------------------------------------


@bp.get("/planner")
def planner() -> ResponseReturnValue:
    return render_template("capacity/planner.html", form=PlannerForm(formdata=None), plan=None)


@bp.post("/planner")
def run_planner() -> ResponseReturnValue:
    form = PlannerForm()
    if not form.validate_on_submit():
        return render_template("capacity/planner.html", form=form, plan=None), 400
    # numpy, numba and OR-Tools load here, on first use, not when the app starts.
    from cloudmgr.capacity.planner import HostSpec
    from cloudmgr.capacity.planner.plan import plan_servers_csv

    try:
        text = form.servers.data.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        form.servers.errors.append(_("The file is not UTF-8 text."))
        return render_template("capacity/planner.html", form=form, plan=None), 400
    try:
        host = HostSpec(
            form.host_vcpus.data,
            float(form.host_ram_gb.data),
            float(form.host_disk_gb.data),
            float(form.cpu_ratio.data),
            float(form.ram_ratio.data),
        )
        plan = plan_servers_csv(
            request_uow().session,
            text,
            host,
            actor=require_user().actor,
            entry_point="planner.page",
            blank_is_non_classified=bool(form.blank_is_non_classified.data),
            max_wave=form.max_wave.data,
        )
    except DomainError as exc:
        form.form_errors.extend(_problems(exc))
        return render_template("capacity/planner.html", form=form, plan=None), 400
    waves = [
        {"servers": wave, "department": dept, "hosts": sorted({plan.placements[name] for name in wave})}
        for wave, dept in zip(plan.waves, plan.wave_departments, strict=True)
    ]
    return render_template(
        "capacity/planner.html",
        form=form,
        plan=plan,
        waves=waves,
        gb_of=lambda mib: round(mib / 1024, 1),
        ratio_text=f"{plan.ratio:.3f}" if math.isfinite(plan.ratio) else "—",
    )
