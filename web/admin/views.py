from __future__ import annotations

from collections import Counter

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from wtforms import SelectChoice

from cloudmgr.errors import DomainError, ValidationFailed
from cloudmgr.identity import services as identity
from cloudmgr.identity.errors import ExternalAccount, PasswordRejected
from cloudmgr.organisation import services as org
from cloudmgr.organisation.errors import (
    LastAdministrator,
    OrganisationFileInvalid,
    OwnAccount,
    UnknownDepartment,
    UnknownUser,
    UserHasHistory,
    UsernameTaken,
)
from cloudmgr.organisation.models import Role
from cloudmgr.organisation.services import MIN_PASSWORD_LENGTH
from cloudmgr.quotas import services as quotas
from cloudmgr.quotas.errors import QuotaFilesInvalid
from web.admin.blueprint import bp
from web.admin.forms import AccountActionForm, DeleteUserForm, EditUserForm, NewUserForm, ResetPasswordForm, SyncForm
from web.common.labels import role_label
from web.common.listing import ListView, filter_arg, page_request
from web.core.i18n import current_locale
from web.core.security import current_actor
from web.core.uow import request_uow, runtime


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
    session = request_uow().session
    departments = org.department_choices(session)
    locale = current_locale()
    view = ListView(
        endpoint="admin.users",
        params=page_request(per_page=50),
        default_per_page=50,
        filters=[
            filter_arg("role", _("Role"), [(r.value, role_label(r.value)) for r in Role], all_label=_("All roles")),
            filter_arg(
                "department",
                _("Department"),
                [(d.key, d.display_name(locale)) for d in departments],
                all_label=_("All departments"),
            ),
            filter_arg("active", _("Account"), [("1", _("Active")), ("0", _("Disabled"))], all_label=_("All accounts")),
        ],
        search_hint=_("Username, full name or e-mail address"),
    )
    active = view.value("active")
    flt = org.UserFilter(
        role=view.value("role") or None,
        department_id=next((d.id for d in departments if d.key == view.value("department")), None),
        active=None if not active else active == "1",
    )
    view.page = org.users_page(session, flt, view.params)
    return render_template("admin/users.html", users=view.page.rows, view=view)


@bp.route("/users/new", methods=["GET", "POST"])
def new_user() -> ResponseReturnValue:
    session = request_uow().session
    form = NewUserForm()
    form.department.choices = _department_choices()
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


def _department_choices() -> list[SelectChoice]:
    locale = current_locale()
    return [SelectChoice("", _("— No department (operators, finance, administrators) —"))] + [
        SelectChoice(dept.key, dept.display_name(locale)) for dept in org.list_departments(request_uow().session)
    ]


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
            may_delete=org.may_delete(actor, user),
        ),
        status,
    )


@bp.get("/users/<int:user_id>")
def user(user_id: int) -> ResponseReturnValue:
    return _user_page(user_id)


