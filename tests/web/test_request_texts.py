"""What the system wrote on a request that partly failed (its state reason, its servers'
faults, its history) and on a volume whose change failed reads in the page's language; the API
says it in English as before; a row written before its text was a message shows as it is
(issue 18)."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from cloudmgr.cloud import CloudBadRequest
from cloudmgr.cloud.simulated.provider import SimulatedProvider
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.quotas.resources import Resource, quota_set_with
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import ManagedVolume
from cloudmgr.storage import services as storage
from tests.web.helpers import Journey, logged_in
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _partly_failed(journey: Journey) -> tuple[int, int]:
    """A request of two servers whose cloud project has room for one: (request id, failed server id)."""
    request_id = journey.submit(count=2)
    journey.approve(request_id, "lina", "operator")
    with journey.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None
        cloud = uow.session.get(Cloud, request.cloud_id)
        assert cloud is not None
        project_id = uow.session.scalar(
            select(DepartmentCloud.project_id).where(
                DepartmentCloud.department_id == request.department_id, DepartmentCloud.cloud_id == cloud.id
            )
        )
        provider = journey.rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
    assert project_id is not None
    provider.set_quota(project_id, quota_set_with(provider.get_quota(project_id), {Resource.INSTANCES: 1}))  # type: ignore[attr-defined]
    journey.drain()
    assert journey.request_state(request_id) == "partially_active"
    failed = [s for s in journey.servers(request_id) if s[2] == "error"]
    assert len(failed) == 1
    return request_id, failed[0][0]


def _token(rt: Runtime, username: str) -> str:
    with rt.db.unit_of_work() as uow:
        return org.issue_token(
            uow.session, org.get_user_by_name(uow.session, username), name="t", expires_at=None,
            actor=Actor.system("test"),
        ).token  # fmt: skip


def test_a_partly_failed_request_reads_in_chinese_on_the_portal_and_in_english_in_the_api(
    app: Flask, journey: Journey
) -> None:
    request_id, server_id = _partly_failed(journey)
    with journey.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        server = uow.session.get(ManagedServer, server_id)
        assert request is not None and server is not None
        reason, fault = request.state_reason, server.fault
    assert reason == "1 active, 1 failed"
    assert fault is not None and fault.startswith("quota exceeded in the cloud: ")
    cloud_words = fault.removeprefix("quota exceeded in the cloud: ")

    staff = logged_in(app, "zhangwei")
    html = staff.get(f"/portal/requests/{request_id}").get_data(as_text=True)
    assert "1 active, 1 failed" not in html and "quota exceeded in the cloud" not in html
    assert "原因：1 台运行中，1 台失败" in html
    assert f"超出云平台配额：{cloud_words}" in html  # the cloud's own words as it said them
    html = staff.get(f"/portal/servers/{server_id}").get_data(as_text=True)
    assert f"超出云平台配额：{cloud_words}" in html and "quota exceeded in the cloud" not in html
    ops = logged_in(app, "operator")
    html = ops.get(f"/ops/requests/{request_id}").get_data(as_text=True)
    assert "1 台运行中，1 台失败" in html and "1 active, 1 failed" not in html

    # The English console says the English text.
    staff.get("/language/en")
    html = staff.get(f"/portal/requests/{request_id}").get_data(as_text=True)
    assert "1 active, 1 failed" in html and f"quota exceeded in the cloud: {cloud_words}" in html

    # The API and the CLI read the stored English text; the messages are not shown.
    api = create_app(runtime=journey.rt).test_client()
    headers = {"Authorization": f"Bearer {_token(journey.rt, 'zhangwei')}"}
    body = api.get(f"/api/v1/requests/{request_id}", headers=headers).get_json()
    assert body["state_reason"] == "1 active, 1 failed" and "messages" not in body
    assert [s["fault"] for s in body["servers"] if s["id"] == server_id] == [fault]
    assert body["events"][-1]["reason"] == "1 active, 1 failed"


def test_a_row_stored_before_its_text_was_a_message_shows_as_it_is(app: Flask, journey: Journey) -> None:
    request_id, server_id = _partly_failed(journey)
    with journey.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        server = uow.session.get(ManagedServer, server_id)
        assert request is not None and server is not None
        request.messages = {}  # as a row written before migration 0031
        request.state_reason, server.fault = "1 active, 1 failed", "an older fault, in English"
    html = logged_in(app, "zhangwei").get(f"/portal/requests/{request_id}").get_data(as_text=True)
    assert "原因：1 active, 1 failed" in html and "an older fault, in English" in html


def test_a_text_the_request_kept_no_message_for_is_shown_as_it_is(app: Flask, journey: Journey) -> None:
    """A person's own words (an approver's reason) are not looked up as a message."""
    request_id, _ = _partly_failed(journey)
    html = logged_in(app, "operator").get(f"/ops/requests/{request_id}").get_data(as_text=True)
    assert "<td>ok</td>" in html  # the approvers' reason, as they wrote it


def test_a_volume_change_that_failed_reads_in_chinese_on_the_portal_and_in_english_in_the_api(
    app: Flask, journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A volume's fault is a message too (cloudmgr.storage.jobs): the change by its name in the
    page's language, the cloud's own words as it said them."""
    staff = journey.actor("zhangwei")
    with journey.rt.db.unit_of_work() as uow:
        volume = storage.create_volume(
            uow.session, staff, name="archive", size_gb=20, cloud_key="education", volume_type_name="fake"
        )
    journey.drain()

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise CloudBadRequest("no space left on the backend")

    monkeypatch.setattr(SimulatedProvider, "extend_volume", refuse)
    with journey.rt.db.unit_of_work() as uow:
        storage.extend_volume(uow.session, staff, volume.id, 40)
    journey.drain()

    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ManagedVolume, volume.id).fault == "extend: no space left on the backend"
    html = logged_in(app, "zhangwei").get("/portal/volumes").get_data(as_text=True)
    assert "扩容：no space left on the backend" in html and "extend: " not in html
    api = create_app(runtime=journey.rt).test_client()
    headers = {"Authorization": f"Bearer {_token(journey.rt, 'zhangwei')}"}
    body = api.get(f"/api/v1/volumes/{volume.id}", headers=headers).get_json()
    assert body["fault"] == "extend: no space left on the backend"

    # An older row's fault, with no message kept, shows as it is.
    with journey.rt.db.unit_of_work() as uow:
        row = uow.session.get_one(ManagedVolume, volume.id)
        row.messages, row.fault = {}, "extend: an older fault"
    html = logged_in(app, "zhangwei").get("/portal/volumes").get_data(as_text=True)
    assert "extend: an older fault" in html
