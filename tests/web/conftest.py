"""Fixtures of the web tests: the app on the ``seeded`` runtime, clients and logins."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cloudmgr.demo import DEMO_LOGINS, DemoLogin
from cloudmgr.runtime import Runtime
from web import create_app

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')

HOME_PATHS = {
    "dept_staff": "/portal/",
    "dept_head": "/portal/",
    "operator": "/ops/",
    "finance": "/finance/",
    "admin": "/admin/",
}


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


def demo_login(role: str) -> DemoLogin:
    return next(login for login in DEMO_LOGINS if login.role.value == role)


@pytest.fixture
def app(seeded: Runtime) -> Flask:
    return create_app(runtime=seeded)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


LoginFn = Callable[[str, str], TestResponse]


@pytest.fixture
def login(client: FlaskClient) -> LoginFn:
    """Log ``client`` in through the form; returns the (not followed) answer."""

    def do_login(username: str, password: str) -> TestResponse:
        token = csrf_token(client.get("/login").get_data(as_text=True))
        return client.post("/login", data={"username": username, "password": password, "csrf_token": token})

    return do_login


@pytest.fixture
def login_as(login: LoginFn) -> Callable[[str], DemoLogin]:
    """Log in as the first demo login of ``role``."""

    def do(role: str) -> DemoLogin:
        demo = demo_login(role)
        response = login(demo.username, demo.password)
        assert response.status_code == 302, response.get_data(as_text=True)
        return demo

    return do
