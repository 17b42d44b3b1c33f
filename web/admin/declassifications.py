"""Declassification approvals (issue 14): an administrator other than the requester decides."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cloudmgr.errors import DomainError
from cloudmgr.inventory import reclassification
from web.admin.blueprint import bp
from web.common.display import refusal_text
from web.common.selfservice_forms import ButtonForm
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow

ID = "<int(max=2147483647):request_id>"
STATES = ("pending", "approved", "rejected")


@bp.get("/declassifications")
def declassifications() -> ResponseReturnValue:
    state = request.args.get("state") or "pending"
    if state not in STATES:
        state = "pending"
    rows = reclassification.list_requests(request_uow().session, state=state)
    actor = current_actor()
    return render_template(
        "admin/declassifications.html",
        requests=rows,
        state=state,
        states=STATES,
        # The service decides who may decide and who may approve (never the requester); the page only
        # offers those buttons.
        decidable={r.id for r in rows if reclassification.may_decide_declassification(actor, r)},
        approvable={r.id for r in rows if reclassification.may_approve_declassification(actor, r)},
    )


def _decide(request_id: int, *, approve: bool) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("admin.declassifications")), 303
    decide = reclassification.approve if approve else reclassification.reject
    try:
        decided = decide(request_uow().session, request_id, actor=current_actor(), reason=request.form.get("reason"))
    except DomainError as exc:
        restart_request_uow()
        if exc.http_status == 404:
            abort(404)
        flash(refusal_text(exc), "error")
        return redirect(url_for("admin.declassifications")), 303
    if approve:
        flash(_("%(host)s is declassified.", host=decided.system.hostname), "success")
    else:
        flash(_("The declassification of %(host)s was rejected.", host=decided.system.hostname), "success")
    return redirect(url_for("admin.declassifications"))


@bp.post(f"/declassifications/{ID}/approve")
def approve_declassification(request_id: int) -> ResponseReturnValue:
    return _decide(request_id, approve=True)


@bp.post(f"/declassifications/{ID}/reject")
def reject_declassification(request_id: int) -> ResponseReturnValue:
    return _decide(request_id, approve=False)
