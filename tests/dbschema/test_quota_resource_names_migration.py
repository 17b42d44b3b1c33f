"""Revision 0017: the quota ledger's resource column takes ``security_group_rules`` (20
characters) and keeps its constraints, on each backend; the downgrade narrows it again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from cloudmgr.config import Settings
from cloudmgr.db import make_engine
from cloudmgr.dbschema import alembic_config, current_revision, upgrade


def _resource_length(url: str, table: str) -> int:
    engine = make_engine(url)
    try:
        column = next(c for c in inspect(engine).get_columns(table) if c["name"] == "resource")
        return int(column["type"].length)
    finally:
        engine.dispose()


def _ledger_constraints(url: str) -> tuple[set[str], set[tuple[str, ...]]]:
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        checks = {c["name"] for c in inspector.get_check_constraints("quota_ledger")}
        unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("quota_ledger")}
        return checks, unique
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url, "0016")
    assert _resource_length(url, "quota_ledger") == 16
    before = _ledger_constraints(url)
    upgrade(url, "0017")
    assert current_revision(url) == "0017"
    assert _resource_length(url, "quota_ledger") == _resource_length(url, "quota_drifts") == 32
    assert len("security_group_rules") <= 32
    # SQLite's batch mode copies the table: its checks and unique key must come along.
    assert _ledger_constraints(url) == before
    assert {"ck_quota_ledger_reserved_not_negative", "ck_quota_ledger_used_not_negative"} <= before[0]
    assert ("department_id", "cloud_id", "resource") in before[1]
    command.downgrade(alembic_config(url), "0016")
    assert _resource_length(url, "quota_ledger") == _resource_length(url, "quota_drifts") == 16
    upgrade(url)
    assert _resource_length(url, "quota_ledger") == 32
