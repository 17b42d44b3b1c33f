"""Every department's dedicated lines for the operators (/ops/lines, issue 19): the register with each
line's target by rule, planning one line's cut-over, cut-over batches per city or county, recording a
cut-over or a retirement, and the extranet coverage table.

Planning and recording go through :mod:`cloudmgr.lines.services`, which refuses (and audits) a line
carrying classified business onto the extranet or the internet, whatever the page sends."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cloudmgr.errors import DomainError
from cloudmgr.lines import services as lines
from cloudmgr.lines.errors import LineNotFound
from cloudmgr.lines.models import LineState, LineTarget
from cloudmgr.organisation import services as org
from web.common.display import refusal_text
from web.common.lines import WORDS, BatchForm, PlanLineForm, filter_options, page_of, register_query
from web.common.selfservice_forms import ButtonForm
from web.core.i18n import current_locale
from web.core.security import current_actor, safe_next
from web.core.uow import request_uow, restart_request_uow
from web.operations.blueprint import bp

ID = "<int(max=2147483647):line_id>"


def _departments() -> dict[str, int]:
    return {d.key: d.id for d in org.list_departments(request_uow().session)}


@bp.get("/lines")
def lines_register() -> ResponseReturnValue:
    session = request_uow().session
    departments = org.list_departments(session)
    query = register_query(department_ids={d.key: d.id for d in departments})
    rows = lines.list_lines(session, query.flt, actor=current_actor())
    shown, pages = page_of(rows, query.page)
    locale = current_locale()
    return render_template(
        "lines/register.html",
        area="ops",
        rows=shown,
        total=len(rows),
        rent=sum((line.monthly_rent for line in rows), start=0),
        page=min(query.page, pages),
        pages=pages,
        filters=query.args,
        options=filter_options(),
        departments=[(d.key, d.display_name(locale)) for d in departments],
        places=lines.line_places(session, actor=current_actor()),
        conflicts=len(lines.classified_conflicts(session, actor=current_actor())),
        button=ButtonForm(formdata=None),
        words=WORDS,
    )


@bp.get("/lines/export.csv")
def lines_export() -> ResponseReturnValue:
    query = register_query(department_ids=_departments())
    rows = lines.list_lines(request_uow().session, query.flt, actor=current_actor())
    return Response(
        "\ufeff" + lines.export_csv(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=lines.csv"},
    )


def _detail_page(
    line_id: int, *, form: PlanLineForm | None = None, error: str | None = None, status: int = 200
) -> ResponseReturnValue:
    try:
        line = lines.get_line_by_id(request_uow().session, line_id, actor=current_actor())
    except LineNotFound:
        abort(404)
    if form is None:
        form = PlanLineForm(formdata=None)
        form.target.data = (line.target or lines.proposed_target(line).target).value
        form.cutover_date.data = line.cutover_date
    return (
        render_template(
            "lines/detail.html",
            area="ops",
            line=line,
            words=WORDS,
            plan_form=form,
            button=ButtonForm(formdata=None),
            error=error,
            plannable=line.state in lines.PLANNABLE_STATES or lines.breaks_classified_rule(line),
        ),
        status,
    )


@bp.get(f"/lines/{ID}")
def line_detail(line_id: int) -> ResponseReturnValue:
    return _detail_page(line_id)


@bp.post(f"/lines/{ID}/plan")
def plan_line(line_id: int) -> ResponseReturnValue:
    form = PlanLineForm()
    if not form.validate_on_submit():
        return _detail_page(line_id, form=form, status=400)
    session = request_uow().session
    actor = current_actor()
    try:
        line = lines.get_line_by_id(session, line_id, actor=actor)
        code = line.code
        lines.plan_line(
            session, code, LineTarget(form.target.data), actor=actor, entry_point="page", on=form.cutover_date.data
        )
    except LineNotFound:
        abort(404)
    except DomainError as exc:
        restart_request_uow()
        return _detail_page(line_id, form=form, error=refusal_text(exc), status=exc.http_status)
    flash(_("Line %(code)s: cut-over planned.", code=code), "success")
    return redirect(url_for("ops.line_detail", line_id=line_id))


@bp.post(f"/lines/{ID}/record")
def record_line(line_id: int) -> ResponseReturnValue:
    """Record that a planned line was cut over onto its target (or retired)."""
    back = safe_next(request.form.get("next")) or url_for("ops.line_detail", line_id=line_id)
    if not ButtonForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(back), 303
    session = request_uow().session
    actor = current_actor()
    try:
        code = lines.get_line_by_id(session, line_id, actor=actor).code
        line = lines.record_cutover(session, code, actor=actor, entry_point="page")
    except LineNotFound:
        abort(404)
    except DomainError as exc:
        restart_request_uow()
        flash(refusal_text(exc), "error")
        return redirect(back), 303
    if line.state == LineState.RETIRED:
        flash(_("Line %(code)s: retirement recorded.", code=code), "success")
    else:
        flash(_("Line %(code)s: cut-over recorded.", code=code), "success")
    return redirect(back)


def _batch_page(form: BatchForm, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    return render_template("lines/batch.html", form=form, error=error), status


@bp.route("/lines/batch", methods=["GET", "POST"])
def line_batch() -> ResponseReturnValue:
    session = request_uow().session
    actor = current_actor()
    form = BatchForm()
    form.fill_choices(lines.line_places(session, actor=actor))
    if not form.is_submitted():
        form.cutover_date.data = date.today() + timedelta(days=14)
        return _batch_page(form)
    if not form.validate():
        return _batch_page(form, status=400)
    county = form.county.data or None
    try:
        result = lines.plan_batch(
            session, city=form.city.data, county=county, on=form.cutover_date.data, actor=actor, entry_point="page"
        )
    except DomainError as exc:
        restart_request_uow()
        form.form_errors.append(refusal_text(exc))
        return _batch_page(form, status=exc.http_status)
    flash(
        _(
            "%(count)d line(s) planned for cut-over on %(date)s; %(skipped)d left out (already planned, cut over "
            "or retired).",
            count=len(result.planned),
            date=form.cutover_date.data.isoformat(),
            skipped=len(result.skipped),
        ),
        "success",
    )
    args = {"city": form.city.data, "state": LineState.PLANNED.value}
    if county:
        args["county"] = county
    return redirect(url_for("ops.lines_register", **args))


@bp.get("/lines/coverage")
def lines_coverage() -> ResponseReturnValue:
    rows = lines.extranet_coverage(request_uow().session)
    cities = [r for r in rows if r.place.level == "city"]
    return render_template(
        "lines/coverage.html",
        rows=rows,
        reached=sum(1 for r in rows if r.reached),
        cities_reached=sum(1 for r in cities if r.reached),
        cities=len(cities),
        words=WORDS,
    )
