"""Revision 0022: volume snapshots, backups and backup schedules (issue 16)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade

TABLES = {"volume_snapshot_records", "volume_backup_records", "backup_schedules"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0021")
    assert not TABLES & _tables(url)
    upgrade(url, "0022")
    assert _tables(url) >= TABLES
    command.downgrade(alembic_config(url), "0021")
    assert not TABLES & _tables(url)
    upgrade(url)
    assert _tables(url) >= TABLES
