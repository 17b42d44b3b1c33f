from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import Field, PasswordField, SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, Regexp, ValidationError

from cloudmgr.organisation.models import Role
from cloudmgr.organisation.services import MIN_PASSWORD_LENGTH
from web.common.forms import SafeForm
from web.common.labels import ROLE_LABELS

USERNAME_PATTERN = r"^[A-Za-z0-9._-]+$"
# Deliberately loose: one @, something on each side, a dot in the domain.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _mixed_password(form: Any, field: Field) -> None:
    value = field.data or ""
    if value and (value.isdigit() or value.isalpha()):
        raise ValidationError(str(_l("Mix letters with digits or symbols.")))


class NewUserForm(SafeForm):
    username = StringField(
        _l("Username"),
        validators=[
            DataRequired(message=_l("Enter a username.")),
            Length(max=64, message=_l("At most %(max)d characters.")),
            Regexp(USERNAME_PATTERN, message=_l("Use only letters, digits, '.', '-' and '_'.")),
        ],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"},
    )
    display_name = StringField(
        _l("Full name"),
        validators=[Optional(), Length(max=128, message=_l("At most %(max)d characters."))],
    )
    email = StringField(
        _l("Email"),
        validators=[
            Optional(),
            Length(max=255, message=_l("At most %(max)d characters.")),
            Regexp(EMAIL_PATTERN, message=_l("Enter an email address like name@example.gov.cn.")),
        ],
        render_kw={"autocomplete": "off", "type": "email"},
    )
    role = SelectField(
        _l("Role"),
        choices=[SelectChoice(role.value, ROLE_LABELS[role.value]) for role in Role],
        validators=[DataRequired(message=_l("Choose a role."))],
        validate_choice=True,
    )
    department = SelectField(_l("Department"), choices=[], validate_choice=False)
    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(message=_l("Enter a password.")),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=256,
                message=_l("Use between %(min)d and %(max)d characters."),
            ),
            _mixed_password,
        ],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[
            DataRequired(message=_l("Repeat the password.")),
            EqualTo("password", message=_l("The two passwords differ.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField(_l("Create user"))

    def validate_department(self, field: Field) -> None:
        keys = {choice.value for choice in field.choices if choice.value}
        role = self.role.data
        if role in {Role.DEPT_STAFF.value, Role.DEPT_HEAD.value}:
            if not field.data:
                raise ValidationError(str(_l("Department staff and heads need a department.")))
            if field.data not in keys:
                raise ValidationError(str(_l("Choose a department from the list.")))
        elif field.data:
            raise ValidationError(str(_l("Only department staff and heads belong to a department.")))


class AccountActionForm(SafeForm):
    """Disable, enable or revoke the tokens of an account: why, for the audit log."""

    reason = StringField(
        _l("Reason"),
        validators=[
            DataRequired(message=_l("Give a reason: it is kept in the audit log.")),
            Length(max=500, message=_l("At most %(max)d characters.")),
        ],
    )


class EditUserForm(SafeForm):
    """An administrator edits a user: name and email, role and department (a reason when those change)."""

    display_name = StringField(
        _l("Full name"),
        validators=[Optional(), Length(max=128, message=_l("At most %(max)d characters."))],
    )
    email = StringField(
        _l("Email"),
        validators=[
            Optional(),
            Length(max=255, message=_l("At most %(max)d characters.")),
            Regexp(EMAIL_PATTERN, message=_l("Enter an email address like name@example.gov.cn.")),
        ],
        render_kw={"autocomplete": "off", "type": "email"},
    )
    role = SelectField(
        _l("Role"),
        choices=[SelectChoice(role.value, ROLE_LABELS[role.value]) for role in Role],
        validators=[DataRequired(message=_l("Choose a role."))],
        validate_choice=True,
    )
    department = SelectField(_l("Department"), choices=[], validate_choice=False)
    reason = StringField(
        _l("Reason"),
        validators=[Optional(), Length(max=500, message=_l("At most %(max)d characters."))],
    )
    submit = SubmitField(_l("Save changes"))

    validate_department = NewUserForm.validate_department


class ResetPasswordForm(SafeForm):
    """An administrator sets a user's password: typed, or (left empty) a temporary one made for them."""

    password = PasswordField(
        _l("New password"),
        validators=[
            Optional(),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=256,
                message=_l("Use between %(min)d and %(max)d characters."),
            ),
            _mixed_password,
        ],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )
    reason = StringField(
        _l("Reason"),
        validators=[
            DataRequired(message=_l("Give a reason: it is kept in the audit log.")),
            Length(max=500, message=_l("At most %(max)d characters.")),
        ],
    )
    submit = SubmitField(_l("Reset the password"))


class DeleteUserForm(SafeForm):
    """Delete an account: why, and the username typed again."""

    reason = StringField(
        _l("Reason"),
        validators=[
            DataRequired(message=_l("Give a reason: it is kept in the audit log.")),
            Length(max=500, message=_l("At most %(max)d characters.")),
        ],
    )
    confirm = StringField(
        _l("Username"),
        validators=[DataRequired(message=_l("Type the username to confirm."))],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"},
    )
    submit = SubmitField(_l("Delete the user"))


class SyncForm(SafeForm):
    """ "Sync now": a button (and its CSRF token)."""

    submit = SubmitField(_l("Sync now"))
