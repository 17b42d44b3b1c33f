"""The capacity job against the lab OpenStack: the compute hosts of its two clouds and their usage."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudmgr.capacity.config import read_capacity_file
from cloudmgr.capacity.services import latest_snapshots, take_snapshots
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE

pytestmark = pytest.mark.lab


@ONE_DATABASE
def test_capacity_of_the_lab_from_placement(lab_runtime: Runtime, tmp_path: Path) -> None:
    departments = tmp_path / "departments.yaml"
    departments.write_text("departments: []\n", encoding="utf-8")
    clouds, depts = org.read_organisation(lab_runtime.settings.clouds_file, departments)
    with lab_runtime.db.unit_of_work() as uow:
        org.import_organisation(uow.session, clouds, depts, actor=Actor.system("test"))
    config = read_capacity_file(lab_runtime.settings.capacity_file)
    result = take_snapshots(lab_runtime.db, lab_runtime.providers, config)
    # The lab's two control planes, the province's and the city's (each the clouds.yaml entry
    # of several clouds: one endpoint each), two hosts each.
    assert (result.snapshots, result.hosts, result.problems) == (2, 4, [])
    with lab_runtime.db.unit_of_work() as uow:
        hosts = [h for s in latest_snapshots(uow.session) for h in s.hosts]
    assert sorted(h.name for h in hosts) == ["city-compute1", "city-compute2", "compute1", "compute2"]
    for host in hosts:
        assert host.vcpus_total > 0 and host.ram_mb_total > 0 and host.disk_gb_total > 0
        assert 0 <= host.vcpus_used <= host.vcpus_total


@ONE_DATABASE
def test_a_host_aggregate_puts_its_hosts_in_another_base(
    lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path
) -> None:
    import secrets

    from tests.conftest import lab_connection

    departments = tmp_path / "departments.yaml"
    departments.write_text("departments: []\n", encoding="utf-8")
    clouds, depts = org.read_organisation(lab_runtime.settings.clouds_file, departments)
    with lab_runtime.db.unit_of_work() as uow:
        org.import_organisation(
            uow.session, [c for c in clouds if c.key == "province-base"], depts, actor=Actor.system("test")
        )
    name = f"zb-rack-{secrets.token_hex(3)}"
    capacity_file = tmp_path / "capacity.yaml"
    capacity_file.write_text(
        "bases:\n"
        "  - {key: shijiazhuang, name_zh: 石家庄, name_en: Shijiazhuang, clouds: [province-base]}\n"
        "  - {key: zhangbei, name_zh: 张北, name_en: Zhangbei,\n"
        f"     aggregates: [{{cloud: province-base, name: {name}}}]}}\n"
        "targets: []\n",
        encoding="utf-8",
    )
    conn = lab_connection(lab_clouds_yaml)
    aggregate = conn.compute.create_aggregate(name=name)
    try:
        conn.compute.add_host_to_aggregate(aggregate, "compute2")
        config = read_capacity_file(capacity_file, {"province-base"})
        assert lab_runtime.providers.for_cloud("province-base", "cloudmgr-lab", "RegionOne").list_aggregates()
        result = take_snapshots(lab_runtime.db, lab_runtime.providers, config)
        assert result.hosts == 2
        with lab_runtime.db.unit_of_work() as uow:
            hosts_by_base = {s.base: sorted(h.name for h in s.hosts) for s in latest_snapshots(uow.session)}
        assert hosts_by_base == {"shijiazhuang": ["compute1"], "zhangbei": ["compute2"]}
    finally:
        conn.compute.remove_host_from_aggregate(aggregate, "compute2")
        conn.compute.delete_aggregate(aggregate)
