"""Revision 0026: a dedicated line's planned cut-over date and when it was cut over (issue 19)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade

COLUMNS = {"cutover_date", "cut_over_at"}


def _columns(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns("network_lines")}
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0025")
    assert not COLUMNS & _columns(url)
    upgrade(url, "0026")
    assert _columns(url) >= COLUMNS
    command.downgrade(alembic_config(url), "0025")
    assert not COLUMNS & _columns(url)
    upgrade(url)
    assert _columns(url) >= COLUMNS
