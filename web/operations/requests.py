"""Operators' requests: the approval queue, all requests, a request with its VMs, retry,
and servers no request owns (orphans)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cloudmgr.errors import DomainError
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.states import RequestState
from web.common import listcache
from web.common import request_pages as pages
from web.common.display import refusal_text
from web.common.selfservice_forms import ButtonForm, DecisionForm
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow
from web.operations.blueprint import bp

PER_PAGE = 25
ID = "<int(max=2147483647):request_id>"


@bp.get("/approvals")
def approvals() -> ResponseReturnValue:
    waiting = sr.awaiting(request_uow().session, current_actor())
    return render_template(
        "selfservice/approvals.html",
        area="ops",
        rows=waiting,
        form=DecisionForm(formdata=None),
        title=_("Approval queue"),
        lead=_("Requests the department heads approved that now wait for the cloud operators."),
        show_department=True,
    )


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
    page = pages.page_arg()
    listing = listcache.RequestPage.read(
        session,
        current_actor(),
        sr.RequestFilter(
            state=state,
            cloud_key=cloud_key,
            department_id=department.id if department else None,
            page=page,
            per_page=PER_PAGE,
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
            pages=pages.page_count(listing.total, PER_PAGE),
            clouds=clouds,
            departments=departments,
            states=list(RequestState),
            filters={
                "state": state or "",
                "cloud": cloud_key or "",
                "department": department.key if department else "",
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


@bp.get("/orphans")
def orphans() -> ResponseReturnValue:
    show_all = request.args.get("all") == "1"
    rows = sr.list_orphans(request_uow().session, include_resolved=show_all)
    return render_template("operations/orphans.html", rows=rows, show_all=show_all)
