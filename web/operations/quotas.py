"""Quotas across every department and cloud: fill, drift, and quota-change requests."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cloudmgr.errors import DomainError
from cloudmgr.organisation import services as org
from cloudmgr.quotas import services as quota_services
from cloudmgr.quotas.models import ChangeRequestState
from web.common import quota_files as quota_help
from web.common.display import refusal_text
from web.common.selfservice_forms import QuotaDecisionForm
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow
from web.operations.blueprint import bp

SORTS = ("department", "cloud", "fill")
RECENT_DRIFTS = 50
RECENT_CHANGES = 30


def _page(*, failed: tuple[int, QuotaDecisionForm] | None = None, status: int = 200) -> ResponseReturnValue:
    session = request_uow().session
    locale = current_locale()
    dept_names = {d.key: d.display_name(locale) for d in org.list_departments(session)}
    cloud_names = {c.key: c.display_name(locale) for c in org.list_clouds(session)}
    sort = request.args.get("sort")
    if sort not in SORTS:
        sort = "fill"
    descending = request.args.get("dir", "desc" if sort == "fill" else "asc") == "desc"
    balances = list(quota_services.all_balances(session))

    def fill(balance: quota_services.Balance) -> float:
        return max((r.fill_ratio for r in balance.resources.values()), default=0.0)

    def dept(b: quota_services.Balance) -> str:
        return dept_names.get(b.department_key, b.department_key)

    def cloud(b: quota_services.Balance) -> str:
        return cloud_names.get(b.cloud_key, b.cloud_key)

    # Ties keep the department-then-cloud order whatever the direction (sorts are stable).
    balances.sort(key=lambda b: (dept(b), cloud(b)))
    if sort == "fill":
        balances.sort(key=fill, reverse=descending)
    else:
        balances.sort(key=dept if sort == "department" else cloud, reverse=descending)
    changes = quota_services.change_requests(session, current_actor())
    pending = [c for c in changes if c.state == ChangeRequestState.PENDING.value]
    decided = [c for c in changes if c.state != ChangeRequestState.PENDING.value][:RECENT_CHANGES]
    forms = {c.id: QuotaDecisionForm(formdata=None) for c in pending}
    if failed is not None:
        forms[failed[0]] = failed[1]
    return (
        render_template(
            "operations/quotas.html",
            balances=balances,
            resources=quota_services.RESOURCES,
            fill=fill,
            dept_names=dept_names,
            cloud_names=cloud_names,
            sort=sort,
            descending=descending,
            open_drifts=quota_services.open_drifts(session),
            recent_drifts=quota_services.recent_drifts(session, limit=RECENT_DRIFTS),
            pending=pending,
            decided=decided,
            forms=forms,
            failed=failed[0] if failed else None,
        ),
        status,
    )


@bp.get("/quotas")
def quotas() -> ResponseReturnValue:
    return _page()


@bp.post("/quota-requests/<int(max=2147483647):change_id>/decide")
def decide_quota_change(change_id: int) -> ResponseReturnValue:
    session = request_uow().session
    quota_services.get_change(session, change_id)  # 404 before the form is read
    form = QuotaDecisionForm()
    if not form.validate_on_submit():
        return _page(failed=(change_id, form), status=400)
    approve = not form.reject.data
    try:
        quota_services.decide_change(
            session,
            current_actor(),
            change_id,
            approve=approve,
            reason=(form.reason.data or "").strip(),
            definitions=quota_help.definitions(),
        )
    except DomainError as exc:
        restart_request_uow()
        form.form_errors.append(refusal_text(exc))
        return _page(failed=(change_id, form), status=exc.http_status)
    if approve:
        flash(_("Quota change #%(id)d approved; the cloud is updated now.", id=change_id), "success")
    else:
        flash(_("Quota change #%(id)d rejected.", id=change_id), "success")
    return redirect(url_for("ops.quotas", _anchor="changes"))
