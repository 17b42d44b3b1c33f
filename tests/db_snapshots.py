"""Snapshots of the seeded and journey worlds, so each worker builds each one once.

Nearly half the tests start from the demo province (``seeded``: its clouds, departments and
logins) and a third of them from a journey on it (``journey``: clouds synced, catalog synced,
quotas applied on the simulated clouds).  Building a journey costs ~1 s a test and every test
built the same one.  Now the first test of a worker that needs a world builds it as before and
keeps it: the database (a file on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL) and the
instance folder, where the simulated clouds keep their state.  A later test that asks for the
same world starts from a copy of it instead of from the migrated schema.

The same world means the same key: the backend, the settings with the test's own folder taken
out, and the content of every file the seeding reads.  A snapshot is kept only when building it
started from the bare migrated schema (no other fixture had written rows first) and nothing in
it names the building test's folder; otherwise that test simply builds its world as before.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from cloudmgr.config import Settings
from cloudmgr.runtime import Runtime

#: The worlds, innermost first: a test asking for ``journey`` also gets ``seeded``.
LEVELS = ("seeded", "journey")

_RESTORED = pytest.StashKey[str]()
_ROWS = pytest.StashKey[int]()


@dataclass(frozen=True)
class _Snapshot:
    database: str  # a SQLite file or a PostgreSQL database name
    instance: Path  # a copy of the instance folder


_SNAPSHOTS: dict[tuple[str, str], _Snapshot] = {}
_FOLDER: list[Path] = []
#: PostgreSQL snapshot databases made by this process (dropped with the session's database).
POSTGRES_SNAPSHOTS: set[str] = set()


def _folder() -> Path:
    if not _FOLDER:
        folder = Path(tempfile.mkdtemp(prefix="cloudmgr-worlds-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _FOLDER.append(folder)
    return _FOLDER[0]


def _world_key(settings: Settings, level: str) -> str:
    """What decides the world: every setting (the test's own folder replaced by a mark) and
    the content of every file the seeding, the syncs and the quota files read."""
    tmp = str(settings.instance_path.parent)
    digest = hashlib.sha256(level.encode())
    backend = "sqlite" if settings.database_url.startswith("sqlite") else "postgresql"
    digest.update(backend.encode())
    for field in fields(settings):
        if field.name in ("database_url", "secret_key"):  # the secret only signs the web's cookies
            continue
        digest.update(f"{field.name}={getattr(settings, field.name)!r}".replace(tmp, "<tmp>").encode())
    for name in ("clouds_file", "departments_file", "rates_file"):
        path = getattr(settings, name, None)
        if isinstance(path, Path) and path.is_file():
            digest.update(path.read_bytes())
    quotas_dir = getattr(settings, "quotas_dir", None)
    if isinstance(quotas_dir, Path) and quotas_dir.is_dir():
        for path in sorted(quotas_dir.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(quotas_dir)).encode() + path.read_bytes())
    return f"{level}-{digest.hexdigest()[:16]}"


#: Where each world's fixture is defined: a test whose ``journey`` is another module's (tests/moves
#: builds a small organisation under that name) builds its own world, never restored.
_DEFINED_IN = {"seeded": "tests.conftest", "journey": "tests.journey_fixtures"}


def wanted_level(request: pytest.FixtureRequest) -> str | None:
    """The outermost world the test asks for, when it is this suite's own."""
    definitions = request.node._fixtureinfo.name2fixturedefs  # type: ignore[attr-defined]
    for level in reversed(LEVELS):
        chain = definitions.get(level)
        if chain:
            return level if chain[-1].func.__module__ == _DEFINED_IN[level] else None
    return None


def restore(request: pytest.FixtureRequest, settings: Settings) -> bool:
    """Start the test's database and instance folder from its world's snapshot, when this worker
    has one; False when it has none (the caller migrates an empty database as before)."""
    wanted = wanted_level(request)
    if wanted is None:
        return False
    for level in reversed(LEVELS[: LEVELS.index(wanted) + 1]):
        snapshot = _SNAPSHOTS.get((level, _world_key(settings, level)))
        if snapshot is not None:
            break
    else:
        return False
    _copy_in(snapshot, settings)
    request.node.stash[_RESTORED] = level
    return True


def _copy_in(snapshot: _Snapshot, settings: Settings) -> None:
    """The test's database and instance folder made a copy of ``snapshot``."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        copy_sqlite_database(Path(snapshot.database), Path(url.removeprefix("sqlite:///")))
    else:
        recreate_postgres_database(url, make_url(url).database or "", template=snapshot.database)
    shutil.copytree(snapshot.instance, settings.instance_path, dirs_exist_ok=True)


def restore_world(settings: Settings, name: str) -> bool:
    """Start the test's database and instance folder from the world ``name`` (a fixture's own,
    built with :func:`keep_world`), when this worker has it."""
    snapshot = _SNAPSHOTS.get((name, _world_key(settings, name)))
    if snapshot is None:
        return False
    _copy_in(snapshot, settings)
    return True


def keep_world(runtime: Runtime, name: str) -> None:
    """Keep the world a fixture built from a freshly migrated database as ``name``."""
    _keep(runtime, (name, _world_key(runtime.settings, name)))


def restored(request: pytest.FixtureRequest, level: str) -> bool:
    """Whether the test's world already holds ``level`` (restored from a snapshot)."""
    have = request.node.stash.get(_RESTORED, None)
    return have is not None and LEVELS.index(have) >= LEVELS.index(level)


