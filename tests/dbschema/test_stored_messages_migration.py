"""Revision 0031: ``messages``, the messages behind a row's stored English texts, on requests,
volumes, addresses and the copies of volumes and servers; a row made before it keeps none, and
its texts are shown as they are (issue 18)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade

TABLES = (
    "service_requests",
    "managed_volumes",
    "managed_addresses",
    "volume_snapshot_records",
    "volume_backup_records",
    "server_snapshot_records",
    "orphan_resources",
)


def _messages_columns(url: str) -> dict[str, dict[str, object]]:
    engine = make_engine(url)
    try:
        found = {}
        for table in TABLES:
            for column in inspect(engine).get_columns(table):
                if column["name"] == "messages":
                    found[table] = dict(column)
        return found
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0030")
    assert _messages_columns(url) == {}
    upgrade(url, "0031")
    columns = _messages_columns(url)
    assert set(columns) == set(TABLES)
    for column in columns.values():
        # A server default, so the rows made before the revision keep no message.
        assert column["nullable"] is False and "{}" in str(column["default"])
    command.downgrade(alembic_config(url), "0030")
    assert _messages_columns(url) == {}
    upgrade(url)
    assert set(_messages_columns(url)) == set(TABLES)
