"""Legacy systems (issue 6): the inventory list, one system, and the inventory import.

Operators only (the ``ops`` blueprint); departments read their own systems through the API.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import SubmitField

from cloudmgr.errors import DomainError
from cloudmgr.inventory import reclassification
from cloudmgr.inventory.errors import InventoryInvalid
from cloudmgr.inventory.importer import import_inventory
from cloudmgr.inventory.models import LegacySystem, SystemState
from cloudmgr.inventory.services import SystemFilter, dependants, get_system, list_systems, state_history
from cloudmgr.organisation import services as org
from web.common import request_pages as pages
from web.common.display import refusal_text
from web.common.forms import SafeForm
from web.common.selfservice_forms import ButtonForm
from web.core.security import require_user
from web.core.uow import request_uow, restart_request_uow
from web.operations.blueprint import bp

PER_PAGE = 50
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


def _filters() -> tuple[SystemFilter, dict[str, str], list[object]]:
    session = request_uow().session
    departments = org.list_departments(session)
    dept_key = request.args.get("department") or ""
    department = next((d for d in departments if d.key == dept_key), None)
    state = request.args.get("state") or ""
    if state not in {s.value for s in SystemState}:
        state = ""
    scope = request.args.get("scope") or ""
    if scope not in {"in", "out"}:
        scope = ""
    flt = SystemFilter(department_id=department.id if department else None, state=state or None, scope=scope or None)
    args = {"department": department.key if department else "", "state": state, "scope": scope}
    return flt, args, list(departments)


@bp.get("/systems")
def systems() -> ResponseReturnValue:
    session = request_uow().session
    flt, args, departments = _filters()
    page = pages.page_arg()
    in_scope: list[LegacySystem] = []
    out_scope: list[LegacySystem] = []
    total_in = total_out = 0
    if flt.scope != "out":
        rows, total_in = list_systems(
            session,
            SystemFilter(department_id=flt.department_id, state=flt.state, scope="in"),
            limit=PER_PAGE,
            offset=(page - 1) * PER_PAGE,
        )
        in_scope = list(rows)
    if flt.scope != "in":
        rows, total_out = list_systems(
            session, SystemFilter(department_id=flt.department_id, state=flt.state, scope="out")
        )
        out_scope = list(rows)
    return render_template(
        "inventory/systems.html",
        in_scope=in_scope,
        out_scope=out_scope,
        total_in=total_in,
        total_out=total_out,
        page=page,
        pages=pages.page_count(total_in, PER_PAGE),
        departments=departments,
        states=list(SystemState),
        filters=args,
        upload_form=InventoryUploadForm(formdata=None),
        alerts=reclassification.open_alerts(session),
        pending_declassifications=reclassification.list_requests(session, state="pending"),
    )


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
