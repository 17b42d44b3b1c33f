"""Migration waves (/ops/waves) and the programme against its deadlines (/ops/programme; the page
itself, also shown to finance and departments, is ``web.common.programme``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import DateField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length

from cloudmgr.errors import DomainError
from cloudmgr.organisation import services as org
from cloudmgr.programme import services as waves
from cloudmgr.programme import tracking
from cloudmgr.programme.models import WaveState
from web.common.display import refusal_text
from web.common.forms import SafeForm
from web.common.listing import ListView, filter_arg, page_request
from web.common.programme import WAVE_STATES, render_programme
from web.common.selfservice_forms import ButtonForm
from web.core.i18n import current_locale
from web.core.security import current_actor, require_user
from web.core.uow import request_uow, restart_request_uow, run_job_outside_request, runtime
from web.operations.blueprint import bp

# --- forms ---------------------------------------------------------------------------------------


class WaveForm(SafeForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("Give the wave a name.")), Length(max=128)])
    cloud = SelectField(_l("Target cloud"), validators=[InputRequired()])
    zone = SelectField(
        _l("Network zone"),
        choices=[SelectChoice("extranet", _l("E-government extranet")), SelectChoice("internet", _l("Internet"))],
        validators=[InputRequired()],
    )
    window_start = DateField(_l("Window starts"), validators=[InputRequired(_l("Give a date (YYYY-MM-DD)."))])
    window_end = DateField(_l("Window ends"), validators=[InputRequired(_l("Give a date (YYYY-MM-DD)."))])
    submit = SubmitField(_l("Create the wave"))

    def validate(self, extra_validators: Any = None) -> bool:
        ok = bool(super().validate(extra_validators))
        if ok and self.window_end.data < self.window_start.data:
            self.window_end.errors.append(_("The window ends before it starts."))
            ok = False
        return ok


def _wave_form(formdata: Any = "default") -> WaveForm:
    form = WaveForm() if formdata == "default" else WaveForm(formdata=formdata)
    locale = current_locale()
    form.cloud.choices = [
        SelectChoice(c.key, c.display_name(locale)) for c in org.list_clouds(request_uow().session) if c.enabled
    ]
    return form


# --- waves ---------------------------------------------------------------------------------------


@bp.get("/waves")
def waves_list() -> ResponseReturnValue:
    session = request_uow().session
    view = ListView(
        endpoint="ops.waves_list",
        params=page_request(),
        filters=[filter_arg("state", _("State"), [(k, str(v)) for k, v in WAVE_STATES.items()], all_label=_("All"))],
        search_hint=_("Wave number, name or author"),
    )
    view.page = waves.waves_page(session, view.params, state=view.value("state") or None)
    found = view.page.rows
    return render_template(
        "programme/waves.html",
        view=view,
        waves=found,
        counts=waves.member_counts(session, [w.id for w in found]),
        locale=current_locale(),
    )


@bp.get("/waves/new")
def wave_new() -> ResponseReturnValue:
    form = _wave_form(None)
    today = tracking.today()
    form.window_start.data = today + timedelta(days=7)
    form.window_end.data = today + timedelta(days=8)
    return render_template("programme/new_wave.html", form=form)


@bp.post("/waves/new")
def wave_create() -> ResponseReturnValue:
    form = _wave_form()
    if not form.validate_on_submit():
        return render_template("programme/new_wave.html", form=form), 400
    try:
        wave = waves.create_wave(
            request_uow().session,
            name=form.name.data,
            cloud_key=form.cloud.data,
            zone=form.zone.data,
            window_start=form.window_start.data,
            window_end=form.window_end.data,
            actor=current_actor(),
        )
    except DomainError as exc:
        restart_request_uow()
        form.form_errors.append(refusal_text(exc))
        return render_template("programme/new_wave.html", form=form), exc.http_status
    flash(_("Wave #%(id)d created: add its systems, then check it.", id=wave.id), "success")
    return redirect(url_for("ops.wave_detail", wave_id=wave.id))


def _wave_page(wave_id: int, *, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    session = request_uow().session
    wave = waves.get_wave(session, wave_id)
    editable = wave.state in {WaveState.DRAFT, WaveState.CHECKED}
    result = wave.check_result or {}
    current = sorted(m.system_id for m in wave.members)
    return (
        render_template(
            "programme/wave.html",
            wave=wave,
            systems=waves.members_easy_first(session, wave),
            candidates=waves.candidates(session, wave) if editable else [],
            result=result,
            stale=bool(result) and result.get("members") != current,
            editable=editable,
            can_start=wave.state == WaveState.CHECKED,
            button=ButtonForm(formdata=None),
            error=error,
            locale=current_locale(),
        ),
        status,
    )


@bp.get("/waves/<int(max=2147483647):wave_id>")
def wave_detail(wave_id: int) -> ResponseReturnValue:
    return _wave_page(wave_id)


def _wave_action(wave_id: int, action: str) -> ResponseReturnValue:
    session = request_uow().session
    waves.get_wave(session, wave_id)  # 404 first
    if not ButtonForm().validate_on_submit():
        return _wave_page(wave_id, error=_("The form expired; please try again."), status=400)
    actor = current_actor()
    try:
        if action == "add":
            ids = []
            for raw in request.form.getlist("system_id"):
                if not raw.isdigit() or int(raw) > 2147483647:
                    return _wave_page(wave_id, error=_("Choose systems from the list."), status=400)
                ids.append(int(raw))
            if not ids:
                return _wave_page(wave_id, error=_("Choose at least one system to add."), status=400)
            added = waves.add_systems(session, wave_id, list(ids), actor=actor)
            flash(_("%(n)d systems added.", n=len(added)), "success")
        elif action == "remove":
            raw = request.form.get("system_id", "")
            if not raw.isdigit() or int(raw) > 2147483647:
                return _wave_page(wave_id, error=_("Choose systems from the list."), status=400)
            system = waves.remove_system(session, wave_id, int(raw), actor=actor)
            flash(_("%(host)s left the wave.", host=system.hostname), "success")
        elif action == "check":
            rt = runtime()
            # The check's verdict is the answer (it reads the cloud's free capacity now).
            result = run_job_outside_request(waves.check_wave, rt.db, rt.providers, wave_id, actor=actor)
            if result["fits"]:
                flash(_("The wave fits: it can start."), "success")
            else:
                flash(_("The wave does not fit; see the check below."), "warning")
        elif action == "start":
            waves.start_wave(session, wave_id, actor=actor)
            flash(_("Wave #%(id)d started: each system's runbook is queued.", id=wave_id), "success")
        elif action == "cancel":
            waves.cancel_wave(session, wave_id, actor=actor, reason=request.form.get("reason", "")[:1000])
            flash(_("Wave #%(id)d cancelled.", id=wave_id), "success")
        else:  # pragma: no cover (routes below)
            abort(404)
    except DomainError as exc:
        restart_request_uow()
        return _wave_page(wave_id, error=refusal_text(exc), status=exc.http_status)
    return redirect(url_for("ops.wave_detail", wave_id=wave_id))


@bp.post("/waves/<int(max=2147483647):wave_id>/systems")
def wave_add_systems(wave_id: int) -> ResponseReturnValue:
    return _wave_action(wave_id, "add")


@bp.post("/waves/<int(max=2147483647):wave_id>/systems/remove")
def wave_remove_system(wave_id: int) -> ResponseReturnValue:
    return _wave_action(wave_id, "remove")


@bp.post("/waves/<int(max=2147483647):wave_id>/check")
def wave_check(wave_id: int) -> ResponseReturnValue:
    return _wave_action(wave_id, "check")


@bp.post("/waves/<int(max=2147483647):wave_id>/start")
def wave_start(wave_id: int) -> ResponseReturnValue:
    return _wave_action(wave_id, "start")


@bp.post("/waves/<int(max=2147483647):wave_id>/cancel")
def wave_cancel(wave_id: int) -> ResponseReturnValue:
    return _wave_action(wave_id, "cancel")


# --- the burndown chart (server-rendered SVG, classes only) ---------------------------------------

# --- the programme page --------------------------------------------------------------------------


@bp.get("/programme")
def programme() -> ResponseReturnValue:
    return render_programme(audience="ops")


@bp.post("/programme/rooms/<int(max=2147483647):room_id>/close")
def close_room(room_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("ops.programme")), 303
    try:
        room = tracking.close_room(request_uow().session, room_id, actor=require_user().actor)
    except DomainError as exc:
        restart_request_uow()
        if exc.http_status == 404:
            abort(404)
        flash(refusal_text(exc), "error")
        return redirect(url_for("ops.programme", _anchor="rooms")), 303
    flash(_("Server room %(code)s closed.", code=room.code), "success")
    return redirect(url_for("ops.programme", _anchor="rooms"))
