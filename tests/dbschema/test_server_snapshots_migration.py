"""Revision 0024: server snapshots (issue 16)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade

TABLE = "server_snapshot_records"


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0023")
    assert TABLE not in _tables(url)
    upgrade(url, "0024")
    assert TABLE in _tables(url)
    command.downgrade(alembic_config(url), "0023")
    assert TABLE not in _tables(url)
    upgrade(url)
    assert TABLE in _tables(url)
