"""The approval queues of the portal (department heads), operations and finance: searched, filtered
and paged in SQL, and decided one row at a time or several at once (each through the same service
call as one decision; the summary says how many were decided and which were refused, and why)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from wtforms import SubmitField, TextAreaField
from wtforms.validators import Length

from cloudmgr.errors import DomainError
from cloudmgr.servicerequests import services as sr
from web.common import listcache
from web.common.display import refusal_text
from web.common.forms import SafeForm
from web.common.listing import ListView, filter_arg, page_request
from web.common.selfservice_forms import REASON_MAX, DecisionForm
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow


class BulkDecisionForm(SafeForm):
    """Approve or reject the requests ticked in the queue (``request_id``, several)."""

    reason = TextAreaField(
        _l("Comment or reason for the chosen requests"),
        validators=[Length(max=REASON_MAX, message=_l("At most %(max)d characters."))],
        render_kw={"rows": 2, "maxlength": REASON_MAX},
    )
    approve = SubmitField(_l("Approve the chosen"))
    reject = SubmitField(_l("Reject the chosen"))


@dataclass(frozen=True, slots=True)
class QueueText:
    """The title and the lead sentence of one audience's queue."""

    title: str
    lead: str


def approvals_page(
    area: str,
    text: QueueText,
    *,
    show_department: bool,
    bulk_form: BulkDecisionForm | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    session = request_uow().session
    actor = current_actor()
    filters = []
    department_id = None
    if show_department and not actor.is_department:
        departments = listcache.department_choices(session)
        department = filter_arg(
            "department",
            _("Department"),
            [(d.key, d.display_name(current_locale())) for d in departments],
            all_label=_("All departments"),
        )
        filters.append(department)
        department_id = next((d.id for d in departments if d.key == department.value), None)
    view = ListView(
        endpoint=f"{area}.approvals",
        params=page_request(),
        filters=filters,
        search_hint=_("Request number, name, application system, author or justification"),
    )
    view.page = sr.awaiting_page(session, actor, view.params, department_id=department_id)
    return (
        render_template(
            "selfservice/approvals.html",
            area=area,
            rows=view.page.rows,
            view=view,
            form=DecisionForm(formdata=None),
            bulk_form=bulk_form or BulkDecisionForm(formdata=None),
            title=text.title,
            lead=text.lead,
            show_department=show_department,
        ),
        status,
    )


def _chosen_ids() -> list[int]:
    ids: list[int] = []
    for raw in request.form.getlist("request_id"):
        raw = raw.strip()
        if raw.isdigit() and len(raw) <= 10 and int(raw) <= 2_147_483_647:
            ids.append(int(raw))
    return ids


def bulk_decide(area: str, text: QueueText, *, show_department: bool) -> ResponseReturnValue:
    """Decide the ticked requests; refused rows are named with their reasons, decided ones stay decided."""
    form = BulkDecisionForm()

    def again(status: int) -> ResponseReturnValue:
        return approvals_page(area, text, show_department=show_department, bulk_form=form, status=status)

    if not form.validate_on_submit():
        return again(400)
    ids = _chosen_ids()
    if not ids:
        form.form_errors.append(_("Tick at least one request."))
        return again(400)
    decision = "reject" if form.reject.data else "approve"
    reason = (form.reason.data or "").strip()
    if decision == "reject" and not reason:
        form.reason.errors = [_("Give a reason for the rejection.")]
        return again(400)
    try:
        outcome = sr.decide_many(request_uow().session, current_actor(), ids, decision, reason=reason)
    except DomainError as exc:
        restart_request_uow()
        form.form_errors.append(refusal_text(exc))
        return again(exc.http_status)
    decided = len(outcome.decided)
    if decision == "approve":
        summary = ngettext("%(num)d request approved.", "%(num)d requests approved.", decided)
    else:
        summary = ngettext("%(num)d request rejected.", "%(num)d requests rejected.", decided)
    flash(summary, "success" if decided else "warning")
    if outcome.refused:
        flash(
            ngettext("%(num)d request was not decided:", "%(num)d requests were not decided:", len(outcome.refused)),
            "error",
        )
        for row in outcome.refused:
            flash(_("Request #%(id)d: %(reason)s", id=row.request_id, reason=refusal_text(row.error)), "error")
    return redirect(url_for(f"{area}.approvals"))
