from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import Field, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from cloudmgr.identity import policy
from web.common.forms import SafeForm


class LoginForm(SafeForm):
    username = StringField(
        _l("Username"),
        validators=[DataRequired(message=_l("Enter your username.")), Length(max=128)],
        render_kw={"autocomplete": "username", "autofocus": True, "spellcheck": "false", "autocapitalize": "none"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(message=_l("Enter your password.")), Length(max=256)],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField(_l("Log in"))


class LogoutForm(SafeForm):
    """Only the CSRF token: logging out is a POST."""

    submit = SubmitField(_l("Log out"))


def _password_policy(form: Any, field: Field) -> None:
    """The local-account password policy (cloudmgr.identity.policy), with translated messages."""
    value = field.data or ""
    if not value:
        return
    if len(value) < policy.MIN_LENGTH or len(value) > policy.MAX_LENGTH:
        raise ValidationError(
            str(_l("Use between %(min)d and %(max)d characters.", min=policy.MIN_LENGTH, max=policy.MAX_LENGTH))
        )
    if policy.character_classes(value) < policy.MIN_CLASSES:
        raise ValidationError(
            str(_l("Use at least three of: lower-case letters, upper-case letters, digits and symbols."))
        )
    username = getattr(form, "policy_username", "")
    if username and policy.problems(value, username=username):
        raise ValidationError(str(_l("The password must not be your username.")))


class ChangePasswordForm(SafeForm):
    current = PasswordField(
        _l("Current password"),
        validators=[DataRequired(message=_l("Enter your current password.")), Length(max=256)],
        render_kw={"autocomplete": "current-password"},
    )
    password = PasswordField(
        _l("New password"),
        validators=[DataRequired(message=_l("Enter a new password.")), _password_policy],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[
            DataRequired(message=_l("Repeat the new password.")),
            EqualTo("password", message=_l("The two passwords differ.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField(_l("Change password"))

    policy_username = ""
