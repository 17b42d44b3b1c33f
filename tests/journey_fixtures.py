"""Journeys through the self-service flow on the simulated cloud and on the lab OpenStack."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from cloudmgr.catalog.models import CatalogItem
from cloudmgr.catalog.services import read_rates, sync_catalog
from cloudmgr.config import REPO_ROOT
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Role, User
from cloudmgr.organisation.sync import sync_clouds
from cloudmgr.quotas import services as quotas
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.servicerequests.services import RequestForm
from cloudmgr.workqueue.services import Worker
from tests import db_snapshots


@dataclass
class Journey:
    rt: Runtime
    staff: Actor
    head: Actor
    operator: Actor
    finance: Actor
    other_staff: Actor

    def form(
        self, count: int = 3, *, cloud: str = "education", flavor: str = "m1.small", prefix: str = "lic"
    ) -> RequestForm:
        with self.rt.db.unit_of_work() as uow:
            cloud_row = uow.session.scalar(select(Cloud).where(Cloud.key == cloud))
            assert cloud_row is not None
            # Offered items only: a cloud may hold other images (another project's, private), which
            # the catalog lists but never offers.
            items = {
                (i.kind, i.cloud_name): i.id
                for i in uow.session.scalars(
                    select(CatalogItem).where(CatalogItem.cloud_id == cloud_row.id, CatalogItem.offered.is_(True))
                )
            }
        return RequestForm(
            cloud_key=cloud,
            zone="extranet",
            flavor_item_id=items[("flavor", flavor)],
            image_item_id=next(v for (k, _n), v in items.items() if k == "image"),
            count=count,
            name_prefix=prefix,
            justification="licensing system needs servers by Friday",
            expires_on=date.today() + timedelta(days=180),
            application_system="行政许可系统",
        )

    def drain(self) -> int:
        return Worker(self.rt.db, work_handlers()).drain(max_items=200)


@pytest.fixture
def journey(request: pytest.FixtureRequest, seeded: Runtime) -> Journey:
    """The demo province with its clouds and catalog synced and its quotas applied (built once a
    worker: tests/db_snapshots.py)."""
    if not db_snapshots.restored(request, "journey"):
        pristine = db_snapshots.still_pristine(request, seeded)
        assert all(r.ok for r in sync_clouds(seeded.db, seeded.providers, actor=Actor.system("test")))
        sync_catalog(seeded.db, seeded.providers, read_rates(seeded.settings.rates_file), actor=Actor.system("test"))
        assert quotas.apply(seeded.db, seeded.providers, seeded.settings.quotas_dir, actor=Actor.system("test")).ok
        if pristine:
            db_snapshots.keep(request, seeded, "journey")
    with seeded.db.unit_of_work() as uow:
        users = {u.username: Actor.of(u) for u in uow.session.scalars(select(User))}
    return Journey(seeded, users["zhangwei"], users["lina"], users["operator"], users["finance"], users["wangfang"])


# --- the same journey against the lab OpenStack ----------------------------------------------------


@dataclass
class LabJourney(Journey):
    department_key: str = ""
    project_id: str = ""
    clouds_yaml: str = ""

    def nova_servers(self) -> list[Any]:
        from tests.conftest import lab_connection

        conn = lab_connection(Path(self.clouds_yaml))
        return list(conn.compute.servers(all_projects=True, project_id=self.project_id))


def _lab_department_files(tmp: Path, key: str, instances: int) -> tuple[Path, Path]:
    departments = tmp / "departments.yaml"
    departments.write_text(
        yaml.safe_dump(
            {
                "departments": [
                    {
                        "key": key,
                        "name_zh": "实验部门",
                        "name_en": "Lab department",
                        "level": "province",
                        "clouds": ["education"],
                    }
                ]
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    quota_dir = tmp / "quotas"
    quota_dir.mkdir(exist_ok=True)
    (quota_dir / "sizes.yaml").write_text((REPO_ROOT / "quotas" / "sizes.yaml").read_text(encoding="utf-8"))
    (quota_dir / "departments.yaml").write_text(
        yaml.safe_dump({"departments": {key: {"education": {"size": "small", "instances": instances}}}}),
        encoding="utf-8",
    )
    return departments, quota_dir


def build_lab_journey(rt: Runtime, tmp: Path, clouds_yaml: Path, *, instances: int = 3) -> LabJourney:
    """A fresh department (unique per test) on the lab's education cloud, with users, quotas and catalog."""
    key = f"lab{secrets.token_hex(3)}"
    departments_file, quota_dir = _lab_department_files(tmp, key, instances)
    clouds, departments = org.read_organisation(rt.settings.clouds_file, departments_file)
    clouds = [c for c in clouds if c.key == "education"]
    with rt.db.unit_of_work() as uow:
        org.import_organisation(uow.session, clouds, departments, actor=Actor.system("test"))
        users = {}
        for username, role, dept in (
            (f"{key}-staff", Role.DEPT_STAFF, key),
            (f"{key}-head", Role.DEPT_HEAD, key),
            (f"{key}-ops", Role.OPERATOR, None),
            (f"{key}-fin", Role.FINANCE, None),
        ):
            user = org.create_user(
                uow.session,
                username=username,
                password="lab-password-1",
                role=role,
                department_key=dept,
                actor=Actor.system("test"),
            )
            users[role] = Actor.of(user)
    assert all(r.ok for r in sync_clouds(rt.db, rt.providers, actor=Actor.system("test")))
    sync_catalog(rt.db, rt.providers, read_rates(rt.settings.rates_file), actor=Actor.system("test"))
    result = quotas.apply(rt.db, rt.providers, quota_dir, actor=Actor.system("test"))
    assert result.ok, result.problems
    with rt.db.unit_of_work() as uow:
        from cloudmgr.organisation.models import DepartmentCloud

        link = uow.session.scalars(select(DepartmentCloud)).one()
        assert link.project_id
        project_id = link.project_id
    other = Actor("nobody", Role.DEPT_STAFF, department_id=-1)
    return LabJourney(
        rt,
        users[Role.DEPT_STAFF],
        users[Role.DEPT_HEAD],
        users[Role.OPERATOR],
        users[Role.FINANCE],
        other,
        department_key=key,
        project_id=project_id,
        clouds_yaml=str(clouds_yaml),
    )


def clean_lab_department(j: LabJourney) -> None:
    from tests.conftest import lab_connection

    conn = lab_connection(Path(j.clouds_yaml))
    for server in j.nova_servers():
        conn.compute.delete_server(server, ignore_missing=True)
    for server in j.nova_servers():
        conn.compute.wait_for_delete(server, wait=120)
    domain = conn.identity.find_domain(f"dept-{j.department_key}")
    if domain is not None:
        for project in conn.identity.projects(domain_id=domain.id):
            conn.identity.delete_project(project, ignore_missing=True)
        conn.identity.update_domain(domain, is_enabled=False)
        conn.identity.delete_domain(domain, ignore_missing=True)


@pytest.fixture
def lab_journey(lab_runtime: Runtime, tmp_path: Path, lab_clouds_yaml: Path) -> Iterator[LabJourney]:
    j = build_lab_journey(lab_runtime, tmp_path, lab_clouds_yaml)
    yield j
    clean_lab_department(j)
