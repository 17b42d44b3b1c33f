"""schemathesis against /api/v1/openapi.json, in-process (WSGI), with a bearer token.

Every operation gets a few generated requests, valid ones (positive) and invalid ones
(negative), with a fixed seed (``derandomize``): no answer may be a 5xx, and every 4xx is the
JSON error shape ``{"error": code, "message": text}``.  The token is of a user whose role may
use the operation (an operator where it may, else a department user, finance or admin), so
the requests reach the endpoint's own parsing and services.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudmgr.db import utcnow
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from tests.conftest import PRODUCTION_DATABASE
from tests.web.helpers import Journey
from web import create_app

USER_BY_ROLE = {
    "operator": "operator",
    "dept_staff": "zhangwei",
    "dept_head": "lina",
    "finance": "finance",
    "admin": "admin",
}
PREFERENCE = ("operator", "dept_staff", "dept_head", "finance", "admin")
POSITIVE_EXAMPLES = 5
NEGATIVE_EXAMPLES = 3
# The planner packs an inventory with numba: its first call compiles for tens of seconds.
# It has its own tests (tests/capacity); here it would dominate the run time.
SLOW_OPERATIONS = {"plan_consolidation"}


def _tokens(app: Flask) -> dict[str, str]:
    rt = app.extensions["cloudmgr"]
    tokens = {}
    with rt.db.unit_of_work() as uow:
        for role, username in USER_BY_ROLE.items():
            user = org.get_user_by_name(uow.session, username)
            issued = org.issue_token(
                uow.session, user, name="fuzz", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
            )
            tokens[role] = issued.token
    return tokens


def _roles_of(definition: dict[str, object]) -> list[str]:
    match = re.search(r"Roles: ([a-z_, ]+)\.", str(definition.get("description", "")))
    return [r.strip() for r in match.group(1).split(",")] if match else list(PREFERENCE)


def _fuzz(operation: Any, mode: Any, examples: int, headers: dict[str, str], role: str, failures: list[str]) -> None:
    strategy = operation.as_strategy(generation_mode=mode)

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(strategy)
        response = case.call(headers=headers)
        status = response.status_code
        where = f"{case.method} {case.formatted_path} ({mode.value}, as {role})"
        if status >= 500:
            failures.append(f"{where}: {status} {response.text[:300]}")
        elif 400 <= status < 500 and case.path != "/openapi.json":
            try:
                body = response.json()
            except ValueError:
                body = None
            if not (isinstance(body, dict) and "error" in body and "message" in body):
                failures.append(f"{where}: {status} is not the JSON error shape: {response.text[:200]}")

    try:
        run()
    except Exception as exc:  # an error while generating or sending: report it as a failure
        failures.append(f"{operation.label} ({mode.value}): {type(exc).__name__}: {str(exc)[:300]}")


@PRODUCTION_DATABASE
def test_api_never_answers_5xx(journey: Journey) -> None:
    app = create_app(runtime=journey.rt)
    tokens = _tokens(app)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        # An invalid operation schema is an Err whose ok() raises: the test fails on it.
        operation = result.ok()  # type: ignore[union-attr]
        if operation.definition.raw.get("operationId") in SLOW_OPERATIONS:
            continue
        operations += 1
        allowed = _roles_of(operation.definition.raw)
        role = next(r for r in PREFERENCE if r in allowed)
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        _fuzz(operation, schemathesis.GenerationMode.POSITIVE, POSITIVE_EXAMPLES, headers, role, failures)
        _fuzz(operation, schemathesis.GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, headers, role, failures)
    assert operations >= 40
    assert not failures, "\n".join(dict.fromkeys(failures))
