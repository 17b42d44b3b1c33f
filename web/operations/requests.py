"""Operators' requests: the approval queue, all requests, a request with its VMs, retry,
and the servers, volumes and floating IPs no request owns (orphans; volumes and addresses
adopted or deleted from here)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from wtforms import SubmitField

from cloudmgr.errors import DomainError
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.states import RequestState
from web.common import approval_pages, listcache
from web.common import request_pages as pages
from web.common.display import refusal_text
from web.common.forms import SafeForm
from web.common.listing import ListView, filter_arg, page_request
from web.common.selfservice_forms import ButtonForm
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow
from web.operations.blueprint import bp

PER_PAGE = 25
ID = "<int(max=2147483647):request_id>"


def _approvals_text() -> approval_pages.QueueText:
    return approval_pages.QueueText(
        title=_("Approval queue"),
        lead=_("Requests the department heads approved that now wait for the cloud operators."),
    )


@bp.get("/approvals")
def approvals() -> ResponseReturnValue:
    return approval_pages.approvals_page("ops", _approvals_text(), show_department=True)


@bp.post("/approvals/decide")
def bulk_decide() -> ResponseReturnValue:
    return approval_pages.bulk_decide("ops", _approvals_text(), show_department=True)


@bp.get("/requests")
def requests() -> ResponseReturnValue:
    session = request_uow().session
    clouds = listcache.cloud_choices(session)
    departments = listcache.department_choices(session)
    state = request.args.get("state") or None
    if state not in {None, *RequestState}:
        state = None
    cloud_key = request.args.get("cloud") or None
    if cloud_key not in {None, *(c.key for c in clouds)}:
        cloud_key = None
    dept_key = request.args.get("department") or None
    department = next((d for d in departments if d.key == dept_key), None)
    params = page_request(per_page=PER_PAGE)
    page = params.page
    listing = listcache.RequestPage.read(
        session,
        current_actor(),
        sr.RequestFilter(
            state=state,
            cloud_key=cloud_key,
            department_id=department.id if department else None,
            page=page,
            per_page=params.per_page,
            q=params.q,
        ),
    )
    return listcache.cached_page(
        (listing.version, tuple(clouds), tuple(departments)),
        lambda: render_template(
            "operations/requests.html",
            table=listing.table(
                session,
                locale=current_locale(),
                detail_endpoint="ops.request_detail",
                caption=_("All requests of every department"),
                show_department=True,
            ),
            total=listing.total,
            page=page,
            pages=pages.page_count(listing.total, params.per_page),
            clouds=clouds,
            departments=departments,
            states=list(RequestState),
            q=params.q or "",
            filters={
                "state": state or "",
                "cloud": cloud_key or "",
                "department": department.key if department else "",
                "q": params.q or "",
                "per_page": params.per_page if params.per_page != PER_PAGE else "",
            },
        ),
    )


@bp.get(f"/requests/{ID}")
def request_detail(request_id: int) -> ResponseReturnValue:
    return pages.request_detail_page("ops", request_id)


@bp.post(f"/requests/{ID}/decide")
def decide(request_id: int) -> ResponseReturnValue:
    return pages.decide("ops", request_id)


@bp.post(f"/requests/{ID}/cancel")
def cancel(request_id: int) -> ResponseReturnValue:
    return pages.cancel("ops", request_id)


@bp.post("/servers/<int(max=2147483647):server_id>/retry")
def retry_server(server_id: int) -> ResponseReturnValue:
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    session = request_uow().session
    server = sr.get_server(session, current_actor(), server_id)
    request_id = server.request_id
    try:
        sr.retry_server(session, current_actor(), server_id)
    except DomainError as exc:
        restart_request_uow()
        return pages.request_detail_page("ops", request_id, error=refusal_text(exc), status=exc.http_status)
    flash(_("%(name)s will be created again.", name=server.name), "success")
    return redirect(url_for("ops.request_detail", request_id=request_id))


def _orphans_page(*, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    session = request_uow().session
    clouds = listcache.cloud_choices(session)
    locale = current_locale()
    view = ListView(
        endpoint="ops.orphans",
        params=page_request(),
        filters=[
            filter_arg(
                "kind", _("Kind"), [("volume", _("Volume")), ("address", _("Floating IP"))], all_label=_("All kinds")
            ),
            filter_arg(
                "cloud", _("Cloud"), [(c.key, c.display_name(locale)) for c in clouds], all_label=_("All clouds")
            ),
            filter_arg("all", _("Which"), [("1", _("Include resolved ones"))], all_label=_("Only open ones")),
        ],
        search_hint=_("Name, cloud ID, project or idempotency key"),
    )
    cloud_key = view.value("cloud")
    flt = sr.OrphanFilter(
        kind=view.value("kind") or None,
        cloud_id=next((c.id for c in clouds if c.key == cloud_key), None),
        include_resolved=view.value("all") == "1",
    )
    view.page = sr.orphan_resources_page(session, flt, view.params)
    servers = sr.orphan_servers_page(session, flt, page_request(page_param="servers_page"))
    return (
        render_template(
            "operations/orphans.html",
            view=view,
            rows=servers.rows,
            servers=servers,
            resources=view.page.rows,
            show_all=flt.include_resolved,
            form=ButtonForm(formdata=None),
            bulk_form=OrphanBulkForm(formdata=None),
            error=error,
        ),
        status,
    )


@bp.get("/orphans")
def orphans() -> ResponseReturnValue:
    return _orphans_page()


ORPHAN_ID = "<int(max=2147483647):orphan_id>"


@bp.post(f"/orphans/resources/{ORPHAN_ID}/adopt")
def adopt_orphan(orphan_id: int) -> ResponseReturnValue:
    """Adopt an orphaned volume or address into its project's department: queued, done shortly after."""
    return _orphan_action(orphan_id, "adopt")


