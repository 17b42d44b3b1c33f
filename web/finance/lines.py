"""Finance and the departments' dedicated lines (issue 19): the review of line rentals and renewals (the
queue, a request and its decision), the contracts ending within 90 days, the savings report and the
network programme, read-only."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cloudmgr.errors import DomainError
from cloudmgr.exports import csv_text
from cloudmgr.lines import services as lines
from web.common.display import refusal_text
from web.common.line_rentals import RentalDecisionForm, rental_page
from web.common.lines import WORDS
from web.common.lines_programme import RW, lines_config, render_lines_programme, savings_chart
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow
from web.finance.blueprint import bp

ID = "<int(max=2147483647):rental_id>"


@bp.get("/lines/rentals")
def line_rentals() -> ResponseReturnValue:
    session = request_uow().session
    actor = current_actor()
    decided = [r for r in lines.list_rentals(session, actor) if r.decided_at is not None][:50]
    return render_template(
        "lines_finance/queue.html",
        rows=lines.rental_review_queue(session, actor),
        decided=decided,
        rw=RW,
        locale=current_locale(),
    )


@bp.get(f"/lines/rentals/{ID}")
def line_rental(rental_id: int) -> ResponseReturnValue:
    return rental_page("finance", rental_id)


@bp.post(f"/lines/rentals/{ID}/decide")
def line_rental_decide(rental_id: int) -> ResponseReturnValue:
    form = RentalDecisionForm()
    if not form.validate_on_submit():
        return rental_page("finance", rental_id, form=form, status=400)
    try:
        lines.decide_rental(
            request_uow().session,
            current_actor(),
            rental_id,
            decision=form.decision.data,
            reason=form.reason.data or "",
            basis=(form.basis.data or None) if form.decision.data == "block" else None,
            entry_point="page",
        )
    except DomainError as exc:
        restart_request_uow()
        return rental_page("finance", rental_id, form=form, error=refusal_text(exc), status=exc.http_status)
    flash(_("The decision on line request #%(id)d was recorded.", id=rental_id), "success")
    return redirect(url_for("finance.line_rentals"))


@bp.get("/lines/contracts")
def line_contracts() -> ResponseReturnValue:
    session = request_uow().session
    today = lines.programme_today()
    ending = lines.contracts_ending(session, today, actor=current_actor(), days=lines_config().ending_days)
    return render_template(
        "lines_finance/contracts.html", ending=ending, today=today, rw=RW, words=WORDS, locale=current_locale()
    )


def _year() -> int | None:
    raw = request.args.get("year") or ""
    return int(raw) if raw.isdigit() and 2000 <= int(raw) <= 2100 else None


@bp.get("/lines/savings")
def line_savings() -> ResponseReturnValue:
    session = request_uow().session
    year = _year()
    report = lines.savings(session, actor=current_actor(), year=year)
    every_year = lines.savings(session, actor=current_actor()).by_year
    return render_template(
        "lines_finance/savings.html",
        report=report,
        year=year,
        years=[y for y, _n, _v in every_year],
        chart=savings_chart(every_year),
        words=WORDS,
        locale=current_locale(),
    )


@bp.get("/lines/savings.csv")
def line_savings_csv() -> ResponseReturnValue:
    year = _year()
    report = lines.savings(request_uow().session, actor=current_actor(), year=year)
    header = (_("Year"), _("Department"), _("City"), _("Line count"), _("Monthly rent retired (yuan)"))
    locale = current_locale()
    rows = [(r.year, r.department(locale), r.city, r.lines, r.monthly_rent) for r in report.rows]
    rows.append((_("Total"), "", "", report.lines, report.monthly_rent))
    return Response(
        "\ufeff" + csv_text(header, rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="line-savings-{year or "all"}.csv"'},
    )


@bp.get("/lines/programme")
def finance_lines_programme() -> ResponseReturnValue:
    return render_lines_programme(audience="finance")
