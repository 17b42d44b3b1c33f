"""Revision 0032: the mirror of each cloud's servers and its sync state (issue 20)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade

TABLES = {"mirrored_servers", "server_sync_states"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_adds_the_mirror_its_rows_go_with_their_cloud_and_downgrade_drops_it(settings: Settings) -> None:
    url = settings.database_url
    before = alembic_config(url)
    down_revision = "0031"
    upgrade(url, down_revision)
    assert not TABLES & _tables(url)
    upgrade(url, "0032")
    assert _tables(url) >= TABLES
    engine = make_engine(url)
    try:
        indexes = {i["name"] for i in inspect(engine).get_indexes("mirrored_servers")}
        assert {"ix_mirrored_servers_cloud_key", "ix_mirrored_servers_cloud_generation"} <= indexes
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO clouds (key, name_zh, name_en, kind, level, os_cloud, enabled, quota_drift_policy, "
                    "approval_policy) VALUES ('c', 'c', 'c', 'base', 'province', 'c', :yes, 'repair', '{}')"
                ),
                {"yes": True},
            )
            cloud_id = conn.execute(text("SELECT id FROM clouds WHERE key = 'c'")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO mirrored_servers (cloud_id, server_id, name, status, metadata, seen_generation, "
                    "idempotency_key) VALUES (:id, 's1', 'web-1', 'ACTIVE', '{}', 1, 'k1')"
                ),
                {"id": cloud_id},
            )
            conn.execute(
                text(
                    "INSERT INTO server_sync_states (cloud_id, generation, servers, last_listed, last_added, "
                    "last_changed, last_removed, last_unchanged) VALUES (:id, 1, 1, 1, 1, 0, 0, 0)"
                ),
                {"id": cloud_id},
            )
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.execute(text("DELETE FROM clouds WHERE key = 'c'"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM mirrored_servers")).scalar_one() == 0
            assert conn.execute(text("SELECT count(*) FROM server_sync_states")).scalar_one() == 0
    finally:
        engine.dispose()
    command.downgrade(before, down_revision)
    assert not TABLES & _tables(url)
    upgrade(url)
    assert _tables(url) >= TABLES
