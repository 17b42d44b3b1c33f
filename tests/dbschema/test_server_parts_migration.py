"""Revision 0019: a server's volumes and public address, and the clouds' external network (issue 16)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade


def _schema(url: str) -> tuple[set[str], set[str]]:
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        return set(inspector.get_table_names()), {c["name"] for c in inspector.get_columns("clouds")}
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0018")
    tables, cloud_columns = _schema(url)
    assert not {"managed_volumes", "managed_addresses"} & tables and "external_network" not in cloud_columns
    upgrade(url, "0019")
    tables, cloud_columns = _schema(url)
    assert {"managed_volumes", "managed_addresses"} <= tables and "external_network" in cloud_columns
    command.downgrade(alembic_config(url), "0018")
    tables, cloud_columns = _schema(url)
    assert not {"managed_volumes", "managed_addresses"} & tables and "external_network" not in cloud_columns
    upgrade(url)
    assert {"managed_volumes", "managed_addresses"} <= _schema(url)[0]
