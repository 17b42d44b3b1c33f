"""Revision 0028: users.password_change_required, set by an administrator's password reset (issue 18)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade


def _columns(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns("users")}
    finally:
        engine.dispose()


def test_upgrade_keeps_existing_users_free_and_downgrade_drops_it(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0027")
    assert "password_change_required" not in _columns(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (username, display_name, password_hash, role, active, created_at, "
                    "session_version) VALUES ('old', 'Old', 'x', 'operator', :yes, CURRENT_TIMESTAMP, 0)"
                ),
                {"yes": True},
            )
        upgrade(url, "0028")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT password_change_required FROM users")).scalar_one() in (False, 0)
        command.downgrade(alembic_config(url), "0027")
        assert "password_change_required" not in _columns(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT username FROM users")).scalar_one() == "old"
        upgrade(url)
        assert "password_change_required" in _columns(url)
    finally:
        engine.dispose()