def _account_action(user_id: int, action: str) -> ResponseReturnValue:
    """Disable, enable or revoke tokens: one service each; the same answer shape for all."""
    form = AccountActionForm()

    def again(status: int) -> ResponseReturnValue:
        # A refused disable goes back to its confirmation page (the form is there).
        if action == "disable":
            return _confirm_page(user_id, action, form, status)
        return _user_page(user_id, form, status)

    if not form.validate_on_submit():
        return again(400)
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
        return again(exc.http_status)
    except LastAdministrator as exc:
        form.form_errors.append(_last_admin_message())
        return again(exc.http_status)
    except DomainError as exc:
        form.form_errors.append(exc.message)
        return again(exc.http_status)
    flash(message, "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.route("/users/<int:user_id>/disable", methods=["GET", "POST"])
def disable_user(user_id: int) -> ResponseReturnValue:
    if request.method == "GET":  # the confirmation: what disabling does, then the form
        return _confirm_page(user_id, "disable", AccountActionForm(formdata=None))
    return _account_action(user_id, "disable")


@bp.post("/users/<int:user_id>/enable")
def enable_user(user_id: int) -> ResponseReturnValue:
    return _account_action(user_id, "enable")


@bp.post("/users/<int:user_id>/revoke-tokens")
def revoke_user_tokens(user_id: int) -> ResponseReturnValue:
    return _account_action(user_id, "revoke-tokens")


def _files() -> dict[str, str]:
    settings = runtime().settings
    return {
        "clouds_file": str(settings.clouds_file),
        "departments_file": str(settings.departments_file),
        "quotas_dir": str(settings.quotas_dir),
    }


def _departments_page(problems: list[str] | None = None, status: int = 200) -> ResponseReturnValue:
    session = request_uow().session
    org.list_clouds(session)  # puts the clouds in the session: the departments' links find them there
    return (
        render_template(
            "admin/departments.html",
            departments=org.list_departments(session),
            files=_files(),
            problems=problems or [],
        ),
        status,
    )


@bp.get("/departments")
def departments() -> ResponseReturnValue:
    return _departments_page()


def _clouds_page(problems: list[str] | None = None, status: int = 200) -> ResponseReturnValue:
    session = request_uow().session
    return (
        render_template(
            "admin/clouds.html",
            clouds=org.list_clouds(session),
            files=_files(),
            problems=problems or [],
            last_sync=org.last_file_sync(session, org.CLOUDS_SYNC_WORK),
        ),
        status,
    )


@bp.get("/clouds")
def clouds() -> ResponseReturnValue:
    return _clouds_page()


def _import_files(*, sync_clouds: bool) -> org.FilesImported | list[str]:
    """Import the organisation files (and queue the clouds' sync): what was done, or the files' problems."""
    settings = runtime().settings
    form = SyncForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        return org.import_organisation_files(
            request_uow().session,
            settings.clouds_file,
            settings.departments_file,
            actor=current_actor(),
            sync_clouds=sync_clouds,
        )
    except OrganisationFileInvalid as exc:
        return exc.message.splitlines()


def _imported_message(done: org.FilesImported) -> str:
    message: str = _(
        "Imported %(clouds)d clouds (%(clouds_new)d new) and %(departments)d departments (%(departments_new)d new), "
        "with %(links)d new links between them.",
        clouds=done.clouds,
        clouds_new=done.summary.clouds_added,
        departments=done.departments,
        departments_new=done.summary.departments_added,
        links=done.summary.links_added,
    )
    return message


@bp.post("/departments/sync")
def sync_departments() -> ResponseReturnValue:
    done = _import_files(sync_clouds=False)
    if isinstance(done, list):
        return _departments_page(done, 400)
    flash(_imported_message(done), "success")
    return redirect(url_for("admin.departments"))


@bp.post("/clouds/sync")
def sync_clouds() -> ResponseReturnValue:
    done = _import_files(sync_clouds=True)
    if isinstance(done, list):
        return _clouds_page(done, 400)
    flash(
        _imported_message(done)
        + " "
        + _("The clouds are being synced in the background (networks, projects, catalog): this page shows the result."),
        "success",
    )
    return redirect(url_for("admin.clouds"))


def _quotas_page(problems: list[str] | None = None, status: int = 200) -> ResponseReturnValue:
    session = request_uow().session
    settings = runtime().settings
    sizes = entries = None
    file_problems: list[str] = []
    try:
        definitions = quotas.read_quota_files(settings.quotas_dir)
        sizes, entries = len(definitions.sizes), len(definitions.entries)
    except DomainError as exc:
        file_problems = exc.message.splitlines()
    return (
        render_template(
            "admin/quotas.html",
            files=_files(),
            sizes=sizes,
            entries=entries,
            problems=problems or file_problems,
            last_sync=org.last_file_sync(session, quotas.APPLY_WORK),
        ),
        status,
    )


@bp.get("/quotas")
def quota_files() -> ResponseReturnValue:
    return _quotas_page()


@bp.post("/quotas/apply")
def apply_quota_files() -> ResponseReturnValue:
    form = SyncForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        queued = quotas.queue_apply(request_uow().session, runtime().settings.quotas_dir, actor=current_actor())
    except QuotaFilesInvalid as exc:
        return _quotas_page(list(exc.problems), 400)
    flash(
        _(
            "The quota files are valid (%(sizes)d sizes, %(entries)d department quotas); they are being applied "
            "to the ledger and the clouds in the background: this page shows the result.",
            sizes=queued.sizes,
            entries=queued.entries,
        ),
        "success",
    )
    return redirect(url_for("admin.quota_files"))


def _last_admin_message() -> str:
    message: str = _("This is the last active administrator: make another user an administrator first.")
    return message


def _confirm_page(user_id: int, action: str, form: object, status: int = 200) -> ResponseReturnValue:
    """The page that says what disabling, resetting the password of or deleting a user will do,
    with the form that does it."""
    session = request_uow().session
    user = org.get_user(session, user_id)
    if user is None:
        abort(404)
    actor = current_actor()
    tokens = [t for t in org.list_tokens(session, actor, user.id) if t.revoked_at is None]
    return (
        render_template(
            "admin/user_confirm.html",
            user=user,
            action=action,
            form=form,
            valid_tokens=len(tokens),
            external=identity.is_external(session, user.id),
            is_self=not org.may_delete(actor, user),
            min_password_length=MIN_PASSWORD_LENGTH,
        ),
        status,
    )


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
def edit_user(user_id: int) -> ResponseReturnValue:
    session = request_uow().session
    user = org.get_user(session, user_id)
    if user is None:
        abort(404)
    form = EditUserForm(
        formdata=None if request.method == "GET" else request.form,
        data={
            "display_name": user.display_name,
            "email": user.email or "",
            "role": user.role,
            "department": user.department.key if user.department else "",
        },
    )
    form.department.choices = _department_choices()
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate():
            try:
                org.update_user(
                    session,
                    current_actor(),
                    user_id,
                    display_name=form.display_name.data,
                    email=form.email.data,
                    role=Role(form.role.data),
                    department_key=form.department.data or None,
                    reason=form.reason.data or "",
                )
            except UnknownUser:
                abort(404)
            except UnknownDepartment:
                form.department.errors.append(_("Choose a department from the list."))
            except OwnAccount as exc:
                form.role.errors.append(_("You cannot change your own role: ask another administrator."))
                status = exc.http_status
            except LastAdministrator as exc:
                form.role.errors.append(_last_admin_message())
                status = exc.http_status
            except ValidationFailed as exc:
                if "reason" in exc.message:
                    form.reason.errors.append(
                        _("Give a reason when the role or department changes: it is kept in the audit log.")
                    )
                else:
                    form.form_errors.append(_("The user could not be changed: %(reason)s", reason=exc.message))
            else:
                flash(_("User %(username)s was changed.", username=user.username), "success")
                return redirect(url_for("admin.user", user_id=user_id))
    return render_template("admin/user_edit.html", user=user, form=form), status


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
def reset_password(user_id: int) -> ResponseReturnValue:
    if request.method == "GET":
        return _confirm_page(user_id, "password", ResetPasswordForm(formdata=None))
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        return _confirm_page(user_id, "password", form, 400)
    session = request_uow().session
    try:
        password = identity.reset_password(
            session, current_actor(), user_id, new_password=form.password.data or None, reason=form.reason.data
        )
    except UnknownUser:
        abort(404)
    except ExternalAccount as exc:
        form.form_errors.append(_("This account logs in through Keystone or LDAP: change its password there."))
        return _confirm_page(user_id, "password", form, exc.http_status)
    except OwnAccount as exc:
        form.form_errors.append(_("You cannot do this to your own account: ask another administrator."))
        return _confirm_page(user_id, "password", form, exc.http_status)
    except PasswordRejected as exc:
        form.password.errors.append(
            _(
                "The password does not meet the policy: at least %(n)d characters, three of lower-case letters, "
                "upper-case letters, digits and symbols, and not the username.",
                n=MIN_PASSWORD_LENGTH,
            )
        )
        return _confirm_page(user_id, "password", form, exc.http_status)
    user = org.get_user(session, user_id)
    response = make_response(
        render_template("admin/user_password_done.html", user=user, password=password, generated=not form.password.data)
    )
    # Shown once: never kept by the browser or a proxy (and never put in the session's flash).
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/users/<int:user_id>/delete", methods=["GET", "POST"])
def delete_user(user_id: int) -> ResponseReturnValue:
    if request.method == "GET":
        return _confirm_page(user_id, "delete", DeleteUserForm(formdata=None))
    form = DeleteUserForm()
    if not form.validate_on_submit():
        return _confirm_page(user_id, "delete", form, 400)
    session = request_uow().session
    user = org.get_user(session, user_id)
    if user is None:
        abort(404)
    if form.confirm.data.strip() != user.username:
        form.confirm.errors.append(_("Type the username %(name)s exactly to confirm.", name=user.username))
        return _confirm_page(user_id, "delete", form, 400)
    try:
        username = org.delete_user(session, current_actor(), user_id, reason=form.reason.data)
    except UnknownUser:
        abort(404)
    except OwnAccount as exc:
        form.form_errors.append(_("You cannot delete your own account: ask another administrator."))
        return _confirm_page(user_id, "delete", form, exc.http_status)
    except LastAdministrator as exc:
        form.form_errors.append(_last_admin_message())
        return _confirm_page(user_id, "delete", form, exc.http_status)
    except UserHasHistory as exc:
        form.form_errors.append(
            _(
                "%(username)s has recorded work (requests, keys, purchases or other history): deleting the account "
                "would cut it from that history. Disable the account instead.",
                username=user.username,
            )
        )
        return _confirm_page(user_id, "delete", form, exc.http_status)
    flash(_("User %(username)s was deleted.", username=username), "success")
    return redirect(url_for("admin.users"))
