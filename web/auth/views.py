from __future__ import annotations

import math

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_user, logout_user

from cloudmgr.db import utcnow
from cloudmgr.identity import policy
from cloudmgr.identity import services as identity
from cloudmgr.identity.errors import (
    AccountDisabled,
    AccountLocked,
    AddressLocked,
    DirectoryAccountLocked,
    IdentityBackendUnavailable,
    NoMappedRole,
    PasswordRejected,
    PasswordUnchanged,
)
from cloudmgr.organisation import services as org
from cloudmgr.organisation.errors import InvalidCredentials
from cloudmgr.organisation.models import Role
from web.auth.blueprint import bp
from web.auth.forms import ChangePasswordForm, LoginForm, LogoutForm
from web.core.i18n import LANGUAGES, SESSION_KEY
from web.core.security import WebUser, check_roles, current_web_user, keep_session_version, require_user, safe_next
from web.core.uow import keep_changes_on_error, request_uow, runtime


@bp.get("/")
def index() -> ResponseReturnValue:
    user = current_web_user()
    if user is None:
        return redirect(url_for("auth.login"))
    return redirect(url_for(user.home_endpoint))


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    user = current_web_user()
    next_url = safe_next(request.values.get("next"))
    if user is not None and request.method == "GET":
        return redirect(next_url or url_for(user.home_endpoint))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        uow = request_uow()
        try:
            found = identity.login(
                uow.session,
                runtime().settings,
                form.username.data,
                form.password.data,
                remote_addr=request.remote_addr,
            )
        except AddressLocked as exc:
            minutes = max(1, math.ceil((exc.until - utcnow()).total_seconds() / 60))
            form.form_errors.append(
                _(
                    "Too many failed log-ins from your network address. Try again in %(minutes)d minutes.",
                    minutes=minutes,
                )
            )
            status = 429
        except AccountLocked as exc:
            minutes = max(1, math.ceil((exc.until - utcnow()).total_seconds() / 60))
            form.form_errors.append(
                _("Too many failed log-ins: this account is locked. Try again in %(minutes)d minutes.", minutes=minutes)
            )
            status = 429
        except AccountDisabled:
            form.form_errors.append(_("This account is disabled. Ask the platform administrator."))
            status = 403
        except DirectoryAccountLocked:
            form.form_errors.append(
                _("Your account is locked in the directory (LDAP). Ask its administrators to unlock it.")
            )
            status = 403
        except NoMappedRole:
            form.form_errors.append(
                _("Your account has no role in cloudmgr yet. Ask the platform administrator to grant one.")
            )
            status = 403
        except IdentityBackendUnavailable:
            form.form_errors.append(_("The login service does not answer. Try again in a few minutes."))
            status = 503
        except InvalidCredentials:
            form.form_errors.append(_("Wrong username or password."))
        else:
            web_user = WebUser.from_user(found)
            lang = session.get(SESSION_KEY)
            session.clear()  # no session fixation: a fresh session for the logged-in user
            if lang:
                session[SESSION_KEY] = lang
            session.permanent = True
            keep_session_version(web_user.session_version)
            login_user(web_user)
            return redirect(next_url or url_for(web_user.home_endpoint))
        # Failed log-ins are counted and audited: keep that whatever the status.
        keep_changes_on_error()
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form, next_url=next_url), status


@bp.route("/account/password", methods=["GET", "POST"])
def change_password() -> ResponseReturnValue:
    denied = check_roles(Role)
    if denied is not None:
        return denied
    web_user = require_user()
    uow = request_uow()
    user = org.get_user(uow.session, web_user.id)
    if user is None:
        abort(404)
    external = identity.is_external(uow.session, user.id)
    form = ChangePasswordForm()
    form.policy_username = user.username
    status = 200
    if external:
        if request.method == "POST":
            status = 400
    elif form.validate_on_submit():
        try:
            version = identity.change_own_password(uow.session, user, form.current.data, form.password.data)
        except InvalidCredentials:
            form.current.errors.append(_("The current password is wrong."))
            status = 400
        except PasswordUnchanged:
            form.password.errors.append(_("Choose a password other than the current one."))
            status = 400
        except PasswordRejected as exc:
            form.password.errors.append(_("The password does not meet the policy: %(reason)s", reason=exc.message))
            status = 400
        else:
            # This session goes on; every other one (a copied cookie too) has ended.
            keep_session_version(version)
            flash(_("Your password was changed."), "success")
            return redirect(url_for(web_user.home_endpoint))
    elif request.method == "POST":
        status = 400
    return (
        render_template(
            "auth/password.html",
            form=form,
            external=external,
            min_length=policy.MIN_LENGTH,
            change_required=web_user.password_change_required,
        ),
        status,
    )


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    form = LogoutForm()
    if not form.validate_on_submit():
        return redirect(url_for("auth.index"))
    user = current_web_user()
    if user is not None:
        identity.logout(request_uow().session, user.id, actor=user.actor)
    lang = session.get(SESSION_KEY)
    logout_user()
    session.clear()
    if lang:
        session[SESSION_KEY] = lang
    return redirect(url_for("auth.login"))


@bp.get("/language/<code>")
def set_language(code: str) -> ResponseReturnValue:
    if code in LANGUAGES:
        session[SESSION_KEY] = code
    return redirect(safe_next(request.args.get("next")) or url_for("auth.index"))
