"""Revision 0031: service_requests.messages, the messages behind a request's stored English
texts; a request made before it keeps none, and its texts are shown as they are (issue 18)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, upgrade


def _columns(url: str) -> dict[str, dict[str, object]]:
    engine = make_engine(url)
    try:
        return {str(c["name"]): dict(c) for c in inspect(engine).get_columns("service_requests")}
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0030")
    assert "messages" not in _columns(url)
    upgrade(url, "0031")
    column = _columns(url)["messages"]
    # A server default, so the requests made before the revision keep no message.
    assert column["nullable"] is False and "{}" in str(column["default"])
    command.downgrade(alembic_config(url), "0030")
    assert "messages" not in _columns(url)
    upgrade(url)
    assert "messages" in _columns(url)
