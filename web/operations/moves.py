"""Moves (/ops/moves): live and cold migration, host drain, cross-cloud move, confirm/revert/resume."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from cloudmgr.errors import DomainError
from cloudmgr.moves import services
from cloudmgr.moves.services import move_choices
from cloudmgr.moves.states import MoveKind, MoveState
from cloudmgr.organisation import services as org
from web.common.display import refusal_text
from web.common.forms import SafeForm
from web.common.listing import ListView, filter_arg, page_request
from web.core.i18n import current_locale
from web.core.security import require_user
from web.core.uow import request_uow, restart_request_uow, run_job_outside_request, runtime
from web.operations.blueprint import bp

_REASON = [InputRequired(_l("Say why: it is stored and audited.")), Length(max=2000)]


class MigrateForm(SafeForm):
    kind = SelectField(
        _l("Migration"),
        choices=[SelectChoice("live", _l("Live migration")), SelectChoice("cold", _l("Cold migration"))],
        default="live",
    )
    cloud = SelectField(_l("Cloud"), validators=[InputRequired()])
    server_id = StringField(_l("Server ID on the cloud"), validators=[InputRequired(), Length(max=64)])
    target_host = StringField(_l("Target host (empty: the scheduler picks)"), validators=[Optional(), Length(max=255)])
    auto_confirm = BooleanField(_l("Confirm a cold migration automatically"))
    reason = TextAreaField(_l("Reason"), validators=_REASON)
    submit = SubmitField(_l("Migrate"))


class DrainForm(SafeForm):
    cloud = SelectField(_l("Cloud"), validators=[InputRequired()])
    host = StringField(_l("Compute host"), validators=[InputRequired(), Length(max=255)])
    disable_host = BooleanField(_l("Disable the host's compute service during the drain"), default=True)
    keep_disabled = BooleanField(_l("Keep it disabled once empty (maintenance)"))
    only_managed = BooleanField(_l("Only servers of the departments' projects"))
    reason = TextAreaField(_l("Reason"), validators=_REASON)
    submit = SubmitField(_l("Drain the host"))


class CrossCloudForm(SafeForm):
    cloud = SelectField(_l("From cloud"), validators=[InputRequired()])
    server_id = StringField(_l("Server ID on the cloud"), validators=[InputRequired(), Length(max=64)])
    target_cloud = SelectField(_l("To cloud"), validators=[InputRequired()])
    department = StringField(_l("Target department (empty: the server's own)"), validators=[Length(max=64)])
    zone = SelectField(
        _l("Zone"),
        choices=[
            SelectChoice("", _l("The server's zone")),
            SelectChoice("internet", _l("Internet")),
            SelectChoice("extranet", _l("E-gov extranet")),
        ],
        default="",
    )
    reason = TextAreaField(_l("Reason"), validators=_REASON)
    submit = SubmitField(_l("Move to the other cloud"))


class SystemMoveForm(SafeForm):
    cloud = SelectField(_l("From cloud"), validators=[InputRequired()])
    department = StringField(_l("Department"), validators=[InputRequired(), Length(max=64)])
    application_system = StringField(_l("Application system"), validators=[InputRequired(), Length(max=128)])
    target_cloud = SelectField(_l("To cloud"), validators=[InputRequired()])
    zone = SelectField(
        _l("Zone"),
        choices=[
            SelectChoice("", _l("Each server's zone")),
            SelectChoice("internet", _l("Internet")),
            SelectChoice("extranet", _l("E-gov extranet")),
        ],
        default="",
    )
    reason = TextAreaField(_l("Reason"), validators=_REASON)
    submit = SubmitField(_l("Move the whole system"))


class MoveActionForm(SafeForm):
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=2000)])


def _forms(formdata: Any = None) -> dict[str, FlaskForm]:
    locale = current_locale()
    clouds = [SelectChoice(c.key, c.display_name(locale)) for c in org.list_clouds(request_uow().session) if c.enabled]
    forms: dict[str, FlaskForm] = {
        "migrate": MigrateForm(prefix="m", formdata=formdata),
        "drain": DrainForm(prefix="d", formdata=formdata),
        "cross": CrossCloudForm(prefix="x", formdata=formdata),
        "system": SystemMoveForm(prefix="s", formdata=formdata),
    }
    for form in forms.values():
        form.cloud.choices = clouds
    forms["cross"].target_cloud.choices = clouds
    forms["system"].target_cloud.choices = clouds
    # The servers, hosts and departments to pick from by name (datalists in moves/list.html,
    # which the browser filters as one types; an id or host typed by hand still goes).
    for name, field_name, datalist in (
        ("migrate", "server_id", "move-servers"),
        ("migrate", "target_host", "move-hosts"),
        ("drain", "host", "move-hosts"),
        ("cross", "server_id", "move-servers"),
        ("cross", "department", "move-departments"),
        ("system", "department", "move-departments"),
    ):
        forms[name][field_name].render_kw = {"list": datalist, "autocomplete": "off"}
    return forms


def _page(forms: dict[str, FlaskForm], status: int = 200, *, open_form: str | None = None) -> ResponseReturnValue:
    view = ListView(
        endpoint="ops.moves",
        params=page_request(),
        # Labelled by the template's own menus (moves/_macros.html); here for the query string.
        filters=[
            filter_arg("state", _("State"), [(s.value, s.value) for s in MoveState], all_label=_("All")),
            filter_arg("kind", _("Kind"), [(k.value, k.value) for k in MoveKind], all_label=_("All")),
        ],
        search_hint=_("Move number, server, host, reason or who asked"),
    )
    state, kind = view.value("state") or None, view.value("kind") or None
    view.page = services.moves_page(request_uow().session, view.params, state=state, kind=kind)
    moves = view.page.rows
    return (
        render_template(
            "moves/list.html",
            moves=moves,
            view=view,
            choices=move_choices(request_uow().session, current_locale()),
            forms=forms,
            open_form=open_form,
            state=state,
            kind=kind,
            states=[s.value for s in MoveState],
            kinds=[k.value for k in MoveKind],
            locale=current_locale(),
        ),
        status,
    )


@bp.get("/moves")
def moves() -> ResponseReturnValue:
    forms = _forms()
    # The capacity page's host list links here with ?drain_host=…&cloud=… to fill the drain form.
    if request.args.get("drain_host"):
        forms["drain"].host.data = request.args["drain_host"][:255]
        if request.args.get("cloud"):
            forms["drain"].cloud.data = request.args["cloud"][:64]
    return _page(forms, open_form="drain" if request.args.get("drain_host") else None)


def _start(name: str) -> ResponseReturnValue:
    forms = _forms(request.form)
    form = forms[name]
    if not form.validate_on_submit():
        return _page(forms, 400, open_form=name)
    rt = runtime()
    actor = require_user().actor
    data = form.data
    # Starting a move reads the cloud (the server, its host, the other hosts' room) so the
    # form answers at once whether it can be done; the move itself runs in a work item.
    try:
        if name == "migrate":
            move_id = run_job_outside_request(
                services.start_migration, rt.db, rt.providers, kind=data["kind"], cloud_key=data["cloud"],
                server_id=data["server_id"], target_host=data["target_host"] or None,
                auto_confirm=bool(data["auto_confirm"]), actor=actor, reason=data["reason"],
            )  # fmt: skip
        elif name == "drain":
            move_id = run_job_outside_request(
                services.start_drain, rt.db, rt.providers, cloud_key=data["cloud"], host=data["host"], actor=actor,
                reason=data["reason"], disable_host=bool(data["disable_host"]),
                keep_disabled=bool(data["keep_disabled"]), only_managed=bool(data["only_managed"]),
            )  # fmt: skip
        elif name == "system":
            move_id = run_job_outside_request(
                services.start_system_move, rt.db, rt.providers, cloud_key=data["cloud"],
                department_key=data["department"], application_system=data["application_system"],
                target_cloud_key=data["target_cloud"], target_zone=data["zone"] or None, actor=actor,
                reason=data["reason"],
            )  # fmt: skip
        else:
            move_id = run_job_outside_request(
                services.start_cross_cloud_move, rt.db, rt.providers, cloud_key=data["cloud"],
                server_id=data["server_id"], target_cloud_key=data["target_cloud"],
                target_department_key=(data["department"] or "").strip() or None,
                target_zone=data["zone"] or None, actor=actor, reason=data["reason"],
            )  # fmt: skip
    except DomainError as exc:
        restart_request_uow()
        forms = _forms(request.form)
        forms[name].validate()
        forms[name].form_errors.append(refusal_text(exc))
        return _page(forms, exc.http_status, open_form=name)
    flash(_("Move #%(id)d stored; it runs in the background.", id=move_id), "success")
    return redirect(url_for("ops.move_detail", move_id=move_id))


@bp.post("/moves/migrate")
def start_migration() -> ResponseReturnValue:
    return _start("migrate")


@bp.post("/moves/drain")
def start_drain() -> ResponseReturnValue:
    return _start("drain")


@bp.post("/moves/cross-cloud")
def start_cross_cloud() -> ResponseReturnValue:
    return _start("cross")


@bp.post("/moves/system")
def start_system_move() -> ResponseReturnValue:
    return _start("system")


def _detail(move_id: int, *, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    move = services.get_move(request_uow().session, move_id)
    return (
        render_template(
            "moves/detail.html",
            move=move,
            form=MoveActionForm(formdata=None),
            can_decide=move.state == MoveState.AWAITING_CONFIRM.value,
            can_resume=move.state in (MoveState.FAILED.value, MoveState.PARTIAL.value),
            can_undo=services.may_undo(move),
            error=error,
            locale=current_locale(),
        ),
        status,
    )


@bp.get("/moves/<int(max=2147483647):move_id>")
def move_detail(move_id: int) -> ResponseReturnValue:
    return _detail(move_id)


@bp.post("/moves/<int(max=2147483647):move_id>/<action>")
def move_action(move_id: int, action: str) -> ResponseReturnValue:
    actions = {"confirm": services.confirm, "revert": services.revert, "resume": services.resume}
    if action not in actions:
        abort(404)
    session = request_uow().session
    kind = services.get_move(session, move_id).kind  # 404 before anything else
    form = MoveActionForm()
    if not form.validate_on_submit():
        return _detail(move_id, error=_("The form expired; please try again."), status=400)
    try:
        actions[action](session, move_id, actor=require_user().actor, reason=form.reason.data or None)
    except DomainError as exc:
        restart_request_uow()
        return _detail(move_id, error=refusal_text(exc), status=exc.http_status)
    messages = {
        "confirm": _("Confirmed: the server stays on its new host."),
        "revert": _("Reverting: the server goes back to its source host.")
        if kind != "cross_cloud"
        else _("Undoing: what the move made on the target is removed and the server goes back to its source."),
        "resume": _("Resumed: the move carries on from the step where it stopped."),
    }
    flash(messages[action], "success")
    return redirect(url_for("ops.move_detail", move_id=move_id))
