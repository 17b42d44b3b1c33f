from __future__ import annotations

from flask import redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_user, logout_user

from cloudmgr.audit import services as audit
from cloudmgr.organisation import services as org
from cloudmgr.organisation.errors import InvalidCredentials
from web.auth import bp
from web.auth.forms import LoginForm, LogoutForm
from web.i18n import LANGUAGES, SESSION_KEY
from web.security import WebUser, current_web_user, safe_next
from web.uow import keep_changes_on_error, request_uow


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
            found = org.authenticate(uow.session, form.username.data.strip(), form.password.data)
        except InvalidCredentials:
            audit.record(
                uow.session,
                actor=form.username.data.strip()[:128] or "anonymous",
                action="auth.login_failed",
                target_type="user",
                target_id=form.username.data.strip()[:128],
                detail={"remote_addr": request.remote_addr},
            )
            keep_changes_on_error()
            form.form_errors.append(_("Wrong username or password."))
        else:
            web_user = WebUser.from_user(found)
            lang = session.get(SESSION_KEY)
            session.clear()  # no session fixation: a fresh session for the logged-in user
            if lang:
                session[SESSION_KEY] = lang
            session.permanent = True
            login_user(web_user)
            audit.record(
                uow.session,
                actor=web_user.username,
                action="auth.login",
                target_type="user",
                target_id=web_user.id,
                detail={"remote_addr": request.remote_addr},
            )
            return redirect(next_url or url_for(web_user.home_endpoint))
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form, next_url=next_url), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    form = LogoutForm()
    if not form.validate_on_submit():
        return redirect(url_for("auth.index"))
    user = current_web_user()
    if user is not None:
        audit.record(
            request_uow().session, actor=user.username, action="auth.logout", target_type="user", target_id=user.id
        )
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
