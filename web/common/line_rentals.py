"""A line rental or renewal request's page, shared by finance (with the decision form) and the department
that asked (with the submit button for a draft)."""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SelectField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from cloudmgr.lines import services as lines
from web.common.forms import SafeForm
from web.common.lines import WORDS
from web.common.lines_programme import BASIS_NAMES, RW
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow


class RentalDecisionForm(SafeForm):
    decision = RadioField(
        _l("Decision"),
        choices=[SelectChoice("approve", _l("Approve")), SelectChoice("block", _l("Block"))],
        validators=[InputRequired(message=_l("Choose a decision."))],
    )
    basis = SelectField(
        _l("Blocked because"),
        choices=[SelectChoice("", _l("The strongest finding"))] + [SelectChoice(b, n) for b, n in BASIS_NAMES.items()],
        validators=[Optional()],
    )
    reason = TextAreaField(
        _l("Reason"),
        validators=[Length(max=lines.RENTAL_REASON_MAX, message=_l("At most %(max)d characters."))],
        render_kw={"rows": 3, "maxlength": lines.RENTAL_REASON_MAX},
    )
    decide = SubmitField(_l("Record the decision"))

    def validate_reason(self, field: Any) -> None:
        if self.decision.data == "block" and not (field.data or "").strip():
            raise ValidationError(str(_l("A reason is required to block.")))


def rental_page(
    area: str, rental_id: int, *, form: RentalDecisionForm | None = None, error: str | None = None, status: int = 200
) -> ResponseReturnValue:
    """A request with its findings and what the extranet reaches (finance: with the decision form)."""
    session = request_uow().session
    rental = lines.get_rental(session, current_actor(), rental_id)
    live = lines.rental_findings(session, rental) if rental.state == "submitted" else None
    findings = [f.as_dict() for f in live] if live is not None else None
    return (
        render_template(
            "lines_finance/rental.html",
            r=rental,
            findings=findings,
            ends=lines.rental_ends_reached(session, rental),
            area=area,
            form=form or (RentalDecisionForm(formdata=None) if area == "finance" else None),
            error=error,
            rw=RW,
            words=WORDS,
            locale=current_locale(),
        ),
        status,
    )
