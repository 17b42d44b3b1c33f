"""Revision 0018: a request's SSH key copy, user data, data disks and public address; a request
made before it asked for none of them (issue 16)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade

ADDED = {"ssh_key_name", "ssh_public_key", "ssh_key_fingerprint", "user_data", "data_disks", "public_address"}


def _columns(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns("service_requests")}
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0017")
    assert not ADDED & _columns(url)
    upgrade(url, "0018")
    assert _columns(url) >= ADDED
    engine = make_engine(url)
    try:
        # Server defaults, so the requests made before the revision get no disks and no address.
        defaults = {c["name"]: c["default"] for c in inspect(engine).get_columns("service_requests")}
        assert defaults["public_address"] is not None and "[]" in str(defaults["data_disks"])
    finally:
        engine.dispose()
    command.downgrade(alembic_config(url), "0017")
    assert not ADDED & _columns(url)
    upgrade(url)
    assert _columns(url) >= ADDED
