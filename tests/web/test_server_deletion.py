"""Deleting a server with a data volume and a public address from the portal and the API (issue
16): the confirmation lists the volumes and asks, required, whether they are kept or deleted, and
says the address is released; without an answer the deletion is refused (in Chinese on the page,
naming the field in the API) and nothing changes."""

from __future__ import annotations

import dataclasses
import json

import pytest
from flask import Flask
from sqlalchemy import select

from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests import services
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState
from cloudmgr.servicerequests.quoting import DataDisk
from tests.web.helpers import Journey, logged_in, post_form
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _server_with_a_volume_and_an_address(journey: Journey) -> tuple[int, str]:
    with journey.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == "education"))
        volume_type = uow.session.scalar(
            select(CatalogItem.id).where(
                CatalogItem.cloud_id == cloud_id, CatalogItem.kind == ItemKind.VOLUME_TYPE.value
            )
        )
    assert volume_type is not None
    form = dataclasses.replace(
        journey.form(1), zone="internet", data_disks=(DataDisk(20, volume_type),), public_address=True
    )
    staff = journey.actor("zhangwei")
    with journey.rt.db.unit_of_work() as uow:
        request_id = services.create_request(uow.session, staff, form, submit=True, settings=journey.rt.settings).id
    approvers = {"dept_head": "lina", "operator": "operator", "finance": "finance"}
    for _ in range(4):
        with journey.rt.db.unit_of_work() as uow:
            role = uow.session.get_one(ServiceRequest, request_id).next_role
        if role is None:
            break
        journey.approve(request_id, approvers[role])
    journey.drain()
    ((server_id, name, state),) = journey.servers(request_id)
    assert state == "active"
    return server_id, name


def _parts(journey: Journey, server_id: int) -> tuple[list[VolumeState], list[AddressState]]:
    with journey.rt.db.unit_of_work() as uow:
        request_id = uow.session.scalar(select(ServiceRequest.id).where(ServiceRequest.servers.any(id=server_id)))
        volumes = uow.session.scalars(select(ManagedVolume.state).where(ManagedVolume.request_id == request_id))
        addresses = uow.session.scalars(select(ManagedAddress.state).where(ManagedAddress.server_id == server_id))
        return list(volumes), list(addresses)


def test_the_portal_asks_for_the_volumes_and_keeps_them_when_told(app: Flask, journey: Journey) -> None:
    server_id, name = _server_with_a_volume_and_an_address(journey)
    page = f"/portal/servers/{server_id}"
    client = logged_in(app, "zhangwei")
    html = client.get(page).get_data(as_text=True)
    assert 'data-testid="delete-volumes"' in html and f"{name}-data1" in html
    assert '<input id="volumes-0" name="volumes" required type="radio" value="keep">' in html
    assert 'data-testid="delete-address"' in html and "将被释放" in html
    # No answer: refused in Chinese, naming the volumes; nothing changes.
    response = post_form(client, f"{page}/delete", {"confirm": name}, page=page)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "数据盘：该云主机有 1 块数据盘，请选择保留还是随云主机删除。" in text
    assert journey.servers(journey_request(journey, server_id))[0][2] == "active"
    assert _parts(journey, server_id) == ([VolumeState.ATTACHED], [AddressState.ASSOCIATED])
    # A made-up answer is refused by the form.
    response = post_form(client, f"{page}/delete", {"confirm": name, "volumes": "maybe"}, page=page)
    assert response.status_code == 400
    response = post_form(client, f"{page}/delete", {"confirm": name, "volumes": "keep"}, page=page)
    assert response.status_code == 302
    journey.drain()
    assert journey.servers(journey_request(journey, server_id))[0][2] == "deleted"
    assert _parts(journey, server_id) == ([VolumeState.AVAILABLE], [AddressState.RELEASED])


def journey_request(journey: Journey, server_id: int) -> int:
    with journey.rt.db.unit_of_work() as uow:
        request_id = uow.session.scalar(select(ServiceRequest.id).where(ServiceRequest.servers.any(id=server_id)))
    assert request_id is not None
    return request_id


def test_the_api_needs_the_volumes_answer_and_deletes_them_when_told(app: Flask, journey: Journey) -> None:
    server_id, name = _server_with_a_volume_and_an_address(journey)
    with journey.rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, "zhangwei")
        token = org.issue_token(uow.session, user, name="t", expires_at=None, actor=Actor.system("test")).token
    client = app.test_client()

    def act(body: dict[str, str]) -> tuple[int, dict[str, str]]:
        response = client.post(
            f"/api/v1/servers/{server_id}/actions",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            data=json.dumps(body),
        )
        return response.status_code, response.get_json()

    status, body = act({"action": "delete", "confirm": name})
    assert status == 400 and body["error"] == "request_invalid" and body["message"].startswith("volumes: ")
    status, body = act({"action": "delete", "confirm": name, "volumes": "perhaps"})
    assert status == 400 and body["message"].startswith("volumes: ")
    assert _parts(journey, server_id) == ([VolumeState.ATTACHED], [AddressState.ASSOCIATED])
    status, body = act({"action": "delete", "confirm": name, "volumes": "delete"})
    assert status == 202 and body["state"] == "deleting"
    journey.drain()
    assert _parts(journey, server_id) == ([VolumeState.DELETED], [AddressState.RELEASED])
