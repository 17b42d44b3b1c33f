"""The user's SSH public keys: list, add, delete (issue 16).

A refused key is explained under its field in the user's language; a pasted private key is
never shown back (the text area comes back empty) and is not stored anywhere.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import StringField, SubmitField, TextAreaField

from cloudmgr.keys import services as keys
from cloudmgr.keys.errors import (
    KeyAlreadyKept,
    KeyLimitReached,
    KeyNameInvalid,
    KeyNameTaken,
    KeyNotFound,
    KeyProblem,
    KeyRefused,
    NameProblem,
)
from web.common.forms import SafeForm
from web.common.selfservice_forms import ButtonForm
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow
from web.portal.blueprint import bp

KEY_ID = "<int(max=2147483647):key_id>"


class AddKeyForm(SafeForm):
    # The service decides what a valid name and key are (one rule for the pages and the API).
    name = StringField(
        _l("Name"), render_kw={"maxlength": keys.NAME_MAX, "autocomplete": "off", "placeholder": "laptop"}
    )
    public_key = TextAreaField(
        _l("Public key"),
        render_kw={"rows": 4, "spellcheck": "false", "autocomplete": "off", "autocapitalize": "none"},
    )
    add = SubmitField(_l("Add the key"))


def key_problem_text(exc: KeyRefused) -> str:
    """What the user reads under the public key field (English in the API: ``exc.message``)."""
    problem = exc.problem
    text: str
    if problem is KeyProblem.PRIVATE_KEY:
        text = _(
            "This is a private key. It was NOT stored. Paste the public key instead (the .pub file), "
            "and replace this key pair if others may have seen the private key."
        )
    elif problem is KeyProblem.EMPTY:
        text = _("Paste a public key.")
    elif problem is KeyProblem.TOO_LONG:
        text = _("Too long: at most %(max)d characters.", max=keys.MAX_TEXT_LENGTH)
    elif problem is KeyProblem.MULTIPLE_LINES:
        text = _("Paste exactly one key, on one line.")
    elif problem is KeyProblem.NOT_OPENSSH:
        text = _(
            "Not an OpenSSH public key. Paste the line of your .pub file: "
            "it starts with ssh-ed25519, ecdsa-sha2-… or ssh-rsa."
        )
    elif problem is KeyProblem.UNSUPPORTED_TYPE:
        text = _(
            "This key type is not accepted. Use ssh-ed25519, ecdsa-sha2-nistp256/384/521 "
            "or ssh-rsa of at least %(min)d bits.",
            min=keys.MIN_RSA_BITS,
        )
    elif problem is KeyProblem.DSA:
        text = _("DSA keys are not accepted: OpenSSH no longer supports them. Create one with: ssh-keygen -t ed25519")
    elif problem is KeyProblem.RSA_TOO_SHORT:
        text = _(
            "This RSA key has %(bits)d bits; at least %(min)d are needed. Create a new one with: ssh-keygen -t ed25519",
            bits=exc.bits or 0,
            min=keys.MIN_RSA_BITS,
        )
    else:
        text = _("The key data is damaged or incomplete. Copy the whole line of the .pub file again.")
    return text


def name_problem_text(problem: NameProblem) -> str:
    text: str
    if problem is NameProblem.EMPTY:
        text = _("Give the key a name.")
    elif problem is NameProblem.TOO_LONG:
        text = _("At most %(max)d characters.", max=keys.NAME_MAX)
    elif problem is NameProblem.CONTROL_CHARACTER:
        text = _("The name may not contain control characters.")
    else:
        text = _("You already have a key with this name.")
    return text


def _forget_private_key(form: AddKeyForm) -> None:
    """A private key never goes back to the browser, whatever else was wrong with the form."""
    if keys.looks_like_private_key(form.public_key.data or ""):
        form.public_key.data = ""
        form.public_key.raw_data = []
        private = key_problem_text(keys.private_key_refusal())
        if private not in form.public_key.errors:
            form.public_key.errors = [*form.public_key.errors, private]


def _page(form: AddKeyForm, status: int = 200) -> ResponseReturnValue:
    own = keys.list_keys(request_uow().session, current_actor())
    return render_template("portal/keys.html", keys=own, form=form, delete_form=ButtonForm()), status


@bp.get("/keys")
def ssh_keys() -> ResponseReturnValue:
    return _page(AddKeyForm())


@bp.post("/keys")
def add_ssh_key() -> ResponseReturnValue:
    form = AddKeyForm()
    if not form.validate_on_submit():
        _forget_private_key(form)
        return _page(form, 400)
    try:
        added = keys.add_key(request_uow().session, current_actor(), form.name.data or "", form.public_key.data or "")
    except (KeyRefused, KeyAlreadyKept, KeyLimitReached) as exc:
        restart_request_uow()
        if isinstance(exc, KeyRefused):
            message = key_problem_text(exc)
            if exc.problem is KeyProblem.PRIVATE_KEY:
                form.public_key.data = ""
        elif isinstance(exc, KeyAlreadyKept):
            message = _("This key is already in your list, as “%(name)s”.", name=exc.existing_name)
        else:
            message = _("You keep %(max)d keys already, the most allowed. Delete one first.", max=exc.limit)
        form.public_key.errors = [*form.public_key.errors, message]
        _forget_private_key(form)
        return _page(form, exc.http_status)
    except (KeyNameInvalid, KeyNameTaken) as exc:
        restart_request_uow()
        form.name.errors = [*form.name.errors, name_problem_text(exc.problem)]
        _forget_private_key(form)
        return _page(form, exc.http_status)
    flash(_("Key “%(name)s” added (%(fingerprint)s).", name=added.name, fingerprint=added.fingerprint), "success")
    return redirect(url_for("portal.ssh_keys"))


@bp.post(f"/keys/{KEY_ID}/delete")
def delete_ssh_key(key_id: int) -> ResponseReturnValue:
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        keys.delete_key(request_uow().session, current_actor(), key_id)
    except KeyNotFound:
        abort(404)
    flash(_("Key deleted. Servers that already have it keep it until you remove it there."), "success")
    return redirect(url_for("portal.ssh_keys"))
