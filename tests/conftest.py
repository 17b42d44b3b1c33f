"""Shared fixtures: settings in a temporary instance folder, and a migrated database.

The ``db`` fixture runs every database test on SQLite and, when
``CLOUDMGR_TEST_DATABASE_URL`` names a PostgreSQL server (CI sets it), on PostgreSQL too:
each test session creates its own PostgreSQL database there and drops it at the end.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cloudmgr.config import Settings, load_settings
from cloudmgr.db import Database
from cloudmgr.dbschema import upgrade
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime, set_runtime
from tests import db_snapshots
from tests.db_snapshots import copy_sqlite_database, recreate_postgres_database

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.journey_fixtures"]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt costs ~0.2 s a hash here and every test seeds six users: hash cheaply in tests
    (verification reads the method from the stored hash, so nothing else changes)."""
    from functools import partial

    from werkzeug.security import generate_password_hash

    from cloudmgr.organisation import services

    monkeypatch.setattr(
        services, "generate_password_hash", partial(generate_password_hash, method="pbkdf2:sha256:1000")
    )


@pytest.fixture(autouse=True)
def _root_logger_kept() -> Iterator[None]:
    """The CLI run in-process (click's CliRunner) sets the root logger's handler on the stderr of
    the moment, which pytest closes after the test: a thread logging later (aiosmtpd's) then
    printed "--- Logging error ---" into the run's output.  Each test gets the root logger back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get("CLOUDMGR_TEST_DATABASE_URL") else ["sqlite"]


# For tests whose subject is not the database (pages in a browser, the lab, every route ×
# every role): one backend is enough, and running them twice would double the suite's time.
ONE_DATABASE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
# For tests that hunt database-specific failures: the production database when configured.
PRODUCTION_DATABASE = pytest.mark.parametrize(
    "database_url", ["postgresql" if os.environ.get("CLOUDMGR_TEST_DATABASE_URL") else "sqlite"], indirect=True
)


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
        conn.execute(text(f'DROP DATABASE IF EXISTS "{_template_name(name)}" WITH (FORCE)'))
        for snapshot in db_snapshots.POSTGRES_SNAPSHOTS:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{snapshot}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


# --- migrated databases, copied from a template ------------------------------------------------
#
# Alembic's revisions cost ~0.3 s a test and a thousand tests need a migrated database: each
# backend is migrated once per session into a template, and a test's database is a copy of it
# (a file copy on SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL: milliseconds).  The
# migrations themselves run from an empty database in tests/test_db.py and tests/test_cli.py.

_SQLITE_TEMPLATE: list[Path] = []
_POSTGRES_TEMPLATES: set[str] = set()


def _template_name(database: str) -> str:
    return f"{database}_tmpl"


def _sqlite_template() -> Path:
    if not _SQLITE_TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="cloudmgr-schema-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "template.sqlite3"
        upgrade(f"sqlite:///{path}")
        _SQLITE_TEMPLATE.append(path)
    return _SQLITE_TEMPLATE[0]


def migrate_test_database(database_url: str) -> None:
    """Bring a test's new, empty database to the head revision (see above)."""
    if database_url.startswith("sqlite:///"):
        target = Path(database_url.removeprefix("sqlite:///"))
        if target.exists() and target.stat().st_size > 0:
            upgrade(database_url)  # not new: migrate what is there
            return
        copy_sqlite_database(_sqlite_template(), target)
        return
    if not database_url.startswith("postgresql"):
        upgrade(database_url)
        return
    url = make_url(database_url)
    assert url.database
    template = _template_name(url.database)
    if template not in _POSTGRES_TEMPLATES:
        recreate_postgres_database(database_url, template)
        upgrade(url.set(database=template).render_as_string(hide_password=False))
        _POSTGRES_TEMPLATES.add(template)
    recreate_postgres_database(database_url, url.database, template=template)


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cloudmgr.sqlite3'}"
    url: str = request.getfixturevalue("postgres_server_url")
    if not {"runtime", "journey_rt"} & set(request.fixturenames):  # those make the database anew anyway
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
def runtime(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Runtime]:
    from_snapshot = db_snapshots.restore(request, settings)
    if not from_snapshot:
        migrate_test_database(settings.database_url)
    rt = Runtime.from_settings(settings)
    wanted = db_snapshots.wanted_level(request)
    if wanted and not db_snapshots.restored(request, wanted):
        db_snapshots.mark_pristine(request, rt)
    set_runtime(rt)
    yield rt
    set_runtime(None)
    rt.db.dispose()


@pytest.fixture
def db(runtime: Runtime) -> Database:
    return runtime.db


