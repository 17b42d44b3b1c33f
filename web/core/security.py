"""Who is asking: the logged-in user, roles, and the security headers.

The identity Flask-Login keeps for a request is a :class:`WebUser`, an immutable
snapshot of the :class:`~cloudmgr.organisation.models.User` row taken when the request
loads it, so templates and error pages never touch a detached ORM object.  Views that
need the row itself ask a service (``org.get_user(request_uow().session, current_user.id)``).

Access control:

* ``protect_blueprint(bp, *roles)`` guards every view of an audience's blueprint;
* ``@role_required(*roles)`` guards a single view (e.g. a dept_head-only page inside the
  portal).

Anonymous users are redirected to the login page (``next`` kept); a logged-in user with
another role gets the 403 page.  The API has its own token check (``web.api.auth``)
and answers in JSON.

Sessions end on the server's word: the (signed, client-side) session stores the user's
``session_version`` at log-in and every request's user load compares it in the same lean
query that reads the user (``org.session_identity``); the services bump it on log-out,
password change, disable and role or department change, so a copied cookie dies with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response as WerkzeugResponse

from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role, User
from web.core.extensions import login_manager
from web.core.uow import request_uow

P = ParamSpec("P")
R = TypeVar("R")

# Where each role lands after login.
HOME_ENDPOINTS: dict[Role, str] = {
    Role.DEPT_STAFF: "portal.home",
    Role.DEPT_HEAD: "portal.home",
    Role.OPERATOR: "ops.home",
    Role.FINANCE: "finance.home",
    Role.ADMIN: "admin.home",
}

DEPARTMENT_ROLES = (Role.DEPT_STAFF, Role.DEPT_HEAD)

# The session key holding the user's session version from the log-in (see the module docstring).
SESSION_VERSION_KEY = "cloudmgr_session_version"


@dataclass(frozen=True, slots=True)
class DepartmentRef:
    id: int
    key: str
    name_zh: str
    name_en: str

    def display_name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_zh


@dataclass(frozen=True, slots=True)
class WebUser:
    """The request's user, as Flask-Login and the API see it."""

    id: int
    username: str
    display_name: str
    role: Role
    department: DepartmentRef | None
    active: bool = True
    session_version: int = 0
    password_change_required: bool = False

    # --- Flask-Login's protocol ---
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    # --- cloudmgr ---
    def has_role(self, *roles: Role | str) -> bool:
        return self.role in {Role(r) for r in roles}

    @property
    def is_department_user(self) -> bool:
        return self.role in DEPARTMENT_ROLES

    @property
    def home_endpoint(self) -> str:
        return HOME_ENDPOINTS[self.role]

    @property
    def actor(self) -> Actor:
        """Who is acting, as the domain services want it."""
        return Actor(
            username=self.username,
            role=self.role,
            department_id=self.department.id if self.department else None,
            user_id=self.id,
        )

    @classmethod
    def from_identity(cls, identity: org.UserIdentity) -> WebUser:
        dept = identity.department
        return cls(
            id=identity.id,
            username=identity.username,
            display_name=identity.display_name,
            role=Role(identity.role),
            department=DepartmentRef(dept.id, dept.key, dept.name_zh, dept.name_en) if dept else None,
            active=identity.active,
            session_version=identity.session_version,
            password_change_required=identity.password_change_required,
        )

    @classmethod
    def from_user(cls, user: User) -> WebUser:
        return cls.from_identity(org.UserIdentity.of(user))


def current_web_user() -> WebUser | None:
    """The logged-in user, or None for anonymous requests."""
    if not has_request_context():
        return None
    user = current_user._get_current_object()
    return user if isinstance(user, WebUser) else None


def require_user() -> WebUser:
    """The logged-in user; only for views behind ``protect_blueprint``/``role_required``."""
    user = current_web_user()
    if user is None:
        abort(401)
    return user


def current_actor() -> Actor:
    """The logged-in user as an :class:`~cloudmgr.organisation.actor.Actor` (protected views only)."""
    return require_user().actor


def keep_session_version(version: int) -> None:
    """The current session goes on under ``version`` (log-in; the user's own password change)."""
    session[SESSION_VERSION_KEY] = version


def _load_user(user_id: str) -> WebUser | None:
    try:
        uid = int(user_id)
    except ValueError:
        return None
    # One query: the user, their department and whether this session is still theirs.
    identity = org.session_identity(request_uow().session, uid, session.get(SESSION_VERSION_KEY))
    return WebUser.from_identity(identity) if identity is not None else None


login_manager.user_loader(_load_user)


def _login_redirect() -> WerkzeugResponse:
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("auth.login", next=target))


