"""Fixtures of the production proofs: a runtime on PostgreSQL (the production database)
talking to the lab OpenStack, and what the lab tests check at the end of each run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudmgr.config import Settings, load_settings
from cloudmgr.runtime import Runtime, set_runtime
from tests.conftest import _reset_postgres, migrate_test_database


@pytest.fixture
def pg_lab_settings(tmp_path: Path, postgres_server_url: str, lab_clouds_yaml: Path) -> Settings:
    """PostgreSQL (fails, never skips, without CLOUDMGR_TEST_DATABASE_URL) and the lab cloud."""
    _reset_postgres(postgres_server_url)
    instance = tmp_path / "instance"
    instance.mkdir()
    return load_settings(
        {"CLOUDMGR_ENV": "test"},
        instance_path=instance,
        database_url=postgres_server_url,
        ansible_artifacts_dir=instance / "ansible",
        scheduler_enabled=False,
        cloud_provider="openstack",
        os_client_config_file=str(lab_clouds_yaml),
    )


@pytest.fixture
def pg_lab_runtime(pg_lab_settings: Settings) -> Iterator[Runtime]:
    migrate_test_database(pg_lab_settings.database_url)
    rt = Runtime.from_settings(pg_lab_settings)
    set_runtime(rt)
    yield rt
    set_runtime(None)
    rt.db.dispose()
