"""The clouds, departments and quota-files pages say which file each comes from, and "sync now"
runs what the CLI runs: imports in the request, cloud calls through the worker (issue 18)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.organisation import services as org
from cloudmgr.organisation.models import Department
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.workqueue.models import WorkItem
from cloudmgr.workqueue.services import Worker
from tests.web.helpers import csrf_token, logged_in


def _admin(app: Flask) -> FlaskClient:
    client = logged_in(app, "admin")
    client.get("/language/en")
    return client


def _sync(client: FlaskClient, page: str, action: str) -> object:
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token})


def _items(seeded: Runtime, kind: str) -> list[tuple[str, str | None]]:
    with seeded.db.unit_of_work() as uow:
        return [(i.state, i.last_error) for i in uow.session.scalars(select(WorkItem).where(WorkItem.kind == kind))]


def test_each_page_names_its_files(app: Flask, seeded: Runtime) -> None:
    admin = _admin(app)
    settings = seeded.settings
    clouds = admin.get("/admin/clouds").get_data(as_text=True)
    assert str(settings.clouds_file) in clouds and str(settings.departments_file) in clouds and "Sync now" in clouds
    departments = admin.get("/admin/departments").get_data(as_text=True)
    assert str(settings.departments_file) in departments and "/admin/departments/sync" in departments
    quota_page = admin.get("/admin/quotas")
    assert quota_page.status_code == 200
    html = quota_page.get_data(as_text=True)
    assert str(settings.quotas_dir) in html and "/admin/quotas/apply" in html and "department quotas" in html
    # Chinese pages render too.
    chinese = logged_in(app, "admin")
    for path in ("/admin/clouds", "/admin/departments", "/admin/quotas"):
        assert chinese.get(path).status_code == 200


def test_departments_sync_imports_the_files_now(app: Flask, seeded: Runtime) -> None:
    admin = _admin(app)
    response = _sync(admin, "/admin/departments", "/admin/departments/sync")
    assert response.status_code == 302  # type: ignore[attr-defined]
    page = admin.get("/admin/departments").get_data(as_text=True)
    assert "Imported" in page and "(0 new)" in page
    with seeded.db.unit_of_work() as uow:
        events = uow.session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action == "organisation.import", AuditEvent.actor == "admin"
            )
        )
    assert events == 1
    assert _items(seeded, org.CLOUDS_SYNC_WORK) == []  # importing departments calls no cloud


def test_a_bad_departments_file_changes_nothing_and_says_why(app: Flask, seeded: Runtime, tmp_path: Path) -> None:
    bad = tmp_path / "departments.yaml"
    shutil.copy(seeded.settings.departments_file, bad)
    bad.write_text(
        bad.read_text(encoding="utf-8") + "\n  - key: broken\n    clouds: [no-such-cloud]\n", encoding="utf-8"
    )
    seeded.settings = dataclasses.replace(seeded.settings, departments_file=bad)
    with seeded.db.unit_of_work() as uow:
        before = uow.session.scalar(select(func.count(Department.id)))
    admin = _admin(app)
    response = _sync(admin, "/admin/departments", "/admin/departments/sync")
    assert response.status_code == 400  # type: ignore[attr-defined]
    html = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "The files have problems: nothing was changed" in html and str(bad) in html
    with seeded.db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count(Department.id))) == before


def test_clouds_sync_imports_now_and_the_worker_syncs_the_clouds(app: Flask, seeded: Runtime) -> None:
    admin = _admin(app)
    assert _sync(admin, "/admin/clouds", "/admin/clouds/sync").status_code == 302  # type: ignore[attr-defined]
    assert _sync(admin, "/admin/clouds", "/admin/clouds/sync").status_code == 302  # type: ignore[attr-defined]
    assert _items(seeded, org.CLOUDS_SYNC_WORK) == [("queued", None)]  # asked twice: one sync queued
    queued = admin.get("/admin/clouds").get_data(as_text=True)
    assert "being synced in the background" in queued and "Queued" in queued
    Worker(seeded.db, work_handlers()).drain(max_items=5)
    assert _items(seeded, org.CLOUDS_SYNC_WORK) == [("done", None)]
    html = admin.get("/admin/clouds").get_data(as_text=True)
    with seeded.db.unit_of_work() as uow:
        count = len(org.list_clouds(uow.session))
        assert all(cloud.synced_at is not None for cloud in org.list_clouds(uow.session))
    assert f"{count} of {count} clouds synced" in html


def test_quota_files_are_checked_now_and_applied_by_the_worker(app: Flask, seeded: Runtime) -> None:
    admin = _admin(app)
    response = _sync(admin, "/admin/quotas", "/admin/quotas/apply")
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert "being applied to the ledger and the clouds" in admin.get("/admin/quotas").get_data(as_text=True)
    assert _items(seeded, "quotas.apply") == [("queued", None)]
    Worker(seeded.db, work_handlers()).drain(max_items=5)
    [(state, _error)] = _items(seeded, "quotas.apply")
    html = admin.get("/admin/quotas").get_data(as_text=True)
    with seeded.db.unit_of_work() as uow:
        [event] = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "quotas.apply")).all()
        detail = dict(event.detail)
    assert event.actor == "admin"
    assert f"{detail['ledger_changed']} department quotas changed in the ledger" in html
    assert state == ("done" if not detail["problems"] else "failed")


def test_bad_quota_files_are_refused_before_anything_is_queued(app: Flask, seeded: Runtime, tmp_path: Path) -> None:
    folder = tmp_path / "quotas"
    shutil.copytree(seeded.settings.quotas_dir, folder)
    (folder / "sizes.yaml").write_text("sizes: [not, a, mapping]\n", encoding="utf-8")
    seeded.settings = dataclasses.replace(seeded.settings, quotas_dir=folder)
    admin = _admin(app)
    assert "The files have problems" in admin.get("/admin/quotas").get_data(as_text=True)
    response = _sync(admin, "/admin/quotas", "/admin/quotas/apply")
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "sizes.yaml" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert _items(seeded, "quotas.apply") == []


def test_sync_needs_csrf(app: Flask, seeded: Runtime) -> None:
    admin = _admin(app)
    for path in ("/admin/clouds/sync", "/admin/departments/sync", "/admin/quotas/apply"):
        assert admin.post(path, data={}).status_code == 400
    assert _items(seeded, org.CLOUDS_SYNC_WORK) == [] and _items(seeded, "quotas.apply") == []


def _bearer(seeded: Runtime, username: str = "admin") -> dict[str, str]:
    from datetime import timedelta

    from cloudmgr.db import utcnow
    from cloudmgr.organisation.actor import Actor

    with seeded.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(
            uow.session, user, name="t", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        )
    return {"Authorization": f"Bearer {token.token}"}


def test_api_imports_the_organisation_and_queues_the_syncs(app: Flask, seeded: Runtime) -> None:
    client, headers = app.test_client(), _bearer(seeded)
    plain = client.post("/api/v1/organisation/import", headers=headers)
    assert plain.status_code == 200, plain.get_json()
    assert plain.get_json()["sync_work_item"] is None and plain.get_json()["clouds_added"] == 0
    synced = client.post("/api/v1/organisation/import", json={"sync_clouds": True}, headers=headers)
    assert isinstance(synced.get_json()["sync_work_item"], int)
    applied = client.post("/api/v1/quotas/apply", headers=headers)
    assert applied.status_code == 200 and isinstance(applied.get_json()["work_item"], int)
    assert _items(seeded, org.CLOUDS_SYNC_WORK) == [("queued", None)]
    assert _items(seeded, "quotas.apply") == [("queued", None)]
    refused = client.post("/api/v1/quotas/apply", headers=_bearer(seeded, "operator"))
    assert refused.status_code == 403
