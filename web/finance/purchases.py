"""Finance's purchase review: the queue, the purchase page and its decision, the reports
(CSV, XLSX, chart) and the showback of cloud costs."""

from __future__ import annotations

from datetime import date

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cloudmgr.errors import DomainError
from cloudmgr.purchases import reports, services, showback
from web.common.display import refusal_text
from web.common.listing import ListView, page_request
from web.common.purchase_forms import PurchaseDecisionForm
from web.common.purchase_pages import detail_page
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow, runtime
from web.finance.blueprint import bp
from web.finance.charts import year_chart

ID = "<int(max=2147483647):purchase_id>"


@bp.get("/purchases")
def purchase_queue() -> ResponseReturnValue:
    sort = request.args.get("sort", "findings")
    if sort not in services.QUEUE_SORTS:
        sort = "findings"
    view = ListView(
        endpoint="finance.purchase_queue",
        params=page_request(),
        search_hint=_("Number, title, application system, host or author"),
        view_args={"sort": sort},
    )
    view.page = services.review_queue_page(request_uow().session, current_actor(), view.params, sort=sort)
    return render_template("purchases/queue.html", rows=view.page.rows, sort=sort, view=view)


@bp.get(f"/purchases/{ID}")
def purchase_detail(purchase_id: int) -> ResponseReturnValue:
    return detail_page("finance", purchase_id)


@bp.post(f"/purchases/{ID}/decide")
def purchase_decide(purchase_id: int) -> ResponseReturnValue:
    form = PurchaseDecisionForm()
    if not form.validate_on_submit():
        return detail_page("finance", purchase_id, status=400, decision_form=form)
    decision = form.decision.data
    try:
        services.decide_purchase(
            request_uow().session,
            current_actor(),
            purchase_id,
            decision=decision,
            reason=form.reason.data or "",
            basis=(form.basis.data or None) if decision == "block" else None,
        )
    except DomainError as exc:
        restart_request_uow()
        return detail_page("finance", purchase_id, error=refusal_text(exc), status=exc.http_status)
    flash(_("The decision on purchase request #%(id)d was recorded.", id=purchase_id), "success")
    return redirect(url_for("finance.purchase_queue"))


def _year() -> int | None:
    raw = request.args.get("year") or ""
    if raw.isdigit() and 2000 <= int(raw) <= 2100:
        return int(raw)
    return None


@bp.get("/purchase-reports")
def purchase_reports() -> ResponseReturnValue:
    year = _year()
    report = reports.purchase_report(request_uow().session, current_actor(), year=year)
    return render_template(
        "purchases/reports.html", report=report, year=year, chart=year_chart(report), this_year=date.today().year
    )


@bp.get("/purchase-reports.<any(csv, xlsx):fmt>")
def purchase_reports_export(fmt: str) -> ResponseReturnValue:
    year = _year()
    report = reports.purchase_report(request_uow().session, current_actor(), year=year)
    name = f"purchases-{year or 'all'}"
    if fmt == "csv":
        return Response(
            "\ufeff" + reports.report_csv(report),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        reports.report_xlsx(report),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


def _showback() -> showback.Showback:
    rate = showback.backup_rate(runtime().settings.rates_file)
    return showback.showback(request_uow().session, current_actor(), backup_gb_price=rate)


@bp.get("/showback")
def showback_page() -> ResponseReturnValue:
    report = _showback()
    return render_template("purchases/showback.html", report=report)


@bp.get("/showback.csv")
def showback_csv() -> ResponseReturnValue:
    report = _showback()
    return Response(
        "\ufeff" + showback.showback_csv(report),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="showback.csv"'},
    )
