"""Revision 0025: the departments' dedicated network lines (issue 19)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade

TABLES = {"network_lines", "network_line_systems", "network_line_rooms"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0024")
    assert not TABLES & _tables(url)
    upgrade(url, "0025")
    assert _tables(url) >= TABLES
    command.downgrade(alembic_config(url), "0024")
    assert not TABLES & _tables(url)
    upgrade(url)
    assert _tables(url) >= TABLES
