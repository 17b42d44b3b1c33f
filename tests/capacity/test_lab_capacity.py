"""The capacity job against the lab OpenStack: its two compute hosts and their usage."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudmgr.capacity.config import read_capacity_file
from cloudmgr.capacity.services import latest_snapshots, take_snapshots
from cloudmgr.organisation import services as org
from cloudmgr.runtime import Runtime

pytestmark = pytest.mark.lab


def test_capacity_of_the_lab_from_placement(lab_runtime: Runtime, tmp_path: Path) -> None:
    departments = tmp_path / "departments.yaml"
    departments.write_text("departments: []\n", encoding="utf-8")
    clouds, depts = org.read_organisation(lab_runtime.settings.clouds_file, departments)
    with lab_runtime.db.unit_of_work() as uow:
        org.import_organisation(uow.session, clouds, depts, actor="test")
    config = read_capacity_file(lab_runtime.settings.capacity_file)
    result = take_snapshots(lab_runtime.db, lab_runtime.providers, config)
    # Two clouds.yaml entries reach the one lab control plane: its hosts are counted once.
    assert result.hosts == 2
    assert any("already counted" in p for p in result.problems)
    with lab_runtime.db.unit_of_work() as uow:
        hosts = [h for s in latest_snapshots(uow.session) for h in s.hosts]
    assert sorted(h.name for h in hosts) == ["compute1", "compute2"]
    for host in hosts:
        assert host.vcpus_total > 0 and host.ram_mb_total > 0 and host.disk_gb_total > 0
        assert 0 <= host.vcpus_used <= host.vcpus_total
