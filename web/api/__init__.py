"""The REST API, ``/api/v1``: bearer tokens, JSON in and out, an OpenAPI 3.1 document.

Adding an endpoint (later issues)::

    # web/api/requests.py
    from web.api.blueprint import api_route, api_user, spec
    from web.api.spec import list_of, ref

    REQUEST = spec.schema("Request", {...})

    @api_route("/requests", summary="List requests", tags=("requests",), roles=(Role.OPERATOR,),
               response=list_of(REQUEST))
    def list_requests() -> Response: ...

and import the module here (blueprints cannot get routes after
they are registered on an app).  ``api_route`` registers the Flask route and its OpenAPI
operation, checks the roles (403 JSON), and documents 401/403 (plus 400 when the
operation has parameters or a body, and the ``errors`` you list).  Domain errors raised
by the services become ``{"error": code, "message": text}`` with their HTTP status
(``web.core.errors``), as does every HTTP error under ``/api``.
"""

from __future__ import annotations

from web.api import (  # noqa: F401  (registers the endpoints, before any app registers the blueprint)
    approvals,
    backups,
    capacity,
    department_resources,
    firewall,
    inventory,
    keys,
    lines,
    lines_finance,
    moves,
    orphans,
    programme,
    purchases,
    quotas,
    requests,
    runbooks,
    servers,
    storage,
    views,
)
from web.api.blueprint import bp

__all__ = ["bp"]
