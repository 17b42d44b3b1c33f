"""Revision 0023: orphaned volumes and floating IPs, and an address's own department and cloud (issue 16)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade


def _schema(url: str) -> tuple[set[str], dict[str, bool]]:
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        columns = {c["name"]: bool(c["nullable"]) for c in inspector.get_columns("managed_addresses")}
        return set(inspector.get_table_names()), columns
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0022")
    tables, address_columns = _schema(url)
    assert "orphan_resources" not in tables and "department_id" not in address_columns
    assert address_columns["server_id"] is False
    upgrade(url, "0023")
    tables, address_columns = _schema(url)
    assert "orphan_resources" in tables and {"department_id", "cloud_id"} <= set(address_columns)
    assert address_columns["server_id"] is True
    command.downgrade(alembic_config(url), "0022")
    tables, address_columns = _schema(url)
    assert "orphan_resources" not in tables and "department_id" not in address_columns
    assert address_columns["server_id"] is False
    upgrade(url)
    assert "orphan_resources" in _schema(url)[0]