@bp.post(f"/orphans/resources/{ORPHAN_ID}/delete")
def delete_orphan(orphan_id: int) -> ResponseReturnValue:
    """Delete an orphaned volume or release an orphaned address on the cloud: queued, done shortly after."""
    return _orphan_action(orphan_id, "delete")


def _orphan_action(orphan_id: int, action: str) -> ResponseReturnValue:
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        orphan = sr.request_orphan_action(request_uow().session, current_actor(), orphan_id, action)
    except DomainError as exc:
        restart_request_uow()
        return _orphans_page(error=refusal_text(exc), status=exc.http_status)
    if action == "adopt":
        flash(_("%(name)s will be adopted by its department shortly.", name=orphan.name), "success")
    else:
        flash(_("%(name)s will be deleted on the cloud shortly.", name=orphan.name), "success")
    return redirect(url_for("ops.orphans"))


class OrphanBulkForm(SafeForm):
    """Adopt or delete the orphans ticked in the table (``orphan_id``, several)."""

    adopt = SubmitField(_l("Adopt the chosen"))
    delete = SubmitField(_l("Delete the chosen"))


@bp.post("/orphans/resources/bulk")
def bulk_orphans() -> ResponseReturnValue:
    """Adopt or delete several orphans; refused ones are named with their reasons."""
    form = OrphanBulkForm()
    if not form.validate_on_submit():
        return _orphans_page(error=_("The form has expired; please try again."), status=400)
    ids = [int(raw) for raw in request.form.getlist("orphan_id") if raw.isdigit() and len(raw) <= 9]
    if not ids:
        return _orphans_page(error=_("Tick at least one volume or address."), status=400)
    action = "delete" if form.delete.data else "adopt"
    try:
        outcome = sr.act_on_orphans(request_uow().session, current_actor(), ids, action)
    except DomainError as exc:
        restart_request_uow()
        return _orphans_page(error=refusal_text(exc), status=exc.http_status)
    queued = len(outcome.queued)
    if action == "adopt":
        summary = ngettext(
            "%(num)d resource will be adopted shortly.", "%(num)d resources will be adopted shortly.", queued
        )
    else:
        summary = ngettext(
            "%(num)d resource will be deleted on the cloud shortly.",
            "%(num)d resources will be deleted on the cloud shortly.",
            queued,
        )
    flash(summary, "success" if queued else "warning")
    for row in outcome.refused:
        flash(_("%(name)s: %(reason)s", name=row.name, reason=refusal_text(row.error)), "error")
    return redirect(url_for("ops.orphans"))
