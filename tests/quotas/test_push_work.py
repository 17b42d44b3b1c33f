"""An approved quota change reaches the cloud through the work queue, from every path, and
is retried while the cloud refuses (issue 15: one side-effect mechanism)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cloudmgr.cloud import CloudUnavailable
from cloudmgr.config import REPO_ROOT
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, DepartmentCloud, Role
from cloudmgr.organisation.sync import sync_clouds
from cloudmgr.quotas import services as quotas
from cloudmgr.quotas.files import read_quota_files
from cloudmgr.quotas.resources import Resource, limits_of
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.workqueue.models import WorkItem, WorkState
from cloudmgr.workqueue.services import Worker
from tests.test_cli import run_in_process


@pytest.fixture
def applied(seeded: Runtime, tmp_path: Path) -> tuple[Runtime, Path]:
    folder = tmp_path / "quotas"
    shutil.copytree(REPO_ROOT / "quotas", folder)
    assert all(r.ok for r in sync_clouds(seeded.db, seeded.providers, actor=Actor.system("test")))
    assert quotas.apply(seeded.db, seeded.providers, folder, actor=Actor.system("test")).ok
    return seeded, folder


def _provider_and_project(rt: Runtime, dept_key: str, cloud_key: str) -> tuple[Any, str]:
    with rt.db.unit_of_work() as uow:
        link = uow.session.scalar(
            select(DepartmentCloud)
            .join(Department)
            .join(Cloud)
            .where(Department.key == dept_key, Cloud.key == cloud_key)
        )
        assert link is not None and link.project_id
        return rt.providers.for_cloud(link.cloud.key, link.cloud.os_cloud, link.cloud.region), link.project_id


def _pending_change(rt: Runtime, folder: Path) -> int:
    with rt.db.unit_of_work() as uow:
        dept = uow.session.scalar(select(Department).where(Department.key == "prov-commerce"))
        assert dept is not None
        change = quotas.request_change(
            uow.session,
            Actor(username="zhangwei", role=Role.DEPT_STAFF, department_id=dept.id),
            read_quota_files(folder),
            cloud_key="commerce",
            reason="licensing system",
            limits={Resource.CORES: 40},
        )
        assert change.state == "pending"
        return change.id


def _push_items(rt: Runtime) -> list[tuple[str, int]]:
    with rt.db.unit_of_work() as uow:
        return [
            (item.state, item.attempts)
            for item in uow.session.scalars(select(WorkItem).where(WorkItem.kind == "quota.push"))
        ]


def test_a_cli_approval_is_pushed_by_the_worker_and_retried_while_the_cloud_refuses(
    applied: tuple[Runtime, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, folder = applied
    change_id = _pending_change(rt, folder)
    provider, project = _provider_and_project(rt, "prov-commerce", "commerce")
    before = limits_of(provider.get_quota(project))[Resource.CORES]

    result = run_in_process(
        rt, "quotas", "decide", str(change_id), "--approve", "--reason", "ok", env={"CLOUDMGR_QUOTAS_DIR": str(folder)}
    )
    assert result.exit_code == 0, result.output
    assert "queued for the cloud" in result.output
    # Decided and committed, nothing sent yet: the push waits in the queue.
    assert _push_items(rt) == [(WorkState.QUEUED.value, 0)]
    assert limits_of(provider.get_quota(project))[Resource.CORES] == before

    # The cloud refuses: the item goes back to the queue with its error, the ledger stays approved.
    provider_class = type(provider)
    real_set_quota = provider_class.set_quota

    def refusing(self: Any, project_id: str, quota: Any) -> None:
        raise CloudUnavailable("nova-api does not answer")

    monkeypatch.setattr(provider_class, "set_quota", refusing)
    assert Worker(rt.db, work_handlers()).drain() == 1
    with rt.db.unit_of_work() as uow:
        item = uow.session.scalar(select(WorkItem).where(WorkItem.kind == "quota.push"))
        assert item is not None
        assert item.state == WorkState.QUEUED.value and "nova-api does not answer" in (item.last_error or "")
        item.run_after = item.created_at  # due again now, instead of after the backoff
    assert limits_of(provider.get_quota(project))[Resource.CORES] == before

    monkeypatch.setattr(provider_class, "set_quota", real_set_quota)
    assert Worker(rt.db, work_handlers()).drain() == 1
    assert _push_items(rt) == [(WorkState.DONE.value, 2)]
    assert limits_of(provider.get_quota(project))[Resource.CORES] == 40


def test_an_automatic_approval_is_queued_in_the_same_transaction(applied: tuple[Runtime, Path]) -> None:
    rt, folder = applied
    with rt.db.unit_of_work() as uow:
        dept = uow.session.scalar(select(Department).where(Department.key == "prov-commerce"))
        assert dept is not None
        change = quotas.request_change(
            uow.session,
            Actor(username="zhangwei", role=Role.DEPT_STAFF, department_id=dept.id),
            read_quota_files(folder),
            cloud_key="commerce",
            reason="one size up",
            target_size="medium",
        )
        assert change.state == "approved"
        uow.session.rollback()  # the approval is undone: so is its push
    assert _push_items(rt) == []
