"""Revision 0020: a kept volume names no server (managed_volumes.server_id nullable) (issue 16)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade


def _server_id_nullable(url: str) -> bool:
    engine = make_engine(url)
    try:
        columns = {c["name"]: c for c in inspect(engine).get_columns("managed_volumes")}
        return bool(columns["server_id"]["nullable"])
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0019")
    assert not _server_id_nullable(url)
    upgrade(url, "0020")
    assert _server_id_nullable(url)
    command.downgrade(alembic_config(url), "0019")
    assert not _server_id_nullable(url)
    upgrade(url)
    assert _server_id_nullable(url)