def mark_pristine(request: pytest.FixtureRequest, runtime: Runtime) -> None:
    """Note how many rows the test's database holds as the world's next step starts."""
    request.node.stash[_ROWS] = row_count(runtime)


def still_pristine(request: pytest.FixtureRequest, runtime: Runtime) -> bool:
    """Whether no fixture wrote a row since :func:`mark_pristine` (a snapshot is kept only then)."""
    rows = request.node.stash.get(_ROWS, None)
    return rows is not None and rows == row_count(runtime)


def row_count(runtime: Runtime) -> int:
    """All rows of all tables: the mark that no fixture wrote between two steps."""
    engine = runtime.db.engine
    tables = inspect(engine).get_table_names()
    with engine.connect() as conn:
        return sum(int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()) for t in tables)


def keep(request: pytest.FixtureRequest, runtime: Runtime, level: str) -> None:
    """Keep the world the test just built as ``level``'s snapshot, unless this worker has one."""
    if wanted_level(request) is None:
        return
    _keep(runtime, (level, _world_key(runtime.settings, level)))


def _keep(runtime: Runtime, key: tuple[str, str]) -> None:
    settings = runtime.settings
    if key in _SNAPSHOTS or (_folder() / key[1]).exists():
        return
    folder = _folder() / key[1]
    folder.mkdir()
    runtime.db.dispose()  # the copy needs the database closed (PostgreSQL refuses a template in use)
    instance_copy = folder / "instance"
    shutil.copytree(settings.instance_path, instance_copy, ignore=shutil.ignore_patterns("secret_key"))
    tmp = str(settings.instance_path.parent).encode()
    if any(tmp in p.read_bytes() for p in instance_copy.rglob("*") if p.is_file()):
        return  # the world names the test's own folder: it cannot serve another test
    url = settings.database_url
    if url.startswith("sqlite:///"):
        source = Path(url.removeprefix("sqlite:///"))
        if any(p.name != source.name for p in source.parent.glob(f"{source.name}*")):
            return  # a -wal left open: not a whole copy
        if tmp in source.read_bytes():
            return
        database = str(folder / "world.sqlite3")
        copy_sqlite_database(source, Path(database))
    else:
        test_database = make_url(url).database or ""
        database = f"{test_database}_{key[1].replace('-', '_')}"
        try:
            recreate_postgres_database(url, database, template=test_database)
        except DBAPIError:
            return  # the test's database is still in use (a connection of the test's own): no snapshot
        POSTGRES_SNAPSHOTS.add(database)
    _SNAPSHOTS[key] = _Snapshot(database, instance_copy)


# --- copies of whole databases ------------------------------------------------------------------


def copy_sqlite_database(source: Path, target: Path) -> None:
    """A copy of the SQLite database file ``source`` at ``target``, with its -wal/-shm if any."""
    for path in source.parent.glob(f"{source.name}*"):
        shutil.copy2(path, target.with_name(path.name.replace(source.name, target.name)))


def recreate_postgres_database(server_url: str, target: str, *, template: str | None = None) -> None:
    """``target`` made anew on the PostgreSQL server of ``server_url``: empty, or a copy of
    ``template`` (``CREATE DATABASE … TEMPLATE``: no one may be connected to ``template``)."""
    create = f'CREATE DATABASE "{target}"' + (f' TEMPLATE "{template}"' if template is not None else "")
    admin = create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
            conn.execute(text(create))
    finally:
        admin.dispose()
