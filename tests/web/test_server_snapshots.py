"""A server's snapshots on its page and through the API, and deleting a volume's copies (issue 16):
the department takes, restores (after the confirmation page) and deletes; bad input and the wrong
state come back on the page under the field, and as a 4xx JSON from the API; another department
sees none of it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask import Flask
from flask_babel import force_locale, gettext
from markupsafe import escape
from sqlalchemy import select

from cloudmgr.backups import services as backups
from cloudmgr.catalog.services import read_rates, sync_catalog
from cloudmgr.db import utcnow
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import User
from cloudmgr.organisation.sync import sync_clouds
from cloudmgr.quotas import services as quotas
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ManagedServer
from tests.backups.helpers import provision_volume, simulator
from tests.conftest import ONE_DATABASE
from tests.journey_fixtures import Journey
from tests.storage.helpers import active_server, balance
from tests.web.helpers import csrf_token, logged_in
from web import create_app
from web.common.labels import server_state_label


@pytest.fixture
def server_journey(seeded: Runtime) -> Journey:
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
            uow.session, user, name="ss", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        )
    return {"Authorization": f"Bearer {token.token}", "Content-Type": "application/json"}


def _zh(app: Flask, message: str, **params: object) -> str:
    """``message`` as the Chinese catalog has it."""
    with app.test_request_context("/"), force_locale("zh"):
        return str(gettext(message, **params))


def _shows(html: str, text: str) -> bool:
    """Whether the page shows ``text``, written as it is (a template's own message) or escaped
    (a message a view passed in)."""
    return text in html or str(escape(text)) in html


def _server_name(j: Journey, server_row_id: int) -> str:
    with j.rt.db.unit_of_work() as uow:
        return uow.session.get_one(ManagedServer, server_row_id).name


@ONE_DATABASE
def test_the_server_page_takes_restores_and_deletes_a_snapshot(server_journey: Journey) -> None:
    j = server_journey
    server_id = active_server(j)
    name = _server_name(j, server_id)
    app = create_app(runtime=j.rt)
    client = logged_in(app, "zhangwei")
    page = client.get(f"/portal/servers/{server_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-testid="server-snapshots"' in html
    token = csrf_token(html)
    taken = client.post(
        f"/portal/servers/{server_id}/snapshots", data={"csrf_token": token, "name": "before the upgrade"}
    )
    assert taken.status_code == 302
    j.drain()
    html = client.get(f"/portal/servers/{server_id}").get_data(as_text=True)
    with j.rt.db.unit_of_work() as uow:
        (record,) = backups.list_server_snapshots(uow.session, j.staff, server_id)
        snapshot_id = record.id
    assert "before the upgrade" in html and _shows(html, _zh(app, "ready"))
    restore_url = f"/portal/servers/{server_id}/snapshots/{snapshot_id}/restore"
    assert f'href="{restore_url}"' in html
    # The confirmation says the root disk is replaced, and asks for the server's name.
    confirm = client.get(restore_url)
    confirm_html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and 'data-testid="restore-warning"' in confirm_html
    assert _shows(confirm_html, _zh(app, "The server's root disk will be replaced"))
    wrong = client.post(restore_url, data={"csrf_token": token, "confirm": "not the name"})
    assert wrong.status_code == 400
    expected = _zh(
        app,
        "Type the server's name (%(server)s) to confirm that its root disk is replaced by the snapshot's.",
        server=name,
    )
    assert _shows(wrong.get_data(as_text=True), expected)
    restored = client.post(restore_url, data={"csrf_token": token, "confirm": name})
    assert restored.status_code == 302 and restored.headers["Location"].endswith(f"/portal/servers/{server_id}")
    j.drain()
    html = client.get(f"/portal/servers/{server_id}").get_data(as_text=True)
    assert _shows(html, _zh(app, "restored"))
    before = balance(j, Resource.SNAPSHOTS)
    deleted = client.post(f"/portal/servers/{server_id}/snapshots/{snapshot_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 302
    j.drain()
    assert balance(j, Resource.SNAPSHOTS) == (before[0] - 1, before[1])
    assert f'data-testid="server-snapshot-{snapshot_id}"' not in client.get(f"/portal/servers/{server_id}").get_data(
        as_text=True
    )


@ONE_DATABASE
def test_bad_input_comes_back_in_chinese_under_the_field(server_journey: Journey) -> None:
    j = server_journey
    server_id = active_server(j)
    app = create_app(runtime=j.rt)
    client = logged_in(app, "zhangwei")
    token = csrf_token(client.get(f"/portal/servers/{server_id}").get_data(as_text=True))
    too_long = client.post(f"/portal/servers/{server_id}/snapshots", data={"csrf_token": token, "name": "x" * 65})
    assert too_long.status_code == 400
    html = too_long.get_data(as_text=True)
    assert _shows(
        html, _zh(app, "Give the snapshot a name of 1 to %(max)s characters, without control characters.", max=64)
    )
    assert 'class="field-error"' in html
    # In English on request.
    client.get("/language/en")
    empty = client.post(f"/portal/servers/{server_id}/snapshots", data={"csrf_token": token, "name": ""})
    assert empty.status_code == 400
    assert "Give the snapshot a name of 1 to 64 characters" in empty.get_data(as_text=True)
    client.get("/language/zh")
    # A server in the wrong state: a stopped-for-good server (deleting) is refused with its state.
    with j.rt.db.unit_of_work() as uow:
        uow.session.get_one(ManagedServer, server_id).state = "deleting"
    busy = client.post(f"/portal/servers/{server_id}/snapshots", data={"csrf_token": token, "name": "late"})
    assert busy.status_code == 409
    with app.test_request_context("/"), force_locale("zh"):
        state = server_state_label("deleting")
    expected = _zh(
        app,
        "Server %(server)s is %(state)s; only a running or stopped server can be snapshotted or restored.",
        server=_server_name(j, server_id),
        state=state,
    )
    assert _shows(busy.get_data(as_text=True), expected)


@ONE_DATABASE
def test_another_department_sees_no_snapshot(server_journey: Journey) -> None:
    j = server_journey
    server_id = active_server(j)
    with j.rt.db.unit_of_work() as uow:
        snapshot_id = backups.take_server_snapshot(uow.session, j.staff, server_id, "ours").id
    j.drain()
    app = create_app(runtime=j.rt)
    other = logged_in(app, "wangfang")
    token = csrf_token(other.get("/portal/keys").get_data(as_text=True))
    assert other.get(f"/portal/servers/{server_id}/snapshots/{snapshot_id}/restore").status_code == 404
    for path in ("snapshots", f"snapshots/{snapshot_id}/restore", f"snapshots/{snapshot_id}/delete"):
        answer = other.post(
            f"/portal/servers/{server_id}/{path}", data={"csrf_token": token, "name": "x", "confirm": "x"}
        )
        assert answer.status_code == 404, path
    headers = _bearer(j.rt, "wangfang")
    api = app.test_client()
    assert api.get(f"/api/v1/servers/{server_id}/snapshots", headers=headers).status_code == 404
    assert api.get(f"/api/v1/server-snapshots/{snapshot_id}", headers=headers).status_code == 404
    assert api.delete(f"/api/v1/server-snapshots/{snapshot_id}", headers=headers).status_code == 404
    with j.rt.db.unit_of_work() as uow:
        assert backups.get_server_snapshot(uow.session, j.staff, snapshot_id).state == backups.CopyState.READY


@ONE_DATABASE
def test_the_api_snapshots_restores_and_deletes(server_journey: Journey) -> None:
    j = server_journey
    server_id = active_server(j)
    name = _server_name(j, server_id)
    app = create_app(runtime=j.rt)
    api = app.test_client()
    headers = _bearer(j.rt, "zhangwei")
    bad = api.post(f"/api/v1/servers/{server_id}/snapshots", headers=headers, data=json.dumps({"name": "x" * 65}))
    assert bad.status_code == 400 and bad.get_json()["error"] == "copy_invalid"
    assert bad.get_json()["message"].startswith("name:")
    made = api.post(f"/api/v1/servers/{server_id}/snapshots", headers=headers, data=json.dumps({"name": "nightly"}))
    assert made.status_code == 202 and made.get_json()["state"] == "pending"
    snapshot_id = made.get_json()["id"]
    busy = api.post(f"/api/v1/servers/{server_id}/snapshots", headers=headers, data=json.dumps({"name": "twice"}))
    assert busy.status_code == 409 and busy.get_json()["error"] == "copy_conflict"
    j.drain()
    listed = api.get(f"/api/v1/servers/{server_id}/snapshots", headers=headers).get_json()["items"]
    assert [(s["id"], s["state"], s["restore_state"]) for s in listed] == [(snapshot_id, "ready", None)]
    assert listed[0]["image_id"] and listed[0]["size_bytes"]
    unconfirmed = api.post(f"/api/v1/server-snapshots/{snapshot_id}/restore", headers=headers, data="{}")
    assert unconfirmed.status_code == 400
    wrong = api.post(
        f"/api/v1/server-snapshots/{snapshot_id}/restore", headers=headers, data=json.dumps({"confirm": "x"})
    )
    assert wrong.status_code == 400 and wrong.get_json()["message"].startswith("confirm:")
    restoring = api.post(
        f"/api/v1/server-snapshots/{snapshot_id}/restore", headers=headers, data=json.dumps({"confirm": name})
    )
    assert restoring.status_code == 202 and restoring.get_json()["restore_state"] == "queued"
    assert api.delete(f"/api/v1/server-snapshots/{snapshot_id}", headers=headers).status_code == 409
    j.drain()
    done = api.get(f"/api/v1/server-snapshots/{snapshot_id}", headers=headers).get_json()
    assert done["restore_state"] == "done" and done["restored_at"]
    with j.rt.db.unit_of_work() as uow:
        cloud_server = uow.session.get_one(ManagedServer, server_id).server_id or ""
    assert simulator(j).get_server(cloud_server).image_id == done["image_id"]
    finance = _bearer(j.rt, "finance")
    assert api.get(f"/api/v1/servers/{server_id}/snapshots", headers=finance).status_code == 200
    assert api.delete(f"/api/v1/server-snapshots/{snapshot_id}", headers=finance).status_code == 403
    deleting = api.delete(f"/api/v1/server-snapshots/{snapshot_id}", headers=headers)
    assert deleting.status_code == 202 and deleting.get_json()["state"] == "deleting"
    j.drain()
    assert api.get(f"/api/v1/server-snapshots/{snapshot_id}", headers=headers).status_code == 404


@ONE_DATABASE
def test_a_volumes_snapshot_and_hand_made_backup_are_deleted_from_its_page_and_the_api(
    server_journey: Journey,
) -> None:
    j = server_journey
    volume_id = provision_volume(j)
    with j.rt.db.unit_of_work() as uow:
        snapshot_id = backups.take_snapshot(uow.session, j.staff, volume_id).id
        backup_id = backups.back_up_now(uow.session, j.staff, volume_id).id
        pending_id = backups.back_up_now(uow.session, j.staff, volume_id).id
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        # One still being made: its delete is refused with the reason.
        uow.session.get_one(backups.VolumeBackupRecord, pending_id).state = backups.CopyState.PENDING
    app = create_app(runtime=j.rt)
    client = logged_in(app, "zhangwei")
    page = client.get(f"/portal/volumes/{volume_id}/backups").get_data(as_text=True)
    assert f"/portal/volumes/{volume_id}/snapshots/{snapshot_id}/delete" in page
    assert f"/portal/volumes/{volume_id}/backups/{backup_id}/delete" in page
    assert f"/portal/volumes/{volume_id}/backups/{pending_id}/delete" not in page
    token = csrf_token(page)
    refused = client.post(
        f"/portal/volumes/{volume_id}/backups/{pending_id}/delete", data={"csrf_token": token}, follow_redirects=True
    )
    assert _shows(refused.get_data(as_text=True), _zh(app, "being made"))
    answer = client.post(f"/portal/volumes/{volume_id}/snapshots/{snapshot_id}/delete", data={"csrf_token": token})
    assert answer.status_code == 302
    api = app.test_client()
    headers = _bearer(j.rt, "zhangwei")
    other = _bearer(j.rt, "wangfang")
    assert api.delete(f"/api/v1/backups/{backup_id}", headers=other).status_code == 404
    deleting = api.delete(f"/api/v1/backups/{backup_id}", headers=headers)
    assert deleting.status_code == 202 and deleting.get_json()["state"] == "deleting"
    conflict = api.delete(f"/api/v1/backups/{pending_id}", headers=headers)
    assert conflict.status_code == 409 and conflict.get_json()["error"] == "copy_conflict"
    j.drain()
    listed = api.get(f"/api/v1/volumes/{volume_id}/backups", headers=headers).get_json()["items"]
    assert [b["id"] for b in listed] == [pending_id]
    assert api.get(f"/api/v1/volumes/{volume_id}/snapshots", headers=headers).get_json()["items"] == []
    assert api.delete(f"/api/v1/snapshots/{snapshot_id}", headers=headers).status_code == 404
