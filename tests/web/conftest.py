"""Fixtures of the web tests: the app on the ``seeded`` runtime, clients and logins."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cloudmgr.config import Settings
from cloudmgr.demo import DemoLogin
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime, set_runtime
from tests import db_snapshots
from tests.conftest import migrate_test_database
from tests.web.helpers import HEALTH_HEAD, HEALTH_PASSWORD, HEALTH_STAFF, Journey, csrf_token, demo_login
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


# --- the self-service journey: synced clouds, catalog and applied quotas ----------------------------
#
# Building it (sync every cloud, the catalog, apply the quota files) takes ~1.5 s; on SQLite it is
# built once per session and each test gets a copy of the database file and the simulated clouds.
# On PostgreSQL it is built for each test.


def _build_journey_state(rt: Runtime) -> None:
    from cloudmgr.catalog.services import read_rates, sync_catalog
    from cloudmgr.demo import seed_demo_users
    from cloudmgr.organisation import services as org
    from cloudmgr.organisation.sync import sync_clouds
    from cloudmgr.quotas import services as quotas

    clouds, departments = org.read_organisation(rt.settings.clouds_file, rt.settings.departments_file)
    with rt.db.unit_of_work() as uow:
        org.import_organisation(uow.session, clouds, departments, actor=Actor.system("test"))
        seed_demo_users(uow.session, actor=Actor.system("test"))
        # A health-department head: the health cloud adds finance above 1,000 yuan a month.
        org.create_user(
            uow.session,
            username=HEALTH_STAFF,
            password=HEALTH_PASSWORD,
            role=Role.DEPT_STAFF,
            display_name="赵敏 (卫健委信息中心)",
            department_key="prov-health",
            actor=Actor.system("test"),
        )
        org.create_user(
            uow.session,
            username=HEALTH_HEAD,
            password=HEALTH_PASSWORD,
            role=Role.DEPT_HEAD,
            display_name="孙强 (卫健委负责人)",
            department_key="prov-health",
            actor=Actor.system("test"),
        )
    assert all(r.ok for r in sync_clouds(rt.db, rt.providers, actor=Actor.system("test")))
    sync_catalog(rt.db, rt.providers, read_rates(rt.settings.rates_file), actor=Actor.system("test"))
    assert quotas.apply(rt.db, rt.providers, rt.settings.quotas_dir, actor=Actor.system("test")).ok


@pytest.fixture
def journey_rt(settings: Settings) -> Iterator[Runtime]:
    """The runtime of a test that needs the journey state: built by the worker's first such test,
    copied for the others (tests/db_snapshots.py)."""
    restored = db_snapshots.restore_world(settings, "web-journey")
    if not restored:
        migrate_test_database(settings.database_url)
    rt = Runtime.from_settings(settings)
    set_runtime(rt)
    if not restored:
        _build_journey_state(rt)
        db_snapshots.keep_world(rt, "web-journey")
    try:
        yield rt
    finally:
        set_runtime(None)
        rt.db.dispose()


@pytest.fixture
def journey(journey_rt: Runtime) -> Journey:
    return Journey(journey_rt)
