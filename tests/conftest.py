"""Shared fixtures: settings in a temporary instance folder, and a migrated database.

The ``db`` fixture runs every database test on SQLite and, when
``CLOUDMGR_TEST_DATABASE_URL`` names a PostgreSQL server (CI sets it), on PostgreSQL too:
each test session creates its own PostgreSQL database there and drops it at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cloudmgr.config import Settings, load_settings
from cloudmgr.db import Database
from cloudmgr.dbschema import upgrade
from cloudmgr.runtime import Runtime, set_runtime

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get("CLOUDMGR_TEST_DATABASE_URL") else ["sqlite"]


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; dropped afterwards."""
    base_url = os.environ.get("CLOUDMGR_TEST_DATABASE_URL")
    if not base_url:
        pytest.fail("CLOUDMGR_TEST_DATABASE_URL is not set")
    url = make_url(base_url)
    name = f"cloudmgr_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cloudmgr.sqlite3'}"
    url: str = request.getfixturevalue("postgres_server_url")
    _reset_postgres(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    instance = tmp_path / "instance"
    instance.mkdir()
    return load_settings(
        {"CLOUDMGR_ENV": "test"},
        instance_path=instance,
        database_url=database_url,
        ansible_artifacts_dir=instance / "ansible",
        scheduler_enabled=False,
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    upgrade(settings.database_url)
    rt = Runtime.from_settings(settings)
    set_runtime(rt)
    yield rt
    set_runtime(None)
    rt.db.dispose()


@pytest.fixture
def db(runtime: Runtime) -> Database:
    return runtime.db


@pytest.fixture
def seeded(runtime: Runtime) -> Runtime:
    """The demo organisation and the demo logins."""
    from cloudmgr.demo import seed_demo_users
    from cloudmgr.organisation import services as org

    clouds, departments = org.read_organisation(runtime.settings.clouds_file, runtime.settings.departments_file)
    with runtime.db.unit_of_work() as uow:
        org.import_organisation(uow.session, clouds, departments, actor="test")
        seed_demo_users(uow.session, actor="test")
    return runtime


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
