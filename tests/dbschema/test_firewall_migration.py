"""Revision 0016: the firewall tables and departments.admin_cidr come and go with their revision, on each backend."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, current_revision, upgrade

TABLES = {"firewall_templates", "firewall_template_rules", "request_firewall_templates", "request_firewall_rules"}


def _schema(url: str) -> tuple[set[str], set[str]]:
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        return set(inspector.get_table_names()), {c["name"] for c in inspector.get_columns("departments")}
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0015")
    tables, columns = _schema(url)
    assert not TABLES & tables and "admin_cidr" not in columns
    upgrade(url, "0016")
    assert current_revision(url) == "0016"
    tables, columns = _schema(url)
    assert tables >= TABLES and "admin_cidr" in columns
    engine = make_engine(url)
    try:
        checks = {c["name"] for c in inspect(engine).get_check_constraints("firewall_template_rules")}
        assert "ck_firewall_template_rules_port_range_valid" in checks
    finally:
        engine.dispose()
    command.downgrade(alembic_config(url), "0015")
    tables, columns = _schema(url)
    assert not TABLES & tables and "admin_cidr" not in columns
    upgrade(url)
    assert _schema(url)[0] >= TABLES
