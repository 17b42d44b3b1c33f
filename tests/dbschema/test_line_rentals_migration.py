"""Revision 0027: the departments' line rental and renewal requests and finance's decision (issue 19)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade

TABLE = "network_line_rentals"


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0026")
    assert TABLE not in _tables(url)
    upgrade(url, "0027")
    assert TABLE in _tables(url)
    command.downgrade(alembic_config(url), "0026")
    assert TABLE not in _tables(url)
    upgrade(url)
    assert TABLE in _tables(url)
