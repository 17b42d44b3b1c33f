"""A department's requests to rent a new dedicated line or renew a line's contract (finance decides), and
its own network programme (/portal/lines/...).  Departments never see each other's."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from cloudmgr.errors import DomainError
from cloudmgr.lines import services as lines
from cloudmgr.lines.errors import RentalInvalid
from cloudmgr.lines.models import Carrier, LineType
from web.common.display import refusal_text
from web.common.forms import SafeForm
from web.common.line_rentals import rental_page
from web.common.lines import CARRIER_NAMES, LINE_TYPE_NAMES
from web.common.lines_programme import RW, render_lines_programme
from web.common.messages import render_message
from web.common.selfservice_forms import ButtonForm
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow
from web.portal.blueprint import bp

ID = "<int(max=2147483647):rental_id>"
DATE_HINT = {"placeholder": "YYYY-MM-DD", "inputmode": "numeric"}


class RentalForm(SafeForm):
    kind = SelectField(
        _l("Request"),
        choices=[SelectChoice("renewal", _l("Renew a line’s contract")), SelectChoice("new", _l("Rent a new line"))],
        validators=[InputRequired()],
    )
    line_code = SelectField(_l("Line to renew"), validators=[Optional()], validate_choice=False)
    monthly_rent = StringField(_l("Monthly rent (yuan)"), validators=[DataRequired(_l("Give the monthly rent."))])
    contract_start = StringField(_l("Contract starts"), render_kw=DATE_HINT, validators=[Optional()])
    contract_end = StringField(
        _l("Contract ends"), render_kw=DATE_HINT, validators=[DataRequired(_l("Give the date the contract ends."))]
    )
    carrier = SelectField(
        _l("Carrier"), choices=[SelectChoice(c.value, n) for c, n in CARRIER_NAMES.items()], validators=[Optional()]
    )
    line_type = SelectField(
        _l("Line type"), choices=[SelectChoice(t.value, n) for t, n in LINE_TYPE_NAMES.items()], validators=[Optional()]
    )
    bandwidth_mbps = StringField(_l("Bandwidth (Mbit/s)"), validators=[Optional(), Length(max=10)])
    a_site = StringField(_l("A end: site"), validators=[Optional(), Length(max=128)])
    a_city = StringField(_l("A end: city"), validators=[Optional(), Length(max=64)])
    a_county = StringField(_l("A end: county"), validators=[Optional(), Length(max=64)])
    a_township = StringField(_l("A end: township"), validators=[Optional(), Length(max=64)])
    b_site = StringField(_l("B end: site"), validators=[Optional(), Length(max=128)])
    b_city = StringField(_l("B end: city"), validators=[Optional(), Length(max=64)])
    b_county = StringField(_l("B end: county"), validators=[Optional(), Length(max=64)])
    b_township = StringField(_l("B end: township"), validators=[Optional(), Length(max=64)])
    classified = BooleanField(_l("Carries classified business"))
    public_facing = BooleanField(_l("Serves the public"))
    purpose = TextAreaField(
        _l("Why the line is needed"), validators=[Optional(), Length(max=1000)], render_kw={"rows": 3}
    )
    save = SubmitField(_l("Save as draft"))
    submit = SubmitField(_l("Submit to finance"))


def _form(formdata: Any = "default") -> RentalForm:
    form = RentalForm() if formdata == "default" else RentalForm(formdata=formdata)
    own = lines.list_lines(request_uow().session, actor=current_actor())
    form.line_code.choices = [
        SelectChoice(line.code, f"{line.code} · {line.b_city}{line.b_county} · {line.contract_end.isoformat()}")
        for line in own
        if line.state in lines.RENEWABLE_STATES
    ]
    return form


def _input(form: RentalForm) -> lines.RentalInput:
    text = {name: (getattr(form, name).data or "") for name in (
        "kind", "line_code", "monthly_rent", "contract_start", "contract_end", "carrier", "line_type",
        "bandwidth_mbps", "a_site", "a_city", "a_county", "a_township", "b_site", "b_city", "b_county",
        "b_township", "purpose",
    )}  # fmt: skip
    if text["kind"] == "renewal":  # the line's own carrier, type and ends are copied
        for name in ("carrier", "line_type", "bandwidth_mbps"):
            text[name] = ""
    return lines.RentalInput(**text, classified=bool(form.classified.data), public_facing=bool(form.public_facing.data))


def _form_page(form: RentalForm, status: int = 200) -> ResponseReturnValue:
    return render_template("lines_finance/rental_form.html", form=form), status


@bp.get("/lines/rentals")
def line_rentals_list() -> ResponseReturnValue:
    rows = lines.list_rentals(request_uow().session, current_actor())
    return render_template("lines_finance/portal_rentals.html", rows=rows, rw=RW, locale=current_locale())


@bp.get("/lines/rentals/new")
def line_rental_new() -> ResponseReturnValue:
    form = _form(None)
    kind = request.args.get("kind")
    form.kind.data = kind if kind in {"new", "renewal"} else "renewal"
    line = request.args.get("line")
    if line and any(choice[0] == line for choice in form.line_code.choices):
        form.line_code.data = line
    form.carrier.data, form.line_type.data = Carrier.TELECOM.value, LineType.MSTP.value
    return _form_page(form)


@bp.post("/lines/rentals/new")
def line_rental_create() -> ResponseReturnValue:
    form = _form()
    if not form.validate_on_submit():
        return _form_page(form, 400)
    try:
        rental = lines.create_rental(
            request_uow().session, current_actor(), _input(form), submit=bool(form.submit.data), entry_point="page"
        )
    except RentalInvalid as exc:
        restart_request_uow()
        form.form_errors.extend(render_message(problem) for problem in exc.problems)
        return _form_page(form, 400)
    except DomainError as exc:
        restart_request_uow()
        form.form_errors.append(refusal_text(exc))
        return _form_page(form, exc.http_status)
    if rental.state == "submitted":
        flash(_("Line request #%(id)d was sent to finance.", id=rental.id), "success")
    else:
        flash(_("Line request #%(id)d was saved as a draft.", id=rental.id), "success")
    return redirect(url_for("portal.line_rental_detail", rental_id=rental.id))


@bp.get(f"/lines/rentals/{ID}")
def line_rental_detail(rental_id: int) -> ResponseReturnValue:
    return rental_page("portal", rental_id)


@bp.post(f"/lines/rentals/{ID}/submit")
def line_rental_submit(rental_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        return rental_page("portal", rental_id, error=_("The form expired; please try again."), status=400)
    try:
        lines.submit_rental(request_uow().session, current_actor(), rental_id, entry_point="page")
    except DomainError as exc:
        restart_request_uow()
        return rental_page("portal", rental_id, error=refusal_text(exc), status=exc.http_status)
    flash(_("Line request #%(id)d was sent to finance.", id=rental_id), "success")
    return redirect(url_for("portal.line_rental_detail", rental_id=rental_id))


@bp.get("/lines/programme")
def portal_lines_programme() -> ResponseReturnValue:
    """The department's own lines only."""
    return render_lines_programme(audience="department")
