"""Legacy systems (issue 6): the inventory list, one system, and the inventory import.

Operators only (the ``ops`` blueprint); departments read their own systems through the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, SubmitField

from cloudmgr.errors import DomainError
from cloudmgr.inventory import reclassification
from cloudmgr.inventory.errors import InventoryInvalid
from cloudmgr.inventory.importer import import_inventory
from cloudmgr.inventory.models import LegacySystem, SystemState
from cloudmgr.inventory.services import SystemFilter, dependants, get_system, list_systems, state_history
from cloudmgr.paging import Page
from cloudmgr.programme import services as programme
from web.common import listcache
from web.common.display import refusal_text
from web.common.forms import SafeForm
from web.common.labels import zone_label
from web.common.listing import ListView, filter_arg, page_request
from web.common.selfservice_forms import ButtonForm
from web.core.i18n import current_locale
from web.core.security import require_user
from web.core.uow import request_uow, restart_request_uow
from web.operations.blueprint import bp

PER_PAGE = 50
#: Classified and intranet systems stay off the cloud: shown as the first rows of their list only.
OUT_OF_SCOPE_ROWS = 200
ID = "<int(max=2147483647):system_id>"

SYSTEM_STATE_LABELS: Mapping[str, object] = {
    "legacy": _l("In the server room"),
    "intranet": _l("Intranet (classified)"),
    "planned": _l("Planned in a wave"),
    "migrating": _l("Migrating"),
    "on_cloud": _l("On the cloud"),
    # The migration stopped (a failed pre-check, provisioning or replication) or was rolled back:
    # either way the source serves and nothing on the cloud does.
    "rolled_back": _l("Not migrated: the source still serves"),
    "decommissioned": _l("Decommissioned"),
}
SYSTEM_STATE_CLASSES: Mapping[str, str] = {
    "legacy": "off",
    "intranet": "off",
    "planned": "pending",
    "migrating": "pending",
    "on_cloud": "ok",
    "rolled_back": "warn",
    "decommissioned": "ok",
}
CLASSIFICATION_LABELS: Mapping[str, object] = {
    "classified": _l("Classified"),
    "non_classified": _l("Non-classified"),
}
NETWORK_LABELS: Mapping[str, object] = {
    "internet": _l("Internet"),
    "extranet": _l("E-government extranet"),
    "intranet": _l("E-government intranet"),
}
AUDIT_ACTION_LABELS: Mapping[str, object] = {
    "legacy_system.imported": _l("Imported"),
    "legacy_system.updated": _l("Updated by a re-import"),
    "legacy_system.transition": _l("State changed"),
    "legacy_system.placement_refused": _l("Placement refused (classified)"),
    "legacy_system.target_set": _l("Target cloud set"),
    "legacy_system.declassification_requested": _l("Declassification requested (waits for an administrator)"),
    "legacy_system.declassification_approved": _l("Declassification approved"),
    "legacy_system.declassification_rejected": _l("Declassification rejected"),
    "legacy_system.reclassified_on_cloud": _l("Classified with servers on the cloud (alert)"),
    "legacy_system.reclassification_alert_closed": _l("Reclassification alert closed"),
}
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


@bp.app_template_filter("label_system_state")
def system_state_label(code: object) -> str:
    return str(SYSTEM_STATE_LABELS.get(str(code), code))


@bp.app_template_filter("system_state_class")
def system_state_class(code: object) -> str:
    return f"state state-{SYSTEM_STATE_CLASSES.get(str(code), 'off')}"


@bp.app_template_filter("label_classification")
def classification_label(code: object) -> str:
    return str(CLASSIFICATION_LABELS.get(str(code), code))


@bp.app_template_filter("label_legacy_network")
def network_label(code: object) -> str:
    return str(NETWORK_LABELS.get(str(code), code))


@bp.app_template_filter("label_system_action")
def audit_action_label(code: object) -> str:
    return str(AUDIT_ACTION_LABELS.get(str(code), code))


class InventoryUploadForm(SafeForm):
    inventory_file = FileField(
        _l("Inventory file (YAML or CSV)"), validators=[FileRequired(_l("Choose an inventory file."))]
    )
    submit = SubmitField(_l("Import"))


def _system_list() -> tuple[ListView, SystemFilter]:
    session = request_uow().session
    departments = listcache.department_choices(session)
    locale = current_locale()
    view = ListView(
        endpoint="ops.systems",
        params=page_request(per_page=PER_PAGE),
        default_per_page=PER_PAGE,
        filters=[
            filter_arg(
                "department",
                _("Department"),
                [(d.key, d.display_name(locale)) for d in departments],
                all_label=_("All departments"),
            ),
            filter_arg(
                "state",
                _("State"),
                [(s.value, system_state_label(s.value)) for s in SystemState],
                all_label=_("All states"),
            ),
            filter_arg(
                "scope",
                _("Scope"),
                [("in", _("In scope (move to the cloud)")), ("out", _("Out of scope (classified, intranet)"))],
                all_label=_("All"),
            ),
        ],
        search_hint=_("Host name, application system, operating system, owner or address"),
    )
    dept_key = view.value("department")
    flt = SystemFilter(
        department_id=next((d.id for d in departments if d.key == dept_key), None),
        state=view.value("state") or None,
        scope=view.value("scope") or None,
        q=view.params.q,
    )
    return view, flt


class SystemsToWaveForm(SafeForm):
    """The systems ticked in the list (``system_id``, several) into one open wave."""

    wave_id = SelectField(_l("Wave"), coerce=int, validate_choice=True)
    submit = SubmitField(_l("Add the chosen to the wave"))


def _to_wave_form(formdata: object = None) -> SystemsToWaveForm:
    form = SystemsToWaveForm(formdata=formdata)
    form.wave_id.choices = [
        (w.id, f"#{w.id} {w.name} · {w.cloud.display_name(current_locale())} · {zone_label(w.zone)}")
        for w in programme.editable_waves(request_uow().session)
    ]
    return form


def _systems_page(*, to_wave: SystemsToWaveForm | None = None, status: int = 200) -> ResponseReturnValue:
    session = request_uow().session
    view, flt = _system_list()
    in_scope: list[LegacySystem] = []
    out_scope: list[LegacySystem] = []
    total_in = total_out = 0
    if flt.scope != "out":
        params = view.params
        rows, total_in = list_systems(session, replace(flt, scope="in"), limit=params.per_page, offset=params.offset)
        in_scope = list(rows)
        view.page = Page(rows=in_scope, total=total_in, page=params.page, per_page=params.per_page)
    if flt.scope != "in":
        rows, total_out = list_systems(session, replace(flt, scope="out"), limit=OUT_OF_SCOPE_ROWS)
        out_scope = list(rows)
    return (
        render_template(
            "inventory/systems.html",
            view=view,
            in_scope=in_scope,
            out_scope=out_scope,
            total_in=total_in,
            total_out=total_out,
            filters={"scope": flt.scope or ""},
            to_wave=to_wave or _to_wave_form(),
            upload_form=InventoryUploadForm(formdata=None),
            alerts=reclassification.open_alerts(session),
            pending_declassifications=reclassification.list_requests(session, state="pending"),
        ),
        status,
    )


@bp.get("/systems")
def systems() -> ResponseReturnValue:
    return _systems_page()


@bp.post("/systems/to-wave")
def systems_to_wave() -> ResponseReturnValue:
    """Add the ticked systems to a wave, each checked on its own; refused ones are named with the reason."""
    form = _to_wave_form(request.form)
    if not form.validate_on_submit():
        return _systems_page(to_wave=form, status=400)
    ids = [int(raw) for raw in request.form.getlist("system_id") if raw.isdigit() and len(raw) <= 9]
    if not ids:
        form.form_errors.append(_("Tick at least one system."))
        return _systems_page(to_wave=form, status=400)
    try:
        outcome = programme.add_systems_each(request_uow().session, form.wave_id.data, ids, actor=require_user().actor)
    except DomainError as exc:
        restart_request_uow()
        form.form_errors.append(refusal_text(exc))
        return _systems_page(to_wave=form, status=exc.http_status)
    added = len(outcome.added)
    flash(
        ngettext(
            "%(num)d system added to wave #%(id)d.",
            "%(num)d systems added to wave #%(id)d.",
            added,
            id=form.wave_id.data,
        ),
        "success" if added else "warning",
    )
    for row in outcome.refused:
        flash(_("%(name)s: %(reason)s", name=row.hostname, reason=refusal_text(row.error)), "error")
    back: dict[str, Any] = request.args.to_dict()  # the list as it was: search, filters, page
    return redirect(url_for("ops.systems", **back))


@bp.get(f"/systems/{ID}")
def system_detail(system_id: int) -> ResponseReturnValue:
    session = request_uow().session
    system = get_system(session, system_id)
    return render_template(
        "inventory/system.html",
        system=system,
        used_by=dependants(session, system),
        history=state_history(session, system),
        alerts=reclassification.open_alerts(session, system_id=system.id),
        pending_declassifications=reclassification.list_requests(session, state="pending", system_id=system.id),
    )


def _import_page(
    form: InventoryUploadForm, *, problems: list[tuple[str, str]] | None = None, status: int = 200
) -> tuple[str, int]:
    return render_template("inventory/import.html", form=form, problems=problems or []), status


@bp.get("/systems/import")
def import_form() -> ResponseReturnValue:
    return _import_page(InventoryUploadForm(formdata=None))


@bp.post("/systems/import")
def import_systems() -> ResponseReturnValue:
    form = InventoryUploadForm()
    if not form.validate_on_submit():
        return _import_page(form, status=400)
    upload = form.inventory_file.data
    name = (upload.filename or "inventory.yml").replace("\\", "/").rsplit("/", 1)[-1][:120]
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        form.inventory_file.errors.append(_("The file is larger than 5 MB."))
        return _import_page(form, status=400)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        form.inventory_file.errors.append(_("The file is not UTF-8 text."))
        return _import_page(form, status=400)
    try:
        result = import_inventory(
            request_uow().session,
            text,
            filename=name,
            actor=require_user().actor,
            entry_point="inventory.import.page",
        )
    except InventoryInvalid as exc:
        restart_request_uow()
        form.form_errors.append(
            _("%(count)d problem(s) in %(name)s: nothing was imported.", count=len(exc.problems), name=name)
        )
        return _import_page(form, problems=exc.problems, status=400)
    flash(
        _(
            "%(total)d systems imported from %(name)s: %(created)d new, %(updated)d updated, "
            "%(unchanged)d unchanged; %(out)d classified or on the intranet.",
            total=result.total,
            name=name,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            out=result.out_of_scope,
        ),
        "success",
    )
    if result.declassifications_held:
        flash(
            _(
                "%(count)d declassification(s) were held for an administrator's approval and not applied: %(hosts)s",
                count=result.declassifications_held,
                hosts=", ".join(result.held_hosts),
            ),
            "warning",
        )
    if result.alerts_raised:
        flash(
            _(
                "%(count)d system(s) became classified with servers on the cloud: see the alerts.",
                count=result.alerts_raised,
            ),
            "error",
        )
    return redirect(url_for("ops.systems"))


@bp.post("/systems/alerts/<int(max=2147483647):alert_id>/close")
def close_reclassification_alert(alert_id: int) -> ResponseReturnValue:
    """Close an alert: resolved once the servers left the cloud, else acknowledged with a reason."""
    back = request.form.get("back") == "system"
    if not ButtonForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("ops.systems")), 303
    try:
        alert = reclassification.close_alert(
            request_uow().session, alert_id, actor=require_user().actor, reason=request.form.get("reason", "")
        )
    except DomainError as exc:
        restart_request_uow()
        if exc.http_status == 404:
            abort(404)
        flash(refusal_text(exc), "error")
        return redirect(url_for("ops.systems", _anchor="alerts")), 303
    flash(_("The alert about %(host)s is closed.", host=alert.system.hostname), "success")
    if back:
        return redirect(url_for("ops.system_detail", system_id=alert.system_id))
    return redirect(url_for("ops.systems", _anchor="alerts"))
