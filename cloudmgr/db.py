"""Database engine, declarative base and the unit of work.

One unit of work per web request or job: it opens one session, commits once at its
boundary, and only then runs the side effects queued with :meth:`UnitOfWork.after_commit`
(cloud calls, Ansible runs, scheduler kicks), so nothing leaves the process for a
transaction that rolled back.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import CheckConstraint, DateTime, Engine, MetaData, String, create_engine, event, insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


E = TypeVar("E", bound=enum.StrEnum)


class StrEnumType(TypeDecorator[E], Generic[E]):
    """A :class:`enum.StrEnum` stored as its value in a VARCHAR; loaded back as the member.

    The stored strings are the enum's values, so typing a column with it rewrites no data;
    :func:`enum_check` adds the CHECK constraint that refuses any other string.  Unlike
    ``sqlalchemy.Enum(validate_strings=True)``, a comparison with a string that is no value
    (a hostile ``?state=`` filter) is sent as it is and matches nothing instead of raising.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum_cls: type[E], length: int) -> None:
        super().__init__(length)
        self.enum_cls = enum_cls

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        try:
            return self.enum_cls(value).value
        except ValueError:
            return str(value)  # a filter matches nothing; a write is refused by the CHECK constraint

    def process_result_value(self, value: Any, dialect: Any) -> E | None:
        return None if value is None else self.enum_cls(value)

    @property
    def python_type(self) -> type[E]:
        return self.enum_cls


def enum_check(column: str, enum_cls: type[enum.StrEnum]) -> CheckConstraint:
    """``CHECK (column IN (…values…))``, named ``ck_<table>_<column>_valid``."""
    values = ", ".join(f"'{member.value}'" for member in enum_cls)
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_valid")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine with the per-backend settings cloudmgr relies on."""
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if url in {"sqlite://", "sqlite:///:memory:"}:
            kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        _configure_sqlite(engine)
    else:
        _ping_after_idle(engine)
    return engine


# A pooled connection that sat idle this long is pinged before use (see _ping_after_idle).
IDLE_PING_SECONDS = 10.0


def _ping_after_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it has been idle a while.

    ``pool_pre_ping`` pings on every checkout: one more round trip for every request and
    job, while a connection that served a request a moment ago is as good as certain to be
    alive.  A connection idle for longer (a database restart, a firewall dropping quiet
    sessions) is pinged, and a dead one is replaced before the caller sees it; one that dies
    while in use is an error SQLAlchemy recognises as a disconnect, and it then replaces
    every connection of the pool.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # whatever the driver raises for a dead socket
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc
        if not alive:
            raise DisconnectionError("pooled connection failed its ping")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, open transactions so BEGIN IMMEDIATE works.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            # No transaction on purpose: a migration's PRAGMA foreign_keys, which SQLite
            # ignores inside one (see dbschema/versions/0014).
            return
        # SQLite has no row locks: take the database write lock at BEGIN, so a
        # read-then-write inside one unit of work can never interleave with another
        # writer ("check then write" races are impossible, not just unlikely).
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# --- rows that outlive a rollback, and rows that are never changed ---------------------------------

_SURVIVE_ROLLBACK = "cloudmgr.db.rows_that_survive_rollback"
ModelT = TypeVar("ModelT", bound="Base")


def add_surviving_rollback(session: Session, model: type[ModelT], values: dict[str, Any]) -> ModelT:
    """Add a ``model`` row built from ``values`` to ``session``, kept even if the caller rolls back.

    For the record of a refusal: the refused action's transaction usually rolls back (the error
    propagates out of its unit of work, or the web layer discards a 4xx request's writes), and
    the record must not go with it.  When the transaction commits, the row commits with it; when
    it rolls back, the row is inserted again in a transaction of its own, once the caller's has
    ended and released its connection (so it never nests inside it, nor waits on SQLite's one
    write lock).  Only sessions of a :class:`Database` do this."""
    row = model(**values)
    session.add(row)
    session.info.setdefault(_SURVIVE_ROLLBACK, []).append((row, model, dict(values)))
    return row


def _write_rows_lost_to_rollback(session: Session, transaction: Any) -> None:
    if transaction.parent is not None:
        return
    pending = session.info.pop(_SURVIVE_ROLLBACK, None)
    if not pending:
        return
    lost = [(model, values) for row, model, values in pending if not sa_inspect(row).has_identity]
    if not lost:
        return  # committed with the caller's transaction
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    for model, values in lost:
        try:
            with engine.begin() as conn:
                conn.execute(insert(model).values(**values))
        except Exception:  # never hide the caller's own error behind this one
            log.exception("could not write a %s row that must survive a rollback: %s", model.__name__, values)


def _refuse_changes_to_append_only_rows(session: Session, _context: Any, _instances: Any) -> None:
    """Models with ``__append_only__`` (the error class to raise) are inserted, never changed or deleted."""
    for obj in list(session.dirty) + list(session.deleted):
        error = getattr(type(obj), "__append_only__", None)
        if error is not None:
            raise error(f"{type(obj).__name__} rows cannot be changed or deleted")


class Database:
    """An engine plus its session factory; one per process.

    Its sessions, and only they, keep append-only rows unchanged and write rows added with
    :func:`add_surviving_rollback` even when their transaction rolls back."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self.session_factory, "before_flush", _refuse_changes_to_append_only_rows)
        event.listen(self.session_factory, "after_transaction_end", _write_rows_lost_to_rollback)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    def dispose(self) -> None:
        self.engine.dispose()


# How many units of work the current thread has open: a write that may not wait on the
# thread's own transaction (SQLite has one write lock) is put off while one is.
_open_units = threading.local()


def unit_of_work_open() -> bool:
    """Whether the current thread is inside a unit of work (of any Database)."""
    return bool(getattr(_open_units, "depth", 0))


class UnitOfWork:
    """One session, one commit, then the side effects."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._session: Session | None = None
        self._after_commit: list[Callable[[], None]] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("unit of work is not open")
        return self._session

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` only once the transaction has committed."""
        self._after_commit.append(action)

    def __enter__(self) -> UnitOfWork:
        self._session = self._session_factory()
        _open_units.depth = getattr(_open_units, "depth", 0) + 1
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        session = self.session
        try:
            if exc_type is None:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()
            self._session = None
            _open_units.depth = max(getattr(_open_units, "depth", 1) - 1, 0)
        if exc_type is None:
            self._run_after_commit()

    def _run_after_commit(self) -> None:
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            try:
                action()
            except Exception:  # a failed side effect must not undo a committed change
                log.exception("after-commit action %r failed", action)


@contextmanager
def unit_of_work(db: Database) -> Iterator[UnitOfWork]:
    with db.unit_of_work() as uow:
        yield uow
