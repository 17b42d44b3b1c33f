"""Fixtures for the moves tests: a department's running server on the simulated clouds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from cloudmgr.catalog.services import read_rates, sync_catalog
from cloudmgr.cloud import CloudProvider
from cloudmgr.config import REPO_ROOT
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Role
from cloudmgr.organisation.sync import sync_clouds
from cloudmgr.quotas import services as quotas
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ManagedServer
from tests.journey_fixtures import Journey


def provider_of(j: Journey, cloud_key: str) -> CloudProvider:
    with j.rt.db.unit_of_work() as uow:
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == cloud_key))
        assert cloud is not None
        return j.rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)


def provision(j: Journey, count: int = 1, *, prefix: str = "mv", flavor: str = "m1.small") -> list[ManagedServer]:
    """Servers of prov-education on the education cloud, through the self-service flow."""
    with j.rt.db.unit_of_work() as uow:
        request = requests_service.create_request(
            uow.session,
            j.staff,
            j.form(count, prefix=prefix, flavor=flavor),
            submit=True,
            settings=j.rt.settings,  # type: ignore[arg-type]
        )
        request_id = request.id
    for actor in (j.head, j.operator):
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actor, request_id, reason="ok")
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        servers = list(
            uow.session.scalars(
                select(ManagedServer).where(ManagedServer.request_id == request_id).order_by(ManagedServer.index)
            )
        )
    assert all(s.state == "active" and s.server_id for s in servers), [(s.state, s.fault) for s in servers]
    return servers


MOVES_CLOUDS = ("education", "province-base", "sjz-gov")


def build_moves_org(
    rt: Runtime,
    tmp: Path,
    *,
    department: str = "prov-education",
    clouds: tuple[str, ...] = ("education", "province-base"),
) -> Journey:
    """A small organisation: one department on ``clouds`` (the other clouds of
    MOVES_CLOUDS exist, without a project of theirs), with its logins, catalog and quotas.
    Much quicker than the whole demo organisation.  A department key not in the demo
    files is made up (the lab tests use a unique one per test)."""
    all_clouds, departments = org.read_organisation(rt.settings.clouds_file, rt.settings.departments_file)
    all_clouds = [c for c in all_clouds if c.key in MOVES_CLOUDS]
    template = next(d for d in departments if d.key == "prov-education")
    entry = dataclasses.replace(template, key=department, clouds=clouds)
    if department != template.key:
        entry = dataclasses.replace(entry, name_zh=f"搬迁测试 {department}", name_en=f"Moves test {department}")
    quota_dir = tmp / "quotas"
    quota_dir.mkdir()
    (quota_dir / "sizes.yaml").write_text((REPO_ROOT / "quotas" / "sizes.yaml").read_text(encoding="utf-8"))
    (quota_dir / "departments.yaml").write_text(
        yaml.safe_dump({"departments": {department: dict.fromkeys(clouds, "small")}}), encoding="utf-8"
    )
    users = {}
    with rt.db.unit_of_work() as uow:
        org.import_organisation(uow.session, all_clouds, [entry], actor=Actor.system("test"))
        for username, role, dept in (
            ("zhangwei", Role.DEPT_STAFF, department),
            ("lina", Role.DEPT_HEAD, department),
            ("operator", Role.OPERATOR, None),
            ("finance", Role.FINANCE, None),
        ):
            user = org.create_user(
                uow.session, username=username, password="moves-password-1", role=role, department_key=dept,
                actor=Actor.system("test"),
            )  # fmt: skip
            users[role] = Actor.of(user)
    assert all(r.ok for r in sync_clouds(rt.db, rt.providers, actor=Actor.system("test")))
    sync_catalog(rt.db, rt.providers, read_rates(rt.settings.rates_file), actor=Actor.system("test"))
    result = quotas.apply(rt.db, rt.providers, quota_dir, actor=Actor("test", Role.OPERATOR))
    assert result.ok, result.problems
    other = Actor("nobody", Role.DEPT_STAFF, department_id=-1)
    return Journey(rt, users[Role.DEPT_STAFF], users[Role.DEPT_HEAD], users[Role.OPERATOR], users[Role.FINANCE], other)


@pytest.fixture
def journey(runtime: Runtime, tmp_path: Path) -> Journey:
    """Overrides the demo-wide journey of tests/journey_fixtures.py with the small organisation."""
    return build_moves_org(runtime, tmp_path)
