"""The base of every web form: what holds for every text field of every form.

Each form subclasses :class:`SafeForm` (``tests/web/test_forms_safe.py`` checks that none is
left out), so a rule on typed text is decided once here, not in each form: a text field that
carries a text-direction control character (see :mod:`cloudmgr.text`) is refused with a
message naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, Field, FieldList, FormField, IntegerField, PasswordField

from cloudmgr.text import first_bidi_control


def _text_fields(fields: Any) -> Iterator[Field]:
    for field in fields:
        if isinstance(field, FormField):
            yield from _text_fields(field.form)
        elif isinstance(field, FieldList):
            yield from _text_fields(field.entries)
        elif isinstance(field.data, str) and not isinstance(field, PasswordField):
            # A password is never shown, only hashed: whatever its characters, it stays the user's.
            yield field


class SafeForm(FlaskForm):  # type: ignore[misc]
    def validate(self, extra_validators: Any = None) -> bool:
        valid: bool = super().validate(extra_validators=extra_validators)
        for field in _text_fields(self):
            code = first_bidi_control(field.data)
            if code is not None:
                field.errors = [
                    *field.errors,
                    # The error sits under its field and the page's summary names the field: the
                    # message need not repeat the label.
                    _(
                        "This text contains a text-direction control character (%(code)s), which is not allowed.",
                        code=code,
                    ),
                ]
                valid = False
        return valid


# --- fields whose parse errors are ours (translated), shared by the forms of every audience ---

DATE_MESSAGE = _l("Enter a date as YYYY-MM-DD.")
NUMBER_MESSAGE = _l("Enter a whole number.")
PRICE_MESSAGE = _l("Enter a price in yuan, e.g. 120 or 120.50.")


class LocalisedDateField(DateField):  # type: ignore[misc]
    """A date field whose parse error is ours (translated), not WTForms'."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(str(DATE_MESSAGE)) from exc


class LocalisedIntegerField(IntegerField):  # type: ignore[misc]
    """A whole-number field whose parse error is ours (translated), not WTForms'."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(str(NUMBER_MESSAGE)) from exc


class LocalisedDecimalField(DecimalField):  # type: ignore[misc]
    """A price field whose parse error is ours (translated), not WTForms'."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(str(PRICE_MESSAGE)) from exc
