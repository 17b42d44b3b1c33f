from __future__ import annotations

from collections import Counter

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from wtforms import SelectChoice

from cloudmgr.errors import DomainError, ValidationFailed
from cloudmgr.identity import services as identity
from cloudmgr.organisation import services as org
from cloudmgr.organisation.errors import OwnAccount, UnknownDepartment, UnknownUser, UsernameTaken
from cloudmgr.organisation.models import Role
from cloudmgr.organisation.services import MIN_PASSWORD_LENGTH
from web.admin.blueprint import bp
from web.admin.forms import AccountActionForm, NewUserForm
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow


@bp.get("/")
def home() -> ResponseReturnValue:
    session = request_uow().session
    clouds = org.list_clouds(session)
    departments = org.list_departments(session)
    users = org.list_users(session)
    roles = Counter(user.role for user in users)
    newest = sorted(users, key=lambda u: u.created_at, reverse=True)[:8]
    return render_template(
        "admin/home.html", clouds=clouds, departments=departments, users=users, roles=roles, newest=newest
    )


@bp.get("/users")
def users() -> ResponseReturnValue:
    return render_template("admin/users.html", users=org.list_users(request_uow().session))


@bp.route("/users/new", methods=["GET", "POST"])
def new_user() -> ResponseReturnValue:
    session = request_uow().session
    form = NewUserForm()
    locale = current_locale()
    form.department.choices = [SelectChoice("", _("— No department (operators, finance, administrators) —"))] + [
        SelectChoice(dept.key, dept.display_name(locale)) for dept in org.list_departments(session)
    ]
    status = 200
    if form.validate_on_submit():
        try:
            user = org.create_user(
                session,
                username=form.username.data.strip(),
                password=form.password.data,
                role=Role(form.role.data),
                display_name=(form.display_name.data or "").strip() or None,
                department_key=form.department.data or None,
                email=(form.email.data or "").strip() or None,
                actor=current_actor(),
            )
        except UsernameTaken:
            form.username.errors.append(_("This username is already taken."))
        except UnknownDepartment:
            form.department.errors.append(_("Choose a department from the list."))
        except ValidationFailed as exc:
            form.form_errors.append(_("The user could not be created: %(reason)s", reason=exc.message))
        else:
            flash(_("User %(username)s was created.", username=user.username), "success")
            return redirect(url_for("admin.users"))
        status = 400
    elif request.method == "POST":
        status = 400
    return render_template("admin/new_user.html", form=form, min_password_length=MIN_PASSWORD_LENGTH), status


def _user_page(user_id: int, form: AccountActionForm | None = None, status: int = 200) -> ResponseReturnValue:
    session = request_uow().session
    user = org.get_user(session, user_id)
    if user is None:
        abort(404)
    actor = current_actor()
    tokens = org.list_tokens(session, actor, user.id)
    return (
        render_template(
            "admin/user.html",
            user=user,
            tokens=tokens,
            external=identity.is_external(session, user.id),
            form=form or AccountActionForm(formdata=None),
            may_disable=org.may_disable(actor, user),
        ),
        status,
    )


@bp.get("/users/<int:user_id>")
def user(user_id: int) -> ResponseReturnValue:
    return _user_page(user_id)


def _account_action(user_id: int, action: str) -> ResponseReturnValue:
    """Disable, enable or revoke tokens: one service each; the same answer shape for all."""
    form = AccountActionForm()
    if not form.validate_on_submit():
        return _user_page(user_id, form, 400)
    session = request_uow().session
    actor = current_actor()
    reason = form.reason.data.strip()
    try:
        if action == "revoke-tokens":
            revoked = org.revoke_tokens(session, actor, user_id, reason=reason)
            message = _("%(num)d API tokens were revoked.", num=revoked)
        else:
            found = org.set_user_active(session, actor, user_id, active=action == "enable", reason=reason)
            if action == "enable":
                message = _("User %(username)s can log in again.", username=found.username)
            else:
                message = _(
                    "User %(username)s is disabled: their sessions and API tokens have ended.",
                    username=found.username,
                )
    except UnknownUser:
        abort(404)
    except OwnAccount as exc:
        form.form_errors.append(_("You cannot disable your own account: ask another administrator."))
        return _user_page(user_id, form, exc.http_status)
    except DomainError as exc:
        form.form_errors.append(exc.message)
        return _user_page(user_id, form, exc.http_status)
    flash(message, "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/users/<int:user_id>/disable")
def disable_user(user_id: int) -> ResponseReturnValue:
    return _account_action(user_id, "disable")


@bp.post("/users/<int:user_id>/enable")
def enable_user(user_id: int) -> ResponseReturnValue:
    return _account_action(user_id, "enable")


@bp.post("/users/<int:user_id>/revoke-tokens")
def revoke_user_tokens(user_id: int) -> ResponseReturnValue:
    return _account_action(user_id, "revoke-tokens")


@bp.get("/departments")
def departments() -> ResponseReturnValue:
    session = request_uow().session
    org.list_clouds(session)  # puts the clouds in the session: the departments' links find them there
    return render_template("admin/departments.html", departments=org.list_departments(session))


@bp.get("/clouds")
def clouds() -> ResponseReturnValue:
    return render_template("admin/clouds.html", clouds=org.list_clouds(request_uow().session))
