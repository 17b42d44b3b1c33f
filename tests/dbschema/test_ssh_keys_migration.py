"""Revision 0015: the ssh_keys table comes and goes with its revision, on each backend."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, current_revision, upgrade


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0014")
    assert "ssh_keys" not in _tables(url)
    upgrade(url, "0015")
    assert current_revision(url) == "0015"
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("ssh_keys")}
        assert {("owner_user_id", "name"), ("owner_user_id", "fingerprint")} <= unique
    finally:
        engine.dispose()
    command.downgrade(alembic_config(url), "0014")
    assert "ssh_keys" not in _tables(url)
    upgrade(url)
    assert "ssh_keys" in _tables(url)
