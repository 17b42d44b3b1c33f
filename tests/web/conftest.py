"""Fixtures of the web tests: the app on the ``seeded`` runtime, clients and logins."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cloudmgr.demo import DemoLogin
from cloudmgr.runtime import Runtime
from tests.web.helpers import csrf_token, demo_login
from web import create_app


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
