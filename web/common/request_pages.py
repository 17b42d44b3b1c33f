"""Request pages shared by the portal, operations and finance.

Each audience's blueprint registers its own routes (``<area>.request_detail``,
``<area>.decide`` …) and calls these helpers; the template builds its links with the
area's endpoints, so one department never gets a link into another's pages.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cloudmgr.errors import DomainError
from cloudmgr.firewall import services as firewall
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.servicerequests.states import RequestState
from web.common.display import chain_view, refusal_text
from web.common.selfservice_forms import ButtonForm, CancelForm, DecisionForm
from web.core.security import current_actor, safe_next
from web.core.uow import request_uow, restart_request_uow

MAX_PAGE = 100_000


def page_arg() -> int:
    """``?page=`` as a page number (1 when missing or nonsense)."""
    page = request.args.get("page", type=int) or 1
    return min(max(page, 1), MAX_PAGE)


def page_count(total: int, per_page: int) -> int:
    return max((total + per_page - 1) // per_page, 1)


def may_decide(req: ServiceRequest) -> bool:
    # The service decides (the step, the department, separation of duties): one rule, not two.
    return sr.may_decide(request_uow().session, current_actor(), req)


def may_cancel(req: ServiceRequest) -> bool:
    return sr.may_cancel(current_actor(), req)


def may_submit(req: ServiceRequest) -> bool:
    return sr.may_submit(current_actor(), req)


def request_detail_page(
    area: str,
    request_id: int,
    *,
    decision_form: DecisionForm | None = None,
    cancel_form: CancelForm | None = None,
    error: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    """A request with its chain, servers and history (404 when the user may not see it)."""
    actor = current_actor()
    session = request_uow().session
    req = sr.get_request(session, actor, request_id)
    context: dict[str, Any] = {
        "req": req,
        "firewall": firewall.request_firewall(session, req.id, req.department, req.zone)
        if req.kind == "create"
        else None,
        "area": area,
        "chain_steps": chain_view(req),
        "can_decide": may_decide(req),
        "can_cancel": may_cancel(req),
        "can_submit": may_submit(req),
        "can_edit": area == "portal" and sr.may_edit(actor, req),
        "can_retry": sr.may_retry(actor),
        "retryable": {server.id for server in req.servers if sr.may_retry(actor, server)},
        "decision_form": decision_form or DecisionForm(formdata=None),
        "cancel_form": cancel_form or CancelForm(formdata=None),
        "button_form": ButtonForm(formdata=None),
        "page_error": error,
        "show_department": not actor.is_department,
    }
    return render_template("selfservice/request.html", **context), status


def _back(area: str, request_id: int) -> ResponseReturnValue:
    return redirect(safe_next(request.form.get("next")) or url_for(f"{area}.request_detail", request_id=request_id))


def decide(area: str, request_id: int) -> ResponseReturnValue:
    """Approve or reject the step that waits for the user."""
    form = DecisionForm()
    if not form.validate_on_submit():
        return request_detail_page(area, request_id, decision_form=form, status=400)
    actor = current_actor()
    session = request_uow().session
    reason = (form.reason.data or "").strip()
    try:
        if form.reject.data:
            req = sr.reject_request(session, actor, request_id, reason=reason)
        else:
            req = sr.approve_request(session, actor, request_id, reason=reason)
    except DomainError as exc:
        restart_request_uow()
        form.form_errors.append(refusal_text(exc))
        return request_detail_page(area, request_id, decision_form=form, status=exc.http_status)
    if req.state == RequestState.REJECTED.value:
        flash(_("Request #%(id)d was rejected.", id=request_id), "success")
    elif req.state == RequestState.APPROVED.value:
        flash(_("Request #%(id)d is approved: its servers are being created.", id=request_id), "success")
    else:
        flash(_("Request #%(id)d is approved and goes on to the next step.", id=request_id), "success")
    return _back(area, request_id)


def cancel(area: str, request_id: int) -> ResponseReturnValue:
    form = CancelForm()
    if not form.validate_on_submit():
        return request_detail_page(area, request_id, cancel_form=form, status=400)
    try:
        sr.cancel_request(request_uow().session, current_actor(), request_id, reason=(form.reason.data or "").strip())
    except DomainError as exc:
        restart_request_uow()
        form.form_errors.append(refusal_text(exc))
        return request_detail_page(area, request_id, cancel_form=form, status=exc.http_status)
    flash(_("Request #%(id)d was cancelled and its quota released.", id=request_id), "success")
    return _back(area, request_id)