def check_roles(roles: Iterable[Role | str]) -> ResponseReturnValue | None:
    """None when the current user has one of ``roles``; otherwise the answer to send."""
    allowed = {Role(r) for r in roles}
    user = current_web_user()
    if user is None:
        return _login_redirect()
    if user.role not in allowed:
        abort(403)
    return None


def role_required(*roles: Role | str) -> Callable[[Callable[P, R]], Callable[P, R | ResponseReturnValue]]:
    """Only users with one of ``roles`` may call the view."""
    if not roles:
        raise ValueError("role_required needs at least one role")
    allowed = tuple(Role(r) for r in roles)

    def decorator(view: Callable[P, R]) -> Callable[P, R | ResponseReturnValue]:
        @wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R | ResponseReturnValue:
            denied = check_roles(allowed)
            if denied is not None:
                return denied
            return view(*args, **kwargs)

        return guarded

    return decorator


def protect_blueprint(bp: Blueprint, *roles: Role | str) -> None:
    """Every view of ``bp`` needs one of ``roles``."""
    allowed = tuple(Role(r) for r in roles)

    def guard() -> ResponseReturnValue | None:
        return check_roles(allowed)

    bp.before_request(guard)


# What a user whose password an administrator reset may still open: the password form, log-out,
# the language switch and the static files.  The API answers bearer tokens, not the session.
_WHILE_PASSWORD_CHANGE_REQUIRED = frozenset({"auth.change_password", "auth.logout", "auth.set_language", "static"})


def require_password_change() -> ResponseReturnValue | None:
    """``before_request``: after an administrator's reset, the new password comes before any page."""
    if request.blueprint in {"api", "system"} or request.endpoint in _WHILE_PASSWORD_CHANGE_REQUIRED:
        return None
    user = current_web_user()
    if user is None or not user.password_change_required:
        return None
    return redirect(url_for("auth.change_password"))


def viewer_sees_hypervisors() -> bool:
    """Template global: whether the page's reader is shown which host a server runs on
    (:attr:`Actor.sees_hypervisors`); a global, so that imported macros reach it too."""
    user = current_web_user()
    return user is not None and user.actor.sees_hypervisors


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a local path (no scheme, no host), else None: no open redirects."""
    if not target:
        return None
    target = target.replace("\\", "/").strip()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


# --- response headers ------------------------------------------------------------------

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)


def security_headers(response: Response) -> Response:
    headers = response.headers
    # Each header is added unless the view set its own.  The names present are read once:
    # werkzeug's Headers.setdefault raises and catches a KeyError for every header it adds.
    present = {name.lower() for name in headers.keys()}  # noqa: SIM118 (Headers iterates pairs)
    wanted = list(SECURITY_HEADERS)
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        wanted.append(("Strict-Transport-Security", "max-age=31536000"))
    # Pages show a user's data: never keep them in shared caches or the back-forward cache.
    if request.endpoint != "static":
        wanted.append(("Cache-Control", "no-store"))
    for name, value in wanted:
        if name.lower() not in present:
            headers.add(name, value)
    return response


def reject_nul_bytes() -> ResponseReturnValue | None:
    """No input may carry a NUL character: no user types one, PostgreSQL refuses it in text
    (a 500 otherwise) and it hides the rest of a string from C-based tools.  A clear 400."""
    from web.core.errors import error_response, json_error, wants_json

    values = [*request.args.values(), *request.args.keys(), *request.form.values(), *request.form.keys()]
    found = any("\x00" in v for v in values) or "\x00" in request.path
    if not found and request.is_json:
        # The raw body, not the parsed one: parsing here would turn a hostile document (nested a
        # thousand deep) into a RecursionError before the API's own reader can answer 400.  In
        # JSON a NUL can only travel escaped; a raw one makes the document invalid (400 there).
        body = request.get_data(cache=True)
        found = b"\\u0000" in body or b"\x00" in body
    if not found:
        return None
    message = _("The input contains a NUL character, which is not allowed.")
    if wants_json():
        return json_error(400, "invalid", "the input contains a NUL character (\\u0000), which is not allowed")
    return error_response(400, message=message)


def init_app(app: Flask) -> None:
    app.before_request(reject_nul_bytes)
    login_manager.init_app(app)
    login_manager.session_protection = "strong"
    # Anonymous access to a protected view goes through check_roles; this covers the rest.
    login_manager.login_view = "auth.login"

    login_manager.unauthorized_handler(_login_redirect)
    app.before_request(require_password_change)
    app.add_template_global(viewer_sees_hypervisors, "sees_hypervisors")
