"""The OpenAPI 3.1 document of ``/api/v1``, assembled from what the endpoints register.

Each endpoint declares itself once, with :func:`web.api.api_route`; that registers the
Flask route *and* its OpenAPI operation here, so the document cannot drift from the
routes.  Schemas shared by several operations are added with :meth:`ApiSpec.schema`
and referred to with :func:`ref`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

_CONVERTER = re.compile(r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
_TYPES = {"int": {"type": "integer"}, "float": {"type": "number"}, "uuid": {"type": "string", "format": "uuid"}}


def ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def list_of(item: JSON) -> JSON:
    """The envelope of every collection: ``{"items": [...]}`` (room for paging later)."""
    return {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": item}}}


def openapi_path(flask_rule: str) -> tuple[str, list[JSON]]:
    """``/departments/<key>`` -> ``/departments/{key}`` and its path parameters."""
    params: list[JSON] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        schema = _TYPES.get(match.group("conv") or "", {"type": "string"})
        params.append({"name": name, "in": "path", "required": True, "schema": dict(schema)})
        return "{" + name + "}"

    return _CONVERTER.sub(replace, flask_rule), params


@dataclass
class Operation:
    path: str
    method: str
    operation_id: str
    summary: str
    description: str = ""
    tags: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    public: bool = False
    parameters: list[JSON] = field(default_factory=list)
    request_body: JSON | None = None
    response: JSON | None = None
    status: int = 200
    errors: tuple[int, ...] = ()

    def as_dict(self) -> JSON:
        responses: JSON = {
            str(self.status): {"description": "Success"}
            if self.response is None
            else {"description": "Success", "content": {"application/json": {"schema": self.response}}}
        }
        errors = set(self.errors) | ({400} if self.request_body or self.parameters else set())
        if not self.public:
            errors |= {401, 403}
        for status in sorted(errors):
            responses[str(status)] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
        op: JSON = {
            "operationId": self.operation_id,
            "summary": self.summary,
            "tags": list(self.tags),
            "responses": responses,
        }
        description = self.description
        if self.roles and not self.public:
            description = (description + "\n\n" if description else "") + "Roles: " + ", ".join(self.roles) + "."
        if description:
            op["description"] = description
        if self.parameters:
            op["parameters"] = copy.deepcopy(self.parameters)
        if self.request_body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": self.request_body}}}
        if self.public:
            op["security"] = []
        return op


ERROR_RESPONSES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The input is invalid (error: invalid, bad_request …)."),
    401: ("Unauthorized", "No token, or an invalid, expired or revoked token."),
    403: ("Forbidden", "The token's user does not have a role allowed here."),
    404: ("NotFound", "No such resource, or not one the user may see."),
    405: ("MethodNotAllowed", "The path does not accept this method."),
    409: ("Conflict", "The request conflicts with the current state."),
    502: ("BadGateway", "A cloud was asked and did not answer as needed (error: console_unavailable …); try later."),
}


class ApiSpec:
    def __init__(self, *, title: str, version: str, description: str) -> None:
        self.title = title
        self.version = version
        self.description = description
        self._schemas: dict[str, JSON] = {}
        self._tags: dict[str, str] = {}
        self._operations: dict[tuple[str, str], Operation] = {}

    def schema(self, name: str, schema: JSON) -> JSON:
        """Add a named component schema; returns its ``$ref``."""
        if name in self._schemas and self._schemas[name] != schema:
            raise ValueError(f"schema {name!r} is already defined differently")
        self._schemas[name] = schema
        return ref(name)

    def tag(self, name: str, description: str) -> str:
        self._tags[name] = description
        return name

    def add(self, operation: Operation) -> None:
        key = (operation.path, operation.method)
        if key in self._operations:
            raise ValueError(f"{operation.method.upper()} {operation.path} is already in the API document")
        self._operations[key] = operation

    @property
    def operations(self) -> list[Operation]:
        return list(self._operations.values())

    def document(self) -> JSON:
        paths: JSON = {}
        for (path, method), operation in sorted(self._operations.items()):
            paths.setdefault(path, {})[method] = operation.as_dict()
        responses = {
            name: {"description": text, "content": {"application/json": {"schema": ref("Error")}}}
            for name, text in ERROR_RESPONSES.values()
        }
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version, "description": self.description},
            "tags": [{"name": n, "description": d} for n, d in sorted(self._tags.items())],
            "paths": paths,
            "components": {
                "schemas": copy.deepcopy(self._schemas),
                "responses": responses,
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An API token from `cloudmgr users token USERNAME`.",
                    }
                },
            },
            "security": [{"bearerAuth": []}],
        }
