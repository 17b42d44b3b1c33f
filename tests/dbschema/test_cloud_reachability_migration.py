"""Revision 0030: the table cloud_reachability, each cloud's last success and failure (issue 17)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_adds_the_table_its_rows_go_with_their_cloud_and_downgrade_drops_it(settings: Settings) -> None:
    url = settings.database_url
    before = alembic_config(url)
    down_revision = "0028"  # re-pointed if another revision lands before this one
    upgrade(url, down_revision)
    assert "cloud_reachability" not in _tables(url)
    upgrade(url, "0030")
    engine = make_engine(url)
    try:
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
                    "INSERT INTO cloud_reachability (cloud_id, unreachable_since, failure_kind) "
                    "VALUES (:id, CURRENT_TIMESTAMP, 'refused')"
                ),
                {"id": cloud_id},
            )
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.execute(text("DELETE FROM clouds WHERE key = 'c'"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM cloud_reachability")).scalar_one() == 0
    finally:
        engine.dispose()
    command.downgrade(before, down_revision)
    assert "cloud_reachability" not in _tables(url)
    upgrade(url)
    assert "cloud_reachability" in _tables(url)
