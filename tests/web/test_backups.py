"""The volume's snapshots-and-backups page and the API (issue 16): the department acts, another
department's volume is not found, every action comes back as a record the worker then makes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from cloudmgr.catalog.services import read_rates, sync_catalog
from cloudmgr.db import utcnow
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import User
from cloudmgr.organisation.sync import sync_clouds
from cloudmgr.quotas import services as quotas
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.parts import ManagedVolume
from tests.backups.helpers import provision_volume
from tests.conftest import ONE_DATABASE
from tests.journey_fixtures import Journey
from tests.web.helpers import csrf_token, logged_in
from web import create_app


@pytest.fixture
def volume_journey(seeded: Runtime) -> Journey:
    """The self-service journey of tests.journey_fixtures (tests/web has its own ``journey``)."""
    assert all(r.ok for r in sync_clouds(seeded.db, seeded.providers, actor=Actor.system("test")))
    sync_catalog(seeded.db, seeded.providers, read_rates(seeded.settings.rates_file), actor=Actor.system("test"))
    assert quotas.apply(seeded.db, seeded.providers, seeded.settings.quotas_dir, actor=Actor.system("test")).ok
    with seeded.db.unit_of_work() as uow:
        users = {u.username: Actor.of(u) for u in uow.session.scalars(select(User))}
    return Journey(seeded, users["zhangwei"], users["lina"], users["operator"], users["finance"], users["wangfang"])


def _bearer(rt: Runtime, username: str) -> dict[str, str]:
    with rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(
            uow.session, user, name="bk", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        )
    return {"Authorization": f"Bearer {token.token}"}


@ONE_DATABASE
def test_the_page_takes_a_snapshot_and_restores_it_to_a_new_volume(volume_journey: Journey) -> None:
    volume_id = provision_volume(volume_journey)
    app = create_app(runtime=volume_journey.rt)
    client = logged_in(app, "zhangwei")
    with volume_journey.rt.db.unit_of_work() as uow:
        server_id = uow.session.get_one(ManagedVolume, volume_id).server_id
    server_page = client.get(f"/portal/servers/{server_id}").get_data(as_text=True)
    assert f'href="/portal/volumes/{volume_id}/backups"' in server_page
    page = client.get(f"/portal/volumes/{volume_id}/backups")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    token = csrf_token(html)
    answer = client.post(f"/portal/volumes/{volume_id}/snapshots", data={"csrf_token": token})
    assert answer.status_code == 302
    volume_journey.drain()
    api = app.test_client()
    headers = _bearer(volume_journey.rt, "zhangwei")
    listed = api.get(f"/api/v1/volumes/{volume_id}/snapshots", headers=headers).get_json()["items"]
    assert [s["state"] for s in listed] == ["ready"]
    answer = client.post(f"/portal/volumes/{volume_id}/snapshots/{listed[0]['id']}/restore", data={"csrf_token": token})
    assert answer.status_code == 302
    volume_journey.drain()
    assert "已就绪" in client.get(f"/portal/volumes/{volume_id}/backups").get_data(as_text=True)  # "ready"
    schedule = client.post(
        f"/portal/volumes/{volume_id}/backup-schedule",
        data={"csrf_token": token, "frequency": "weekly", "weekday": "6", "hour": "3", "keep": "4", "enabled": "y"},
    )
    assert schedule.status_code == 302
    read = api.get(f"/api/v1/volumes/{volume_id}/backup-schedule", headers=headers).get_json()
    assert (read["frequency"], read["weekday"], read["hour"], read["keep"]) == ("weekly", 6, 3, 4)
    # Another department does not see the volume at all.
    other = logged_in(app, "wangfang")
    assert other.get(f"/portal/volumes/{volume_id}/backups").status_code == 404
    other_token = csrf_token(other.get("/portal/keys").get_data(as_text=True))
    assert other.post(f"/portal/volumes/{volume_id}/backups", data={"csrf_token": other_token}).status_code == 404


@ONE_DATABASE
def test_the_api_backs_up_restores_and_schedules(volume_journey: Journey) -> None:
    volume_id = provision_volume(volume_journey)
    app = create_app(runtime=volume_journey.rt)
    api = app.test_client()
    headers = _bearer(volume_journey.rt, "zhangwei")
    made = api.post(f"/api/v1/volumes/{volume_id}/backups", headers=headers)
    assert made.status_code == 202 and made.get_json()["state"] == "pending"
    volume_journey.drain()
    backup = api.get(f"/api/v1/volumes/{volume_id}/backups", headers=headers).get_json()["items"][0]
    assert backup["state"] == "ready" and backup["schedule_id"] is None
    restored = api.post(f"/api/v1/backups/{backup['id']}/restore", headers=headers)
    assert restored.status_code == 202 and restored.get_json()["size_gb"] == 10
    bad = api.put(
        f"/api/v1/volumes/{volume_id}/backup-schedule",
        headers=headers,
        data=json.dumps({"frequency": "weekly", "hour": 2, "keep": 3}),
        content_type="application/json",
    )
    assert bad.status_code == 400 and bad.get_json()["error"] == "schedule_invalid"
    good = api.put(
        f"/api/v1/volumes/{volume_id}/backup-schedule",
        headers=headers,
        data=json.dumps({"frequency": "daily", "hour": 2, "keep": 3}),
        content_type="application/json",
    )
    assert good.status_code == 200 and good.get_json()["keep"] == 3
    assert api.delete(f"/api/v1/volumes/{volume_id}/backup-schedule", headers=headers).status_code == 204
    assert api.get(f"/api/v1/volumes/{volume_id}/backup-schedule", headers=headers).status_code == 404
    other = _bearer(volume_journey.rt, "wangfang")
    assert api.get(f"/api/v1/volumes/{volume_id}/backups", headers=other).status_code == 404
    assert api.post(f"/api/v1/backups/{backup['id']}/restore", headers=other).status_code == 404
    finance = _bearer(volume_journey.rt, "finance")
    assert api.post(f"/api/v1/volumes/{volume_id}/snapshots", headers=finance).status_code == 403
