"""Error answers: HTML pages in the layout, JSON under ``/api``.

Domain errors (:class:`cloudmgr.errors.DomainError`) become their ``http_status`` with
their ``code``; HTTP errors keep their status.  Under ``/api`` every error is
``{"error": code, "message": text}``; elsewhere it is ``templates/errors/error.html``.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, default_exceptions

from cloudmgr.errors import DomainError

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

# Codes for HTTP errors in the API's JSON answers.
HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}

PAGE_TITLES: dict[int, object] = {
    400: _l("Bad request"),
    401: _l("Please log in"),
    403: _l("Access denied"),
    404: _l("Page not found"),
    405: _l("Method not allowed"),
    409: _l("Conflict"),
    500: _l("Internal error"),
}

PAGE_TEXTS: dict[int, object] = {
    400: _l("The request could not be understood. Go back and try again."),
    401: _l("You need to log in to see this page."),
    403: _l("Your role does not give you access to this page."),
    404: _l("The page you asked for does not exist."),
    405: _l("This address does not accept that kind of request."),
    409: _l("The request conflicts with the current state."),
    500: _l("Something went wrong on our side. The error has been logged; please try again later."),
}


def wants_json() -> bool:
    return request.path.startswith(API_PREFIX) or request.path == API_PREFIX.rstrip("/")


def json_error(status: int, code: str | None = None, message: str | None = None) -> Response:
    response = jsonify(
        {"error": code or HTTP_CODES.get(status, "error"), "message": message or _default_message(status)}
    )
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="cloudmgr"'
    return response


def _default_message(status: int) -> str:
    exc_class = default_exceptions.get(status)
    return str(exc_class.description) if exc_class is not None and exc_class.description else "error"


def error_response(
    status: int, *, message: str | None = None, code: str | None = None, minimal: bool = False
) -> Response:
    """The error answer for the current request: JSON under /api, else the error page."""
    if wants_json():
        return json_error(status, code, message)
    g.cloudmgr_minimal_chrome = minimal
    title = str(PAGE_TITLES.get(status, _("Error")))
    text = message or str(PAGE_TEXTS.get(status, _("The request could not be completed.")))
    html = render_template("errors/error.html", status=status, title=title, text=text)
    return Response(html, status=status, mimetype="text/html")


def handle_domain_error(exc: DomainError) -> Response:
    if not wants_json():
        log.info("domain error on %s: %s (%s)", request.path, exc.code, exc.message)
    return error_response(exc.http_status, message=exc.message, code=exc.code)


def handle_csrf_error(exc: CSRFError) -> Response:
    if wants_json():
        return json_error(400, "csrf_failed", str(exc.description))
    return error_response(
        400, message=_("The form has expired or was not sent from this site. Reload the page and try again.")
    )


def handle_http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if wants_json():
        response = json_error(status, None, str(exc.description) if exc.description else None)
    else:
        response = error_response(status)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def handle_unexpected(exc: Exception) -> Response:
    original = exc.original_exception if isinstance(exc, InternalServerError) else exc
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=original)
    return error_response(500)


def init_app(app: Flask) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(InternalServerError, handle_unexpected)
    app.register_error_handler(Exception, handle_unexpected)
