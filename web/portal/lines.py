"""The department's dedicated lines (/portal/lines, issue 19): the register, one line, declaring a line
and importing a spreadsheet.  A department sees and declares its own lines only: another
department's line is not found, by its id as by any filter."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cloudmgr.errors import DomainError
from cloudmgr.lines import services as lines
from cloudmgr.lines.errors import LineNotFound, LinesInvalid, Problem
from web.common.display import refusal_text
from web.common.lines import (
    WORDS,
    LineForm,
    LinesImportForm,
    filter_options,
    page_of,
    register_query,
)
from web.core.i18n import current_locale
from web.core.security import current_actor, require_user
from web.core.uow import request_uow, restart_request_uow
from web.portal.blueprint import bp

ID = "<int(max=2147483647):line_id>"


def _department_id() -> int:
    department_id = current_actor().department_id
    if department_id is None:  # the blueprint admits department users only
        abort(403)
    return department_id


@bp.get("/lines")
def lines_register() -> ResponseReturnValue:
    query = register_query()
    rows = lines.list_lines(request_uow().session, query.flt, actor=current_actor())
    shown, pages = page_of(rows, query.page)
    return render_template(
        "lines/register.html",
        area="portal",
        rows=shown,
        total=len(rows),
        rent=sum((line.monthly_rent for line in rows), start=0),
        page=min(query.page, pages),
        pages=pages,
        filters=query.args,
        options=filter_options(),
        places=lines.line_places(request_uow().session, actor=current_actor()),
        words=WORDS,
    )


@bp.get("/lines/export.csv")
def lines_export() -> ResponseReturnValue:
    query = register_query()
    rows = lines.list_lines(request_uow().session, query.flt, actor=current_actor())
    return Response(
        "\ufeff" + lines.export_csv(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=lines.csv"},
    )


@bp.get(f"/lines/{ID}")
def line_detail(line_id: int) -> ResponseReturnValue:
    try:
        line = lines.get_line_by_id(request_uow().session, line_id, actor=current_actor())
    except LineNotFound:
        abort(404)
    return render_template("lines/detail.html", area="portal", line=line, words=WORDS)


def _declare_page(form: LineForm, *, problems: list[Problem] | None = None, status: int = 200) -> tuple[str, int]:
    return render_template("lines/declare.html", form=form, problems=problems or []), status


@bp.route("/lines/new", methods=["GET", "POST"])
def line_new() -> ResponseReturnValue:
    session = request_uow().session
    form = LineForm()
    form.fill_choices(lines.link_choices(session, _department_id()), current_locale())
    if not form.is_submitted():
        return _declare_page(form)
    if not form.validate():
        return _declare_page(form, status=400)
    user = require_user()
    assert user.department is not None
    try:
        line = lines.declare_line(session, form.values(user.department.key), actor=user.actor, entry_point="page")
    except LinesInvalid as exc:
        restart_request_uow()
        form.form_errors.append(_("The line was not declared: %(count)d problem(s).", count=len(exc.problems)))
        return _declare_page(form, problems=exc.problems, status=400)
    except DomainError as exc:
        restart_request_uow()
        form.form_errors.append(refusal_text(exc))
        return _declare_page(form, status=exc.http_status)
    flash(_("Line %(code)s was declared.", code=line.code), "success")
    return redirect(url_for("portal.line_detail", line_id=line.id))


def _import_page(form: LinesImportForm, *, problems: list[Problem] | None = None, status: int = 200) -> tuple[str, int]:
    return (
        render_template("lines/import.html", form=form, problems=problems or [], columns=lines.COLUMNS),
        status,
    )


@bp.route("/lines/import", methods=["GET", "POST"])
def lines_import() -> ResponseReturnValue:
    form = LinesImportForm()
    if not form.is_submitted():
        return _import_page(form)
    if not form.validate():
        return _import_page(form, status=400)
    upload = form.lines_file.data
    name = (upload.filename or "lines.csv").replace("\\", "/").rsplit("/", 1)[-1][:120]
    data = upload.read(lines.MAX_IMPORT_BYTES + 1)
    try:
        result = lines.import_lines(
            request_uow().session, data, filename=name, actor=current_actor(), entry_point="lines.import.page"
        )
    except LinesInvalid as exc:
        restart_request_uow()
        form.form_errors.append(
            _("%(count)d problem(s) in %(name)s: nothing was imported.", count=len(exc.problems), name=name)
        )
        return _import_page(form, problems=exc.problems, status=400)
    flash(
        _(
            "%(total)d lines imported from %(name)s: %(created)d new, %(updated)d updated, %(unchanged)d unchanged.",
            total=result.total,
            name=name,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
        ),
        "success",
    )
    return redirect(url_for("portal.lines_register"))