@pytest.fixture
def seeded(request: pytest.FixtureRequest, runtime: Runtime) -> Runtime:
    """The demo organisation and the demo logins (built once a worker: tests/db_snapshots.py)."""
    from cloudmgr.demo import seed_demo_users
    from cloudmgr.organisation import services as org

    if db_snapshots.restored(request, "seeded"):
        return runtime
    pristine = db_snapshots.still_pristine(request, runtime)
    clouds, departments = org.read_organisation(runtime.settings.clouds_file, runtime.settings.departments_file)
    with runtime.db.unit_of_work() as uow:
        org.import_organisation(uow.session, clouds, departments, actor=Actor.system("test"))
        seed_demo_users(uow.session, actor=Actor.system("test"))
    if pristine:
        db_snapshots.keep(request, runtime, "seeded")
        db_snapshots.mark_pristine(request, runtime)
    return runtime


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


_RUN_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Says where this run's screenshots of the pages are (the browser tests write them, one
    folder per role, under test-artifacts/screenshots; under pytest-xdist a test's own output is
    not shown, this line is)."""
    shots = ARTIFACTS / "screenshots"
    if not shots.is_dir():
        return
    fresh = [png for png in shots.rglob("*.png") if png.stat().st_mtime >= _RUN_STARTED]
    if fresh:
        terminalreporter.write_line(f"screenshots of the pages: {shots} ({len(fresh)} PNG files from this run)")


# --- the lab OpenStack ---------------------------------------------------------------------


def lab_clouds_yaml_path() -> Path:
    return Path(os.environ.get("CLOUDMGR_LAB_CLOUDS_YAML", str(REPO / ".lab" / "clouds.yaml")))


@pytest.fixture(scope="session")
def lab_clouds_yaml() -> Path:
    """The lab's clouds.yaml, once the lab answers.  Fails (never skips) when it is down:
    `make test` starts the lab; run `make lab-up` when running pytest by hand."""
    import subprocess

    path = lab_clouds_yaml_path()
    if not path.exists():
        pytest.fail(f"the lab OpenStack is not set up ({path} missing): run `make lab-up`")
    status = subprocess.run(
        ["bash", str(REPO / "vagrant" / "lab" / "status.sh")], capture_output=True, text=True, timeout=120, check=False
    )
    if status.returncode != 0:
        pytest.fail(
            f"the lab OpenStack is not healthy: run `make lab-up`\n{status.stdout[-2000:]}{status.stderr[-2000:]}"
        )
    return path


@pytest.fixture
def lab_settings(settings: Settings, lab_clouds_yaml: Path) -> Settings:
    return settings.with_overrides(cloud_provider="openstack", os_client_config_file=str(lab_clouds_yaml))


@pytest.fixture
def lab_runtime(lab_settings: Settings) -> Iterator[Runtime]:
    migrate_test_database(lab_settings.database_url)
    rt = Runtime.from_settings(lab_settings)
    set_runtime(rt)
    yield rt
    set_runtime(None)
    rt.db.dispose()


def lab_connection(clouds_yaml: Path, cloud: str = "cloudmgr-lab"):  # type: ignore[no-untyped-def]
    """Plain openstacksdk, for tests that act behind cloudmgr's back (or clean up after it)."""
    import openstack.config
    import openstack.connection

    region = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)]).get_one(cloud=cloud)
    return openstack.connection.Connection(config=region)


LAB_FIXTURES = frozenset({"lab_clouds_yaml", "lab_settings", "lab_runtime"})


# tryfirst: pytest-xdist's own hook reads the xdist_group marks (it suffixes each test's id with its
# group), so the marks are added before it runs.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that reaches the lab carries the ``lab`` marker, so ``-m "not lab"`` and the
    marker's promise (fails, never skips, when the lab is down) hold: an unmarked one stops the run."""
    unmarked = [
        item.nodeid
        for item in items
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("lab") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests that use the lab OpenStack without @pytest.mark.lab:\n  " + "\n  ".join(sorted(unmarked)[:20])
        )
    for item in items:
        if _shares_one_machine_resource(item):
            item.add_marker(pytest.mark.xdist_group(SERIAL_GROUP))


#: Under pytest-xdist (``make test`` runs two workers), the tests that use one thing of which the
#: machine has one: the lab OpenStack (tests stop and restart its services, count its servers)
#: and the network-namespace hosts of tests/runbooks (fixed names and addresses).  They run in
#: one worker, one after the other (``--dist loadgroup``); every other test has its own databases,
#: folders and ports and runs on either worker.
SERIAL_GROUP = "lab-and-hosts"


def _shares_one_machine_resource(item: pytest.Item) -> bool:
    return item.get_closest_marker("lab") is not None or "tests/runbooks/" in item.nodeid
