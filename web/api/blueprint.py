"""The API blueprint, its OpenAPI document and ``api_route``: the endpoint modules import them from
here and ``web.api`` imports the endpoint modules (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, g, request
from flask.typing import ResponseReturnValue

from cloudmgr import __version__
from cloudmgr.organisation import services as org
from cloudmgr.organisation.models import Role
from web.api.spec import JSON, ApiSpec, Operation, openapi_path
from web.core.errors import json_error
from web.core.security import WebUser
from web.core.uow import request_uow

URL_PREFIX = "/api/v1"
ALL_ROLES: tuple[Role, ...] = tuple(Role)

bp = Blueprint("api", "web.api")

spec = ApiSpec(
    title="cloudmgr API",
    version=__version__,
    description=(
        "The REST API of cloudmgr, the province's government cloud consolidation and self-service manager. "
        "Authenticate with `Authorization: Bearer <token>`. Errors are JSON: "
        '`{"error": "<code>", "message": "<text>"}`. Collections are `{"items": [...]}`.'
    ),
)

_PUBLIC_ENDPOINTS: set[str] = set()

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


def api_user() -> WebUser:
    """The user the request's token belongs to (every non-public endpoint has one)."""
    user: WebUser = g.api_user
    return user


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@bp.before_request
def _authenticate() -> ResponseReturnValue | None:
    if request.endpoint in _PUBLIC_ENDPOINTS:
        return None
    token = _bearer_token()
    if token is None:
        return json_error(401, "unauthorized", "send an API token: 'Authorization: Bearer <token>'")
    identity = org.identity_for_token(request_uow().session, token)
    if identity is None:
        return json_error(401, "invalid_token", "the API token is unknown, expired or revoked")
    g.api_user = WebUser.from_identity(identity)
    return None


def api_route(
    rule: str,
    *,
    summary: str,
    method: str = "GET",
    tags: Iterable[str] = (),
    roles: Iterable[Role | str] = ALL_ROLES,
    public: bool = False,
    response: JSON | None = None,
    status: int = 200,
    parameters: Iterable[JSON] = (),
    request_body: JSON | None = None,
    errors: Iterable[int] = (),
    description: str = "",
    operation_id: str | None = None,
) -> Callable[[F], F]:
    """Register an API endpoint and its OpenAPI operation (see the module docstring)."""
    allowed = tuple(Role(r) for r in roles)
    method = method.upper()

    def decorator(view: F) -> F:
        endpoint = operation_id or view.__name__
        path, path_params = openapi_path(URL_PREFIX + rule)
        spec.add(
            Operation(
                path=path,
                method=method.lower(),
                operation_id=endpoint,
                summary=summary,
                description=description,
                tags=tuple(tags),
                roles=tuple(r.value for r in allowed),
                public=public,
                parameters=path_params + list(parameters),
                request_body=request_body,
                response=response,
                status=status,
                errors=tuple(errors),
            )
        )
        if public:
            _PUBLIC_ENDPOINTS.add(f"{bp.name}.{endpoint}")

        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            if not public and api_user().role not in allowed:
                return json_error(403, "forbidden", "your role may not use this endpoint")
            return view(*args, **kwargs)

        bp.add_url_rule(rule, endpoint=endpoint, view_func=guarded, methods=[method])
        return view

    return decorator
