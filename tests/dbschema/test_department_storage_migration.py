"""Revision 0021: volumes without a request, with a name; quota_counted; the in-between states (issue 16)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade


def _columns(url: str, table: str) -> dict[str, bool]:
    engine = make_engine(url)
    try:
        return {c["name"]: bool(c["nullable"]) for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _check_text(url: str, table: str) -> str:
    engine = make_engine(url)
    try:
        return " ".join(c["sqltext"] for c in inspect(engine).get_check_constraints(table))
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0020")
    volumes = _columns(url, "managed_volumes")
    assert "name" not in volumes and "quota_counted" not in volumes and volumes["request_id"] is False
    assert "attaching" not in _check_text(url, "managed_volumes")
    upgrade(url, "0021")
    volumes = _columns(url, "managed_volumes")
    assert volumes["request_id"] is True and volumes["name"] is True and volumes["quota_counted"] is False
    assert "quota_counted" in _columns(url, "managed_addresses")
    assert {"attaching", "detaching", "extending", "deleting"} <= set(
        _check_text(url, "managed_volumes").replace("'", " ").split()
    )
    assert "releasing" in _check_text(url, "managed_addresses")
    command.downgrade(alembic_config(url), "0020")
    volumes = _columns(url, "managed_volumes")
    assert "name" not in volumes and "quota_counted" not in volumes and volumes["request_id"] is False
    assert "releasing" not in _check_text(url, "managed_addresses")
    upgrade(url)
    assert "name" in _columns(url, "managed_volumes")
