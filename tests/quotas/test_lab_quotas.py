"""Quotas as code against the lab OpenStack: apply on three departments and two clouds,
a hand-made change detected and repaired (or alerted), then plan shows no change."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from cloudmgr.config import REPO_ROOT
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.organisation.sync import sync_clouds
from cloudmgr.quotas import services as quotas
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE, lab_connection
from tests.lab_paths import CITY, LAB_CLOUDS

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(3)
DEPARTMENTS = [f"lq{RUN}-edu", f"lq{RUN}-health", f"lq{RUN}-county"]
CLOUDS = ["province-base", "sjz-gov"]


def _department(key: str, name_zh: str, name_en: str, level: str) -> dict[str, object]:
    entry: dict[str, object] = {"key": key, "name_zh": name_zh, "name_en": name_en, "level": level, "clouds": CLOUDS}
    if level == "county":
        entry.update(city="shijiazhuang", county="zhengding")
    return entry


@pytest.fixture
def lab_org(lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path) -> Iterator[tuple[Runtime, Path]]:
    departments_file = tmp_path / "departments.yaml"
    departments_file.write_text(
        yaml.safe_dump(
            {
                "departments": [
                    _department(DEPARTMENTS[0], "测试教育", "Test education", "province"),
                    _department(DEPARTMENTS[1], "测试卫健", "Test health", "province"),
                    _department(DEPARTMENTS[2], "测试县", "Test county", "county"),
                ]
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    quota_dir = tmp_path / "quotas"
    quota_dir.mkdir()
    (quota_dir / "sizes.yaml").write_text((REPO_ROOT / "quotas" / "sizes.yaml").read_text(encoding="utf-8"))
    (quota_dir / "departments.yaml").write_text(
        yaml.safe_dump(
            {
                "departments": {
                    DEPARTMENTS[0]: {"province-base": "medium", "sjz-gov": "small"},
                    DEPARTMENTS[1]: {"province-base": "small", "sjz-gov": {"size": "small", "cores": 12}},
                    DEPARTMENTS[2]: {"province-base": "small", "sjz-gov": "small"},
                }
            }
        )
    )
    clouds, departments = org.read_organisation(lab_runtime.settings.clouds_file, departments_file)
    clouds = [c for c in clouds if c.key in CLOUDS]
    with lab_runtime.db.unit_of_work() as uow:
        org.import_organisation(uow.session, clouds, departments, actor=Actor.system("test"))
    results = sync_clouds(lab_runtime.db, lab_runtime.providers, actor=Actor.system("test"))
    assert all(r.ok for r in results), [r.problems for r in results]
    yield lab_runtime, quota_dir
    for lab_cloud in LAB_CLOUDS:  # province-base's and sjz-gov's: each its own Keystone
        conn = lab_connection(lab_clouds_yaml, lab_cloud)
        for dept in DEPARTMENTS:
            domain = conn.identity.find_domain(f"dept-{dept}")
            if domain is None:
                continue
            for project in conn.identity.projects(domain_id=domain.id):
                conn.identity.delete_project(project, ignore_missing=True)
            conn.identity.update_domain(domain, is_enabled=False)
            conn.identity.delete_domain(domain, ignore_missing=True)


def _project_id(rt: Runtime, dept: str, cloud: str) -> str:
    from cloudmgr.organisation.models import Department, DepartmentCloud

    with rt.db.unit_of_work() as uow:
        link = uow.session.scalar(
            select(DepartmentCloud).join(Department).join(Cloud).where(Department.key == dept, Cloud.key == cloud)
        )
        assert link is not None and link.project_id
        return link.project_id


@pytest.mark.parametrize("policy", ["repair", "alert"])
@ONE_DATABASE
def test_apply_drift_and_plan_against_the_lab(
    lab_org: tuple[Runtime, Path], lab_clouds_yaml: Path, policy: str
) -> None:
    rt, quota_dir = lab_org
    result = quotas.apply(rt.db, rt.providers, quota_dir, actor=Actor.system("test"))
    assert result.ok, result.problems
    assert len(result.cloud_changed) == 6  # three departments on two clouds

    conn = lab_connection(lab_clouds_yaml, CITY)  # sjz-gov is on the lab's city OpenStack
    project = _project_id(rt, DEPARTMENTS[1], "sjz-gov")
    nova = conn.compute.get_quota_set(project)
    assert (nova.cores, nova.instances, nova.ram) == (12, 8, 32 * 1024)
    neutron = conn.network.get_quota(project)
    assert (neutron.networks, neutron.floating_ips) == (2, 2)
    assert (neutron.security_groups, neutron.security_group_rules) == (10, 100)
    cinder = conn.block_storage.get_quota_set(project)
    assert (cinder.volumes, cinder.gigabytes, cinder.snapshots, cinder.backups) == (8, 500, 8, 8)

    # Someone changes the quota by hand, behind cloudmgr's back.
    with rt.db.unit_of_work() as uow:
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == "sjz-gov"))
        assert cloud is not None
        cloud.quota_drift_policy = policy
    conn.compute.update_quota_set(project, cores=40)
    conn.block_storage.update_quota_set(project, gigabytes=999)
    found = quotas.reconcile(rt.db, rt.providers)
    assert found.problems == []
    assert sorted(d for d in found.drifts if DEPARTMENTS[1] in d) == [
        f"{DEPARTMENTS[1]} on sjz-gov: cores is 40 on the cloud, ledger says 12",
        f"{DEPARTMENTS[1]} on sjz-gov: volume_gb is 999 on the cloud, ledger says 500",
    ]
    cores_now = conn.compute.get_quota_set(project).cores
    gigabytes_now = conn.block_storage.get_quota_set(project).gigabytes
    with rt.db.unit_of_work() as uow:
        open_drifts = quotas.open_drifts(uow.session)
    if policy == "repair":
        assert (cores_now, gigabytes_now) == (12, 500) and open_drifts == []
    else:
        assert (cores_now, gigabytes_now) == (40, 999)
        assert sorted((d.resource, d.found) for d in open_drifts) == [("cores", 40), ("volume_gb", 999)]
        # An operator repairs it by applying the files.
        assert quotas.apply(rt.db, rt.providers, quota_dir, actor=Actor.system("test")).ok
        assert conn.compute.get_quota_set(project).cores == 12
        assert conn.block_storage.get_quota_set(project).gigabytes == 500
        quotas.reconcile(rt.db, rt.providers)

    with rt.db.unit_of_work() as uow:
        lines = quotas.plan(uow.session, quotas.load_and_check(uow.session, quota_dir))
        quotas.read_clouds(rt.providers, lines)
        mine = [line for line in lines if line.department in DEPARTMENTS]
        assert len(mine) == 6 and all(line.cloud_error is None for line in mine)
        assert not any(line.changes_anything for line in mine)
        assert quotas.open_drifts(uow.session) == []
