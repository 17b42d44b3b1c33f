"""Fixtures of the web tests: the app on the ``seeded`` runtime, clients and logins."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

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
from tests.conftest import copy_sqlite_database, migrate_test_database
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


def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    from functools import partial

    from werkzeug.security import generate_password_hash

    from cloudmgr.organisation import services

    monkeypatch.setattr(
        services, "generate_password_hash", partial(generate_password_hash, method="pbkdf2:sha256:1000")
    )


@pytest.fixture(scope="session")
def journey_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database and simulated clouds in the journey state, built once."""
    from cloudmgr.config import load_settings
    from cloudmgr.dbschema import upgrade

    folder = tmp_path_factory.mktemp("journey-template")
    instance = folder / "instance"
    instance.mkdir()
    settings = load_settings(
        {"CLOUDMGR_ENV": "test"},
        instance_path=instance,
        database_url=f"sqlite:///{folder / TEMPLATE_DB}",
        ansible_artifacts_dir=instance / "ansible",
        scheduler_enabled=False,
    )
    upgrade(settings.database_url)
    rt = Runtime.from_settings(settings)
    set_runtime(rt)
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _cheap_hashes(monkeypatch)
            _build_journey_state(rt)
    finally:
        set_runtime(None)
        rt.db.dispose()
    return folder


TEMPLATE_DB = "cloudmgr.sqlite3"


@pytest.fixture
def journey_rt(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """The runtime of a test that needs the journey state (see ``journey_template``)."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        template: Path = request.getfixturevalue("journey_template")
        target = Path(url.removeprefix("sqlite:///"))
        copy_sqlite_database(template / TEMPLATE_DB, target)
        shutil.copytree(
            template / "instance" / "simulated-clouds", settings.instance_path / "simulated-clouds", dirs_exist_ok=True
        )
        rt = Runtime.from_settings(settings)
        set_runtime(rt)
    elif db_snapshots.restore_world(settings, "web-journey"):  # built once a worker (tests/db_snapshots.py)
        rt = Runtime.from_settings(settings)
        set_runtime(rt)
    else:
        migrate_test_database(url)
        rt = Runtime.from_settings(settings)
        set_runtime(rt)
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
