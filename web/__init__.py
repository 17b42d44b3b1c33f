"""cloudmgr's web front end: the Flask app factory.

One blueprint per audience (``auth``, ``portal`` /portal, ``ops`` /ops, ``finance``
/finance, ``admin`` /admin, ``api`` /api/v1) plus ``system`` (/metrics, /healthz).
``web`` imports ``cloudmgr``; ``cloudmgr`` never imports ``web``.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, g

from cloudmgr import __version__
from cloudmgr.config import Settings, load_settings
from cloudmgr.runtime import Runtime, set_runtime
from web.common import cloud_status, display, labels, names, navigation, programme, purchase_forms
from web.core import errors, i18n, observability, security, uow
from web.core.extensions import csrf
from web.core.proxy import TrustedProxies

SESSION_LIFETIME = timedelta(hours=8)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Flask:
    """Build the web app.

    ``settings`` defaults to :func:`cloudmgr.config.load_settings`; a ready ``runtime``
    (tests share theirs) wins over ``settings``.  The runtime is installed process-wide
    (:func:`cloudmgr.runtime.set_runtime`) and kept in ``app.extensions["cloudmgr"]``.
    """
    if runtime is None:
        runtime = Runtime.from_settings(settings or load_settings())
    settings = runtime.settings
    set_runtime(runtime)

    app = Flask(__name__, instance_path=str(settings.instance_path), instance_relative_config=False)
    app.extensions["cloudmgr"] = runtime
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="cloudmgr_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # The cookie is signed and sent again only when the session changes (login, a message
        # after a form), not with every answer: a session that only reads ends SESSION_LIFETIME
        # after its last change, however busy it is.
        SESSION_REFRESH_EACH_REQUEST=False,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.session_cookie_secure,
        WTF_CSRF_TIME_LIMIT=int(SESSION_LIFETIME.total_seconds()),
        WTF_CSRF_SSL_STRICT=settings.session_cookie_secure,
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        BABEL_DEFAULT_TIMEZONE=settings.time_zone,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    # Order matters: Flask runs after_request functions in reverse order of registration.
    # Execution order is: end the unit of work -> security headers -> latency metric.
    observability.init_timing(app)
    app.after_request(security.security_headers)
    uow.init_app(app)

    i18n.init_app(app, instance_path=settings.instance_path)
    labels.init_app(app)
    display.init_app(app)
    purchase_forms.init_app(app)
    programme.init_app(app)
    names.init_app(app)
    cloud_status.init_app(app)
    navigation.init_app(app)
    security.init_app(app)
    csrf.init_app(app)
    errors.init_app(app)
    _register_blueprints(app)
    # The client's address behind the trusted reverse proxies: log-ins are throttled by it.
    app.wsgi_app = TrustedProxies(app.wsgi_app, settings.forwarded_allow_ips)  # type: ignore[method-assign]

    @app.context_processor
    def _layout_context() -> dict[str, object]:
        return {
            "settings": settings,
            "simulated_cloud": settings.cloud_provider == "simulated",
            "current_web_user": security.current_web_user(),
            "minimal_chrome": bool(g.get("cloudmgr_minimal_chrome")),
            "version": __version__,
        }

    return app


def _register_blueprints(app: Flask) -> None:
    from web.admin import bp as admin_bp
    from web.api import bp as api_bp
    from web.auth import bp as auth_bp
    from web.finance import bp as finance_bp
    from web.operations import bp as ops_bp
    from web.portal import bp as portal_bp

    app.register_blueprint(observability.bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(portal_bp, url_prefix="/portal")
    app.register_blueprint(ops_bp, url_prefix="/ops")
    app.register_blueprint(finance_bp, url_prefix="/finance")
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    csrf.exempt(api_bp)  # token auth, no cookies: nothing for a forged form to ride on
