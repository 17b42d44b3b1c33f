"""The storage volumes page, the server page's volumes and public address, and /api/v1/volumes and
/api/v1/servers/<id>/public-address (issue 16), on the simulated cloud."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Department
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import ManagedVolume, VolumeState
from tests.web.helpers import Journey, csrf_token, logged_in, post_form
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _bearer(journey: Journey, username: str) -> dict[str, str]:
    with journey.rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(uow.session, user, name="t", expires_at=None, actor=Actor.system("test")).token
    return {"Authorization": f"Bearer {token}"}


def _server(journey: Journey, zone: str = "internet", prefix: str = "vol") -> int:
    """One active server of zhangwei's department on education in ``zone``."""
    form = dataclasses.replace(journey.form(1, prefix=prefix), zone=zone)
    actor = journey.actor("zhangwei")
    with journey.rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(
            uow.session, actor, form, submit=True, settings=journey.rt.settings
        ).id
    approvers = {"dept_head": "lina", "operator": "operator", "finance": "finance"}
    for _ in range(4):
        with journey.rt.db.unit_of_work() as uow:
            role = uow.session.get_one(ServiceRequest, request_id).next_role
        if role is None:
            break
        journey.approve(request_id, approvers[role])
    journey.drain()
    (server_id, _name, state) = journey.servers(request_id)[0]
    assert state == "active"
    return server_id


def _volume_ids(journey: Journey) -> list[int]:
    with journey.rt.db.unit_of_work() as uow:
        return list(uow.session.scalars(select(ManagedVolume.id).order_by(ManagedVolume.id)))


def _state(journey: Journey, volume_id: int) -> tuple[str, int | None, int]:
    with journey.rt.db.unit_of_work() as uow:
        volume = uow.session.get_one(ManagedVolume, volume_id)
        return volume.state.value, volume.server_id, volume.size_gb


def _english(app: Flask, username: str) -> FlaskClient:
    client = logged_in(app, username)
    client.get("/language/en")
    return client


# --- pages -------------------------------------------------------------------------------------------


def test_the_volumes_page_creates_attaches_enlarges_detaches_and_deletes(app: Flask, journey: Journey) -> None:
    server_id = _server(journey)
    staff = _english(app, "zhangwei")
    page = staff.get("/portal/volumes")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Storage volumes" in html and "per GB-month" in html
    fake = journey.item_id("education", "volume", "fake")
    created = post_form(staff, "/portal/volumes", {"name": "archive", "size_gb": "25", "volume_type": str(fake)})
    assert created.status_code == 302
    (volume_id,) = _volume_ids(journey)
    journey.drain()
    assert _state(journey, volume_id) == ("available", None, 25)
    html = staff.get("/portal/volumes").get_data(as_text=True)
    assert "archive" in html and f'action="/portal/volumes/{volume_id}/attach"' in html

    attached = post_form(
        staff, f"/portal/volumes/{volume_id}/attach", {"server_id": str(server_id)}, page="/portal/volumes"
    )
    assert attached.status_code == 302
    journey.drain()
    assert _state(journey, volume_id)[:2] == ("attached", server_id)
    server_page = staff.get(f"/portal/servers/{server_id}").get_data(as_text=True)
    assert "archive" in server_page and f'action="/portal/volumes/{volume_id}/detach"' in server_page

    enlarged = post_form(staff, f"/portal/volumes/{volume_id}/extend", {"size_gb": "40"}, page="/portal/volumes")
    assert enlarged.status_code == 302
    journey.drain()
    assert _state(journey, volume_id) == ("attached", server_id, 40)

    # Detached from the server page: back to the server page.
    detached = post_form(
        staff,
        f"/portal/volumes/{volume_id}/detach",
        {"back_to_server": str(server_id)},
        page=f"/portal/servers/{server_id}",
    )
    assert detached.status_code == 302 and detached.headers["Location"].endswith(f"/portal/servers/{server_id}")
    journey.drain()
    assert _state(journey, volume_id)[:2] == ("available", None)

    deleted = post_form(staff, f"/portal/volumes/{volume_id}/delete", {}, page="/portal/volumes")
    assert deleted.status_code == 302
    journey.drain()
    assert _state(journey, volume_id)[0] == "deleted"
    assert f'data-volume="{volume_id}"' not in staff.get("/portal/volumes").get_data(as_text=True)


def test_bad_input_on_the_page_is_refused_under_its_field(app: Flask, journey: Journey) -> None:
    staff = _english(app, "zhangwei")
    fake = journey.item_id("education", "volume", "fake")
    for size in ("10240", "-1", "0"):
        response = post_form(staff, "/portal/volumes", {"name": "big", "size_gb": size, "volume_type": str(fake)})
        assert response.status_code == 400
        assert "The size is a whole number of GB from 1 to 2048." in response.get_data(as_text=True)
    unknown = post_form(staff, "/portal/volumes", {"name": "x", "size_gb": "5", "volume_type": "999999"})
    assert unknown.status_code == 400 and "is not a volume type offered" in unknown.get_data(as_text=True)
    nameless = post_form(staff, "/portal/volumes", {"name": " ", "size_gb": "5", "volume_type": str(fake)})
    assert nameless.status_code == 400 and "Give the volume a name" in nameless.get_data(as_text=True)
    no_csrf = staff.post("/portal/volumes", data={"name": "x", "size_gb": "5", "volume_type": str(fake)})
    assert no_csrf.status_code == 400
    assert _volume_ids(journey) == []


def test_the_server_page_gives_and_releases_a_public_address_and_refuses_it_on_the_extranet(
    app: Flask, journey: Journey
) -> None:
    internet, extranet = _server(journey), _server(journey, "extranet", "ext")
    staff = _english(app, "zhangwei")
    extranet_page = staff.get(f"/portal/servers/{extranet}").get_data(as_text=True)
    assert 'data-testid="ask-address"' not in extranet_page
    assert "only given to servers in the internet zone" in extranet_page
    refused = post_form(staff, f"/portal/servers/{extranet}/public-address", {}, page=f"/portal/servers/{extranet}")
    assert refused.status_code == 400
    assert "only given to servers in the internet zone" in refused.get_data(as_text=True)

    page = staff.get(f"/portal/servers/{internet}").get_data(as_text=True)
    assert 'data-testid="ask-address"' in page
    asked = post_form(staff, f"/portal/servers/{internet}/public-address", {}, page=f"/portal/servers/{internet}")
    assert asked.status_code == 302
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        address = uow.session.get_one(ManagedServer, internet).addresses["public"][0]
    page = staff.get(f"/portal/servers/{internet}").get_data(as_text=True)
    assert f"<code>{address}</code>" in page and 'data-testid="release-address"' in page
    released = post_form(
        staff, f"/portal/servers/{internet}/public-address/release", {}, page=f"/portal/servers/{internet}"
    )
    assert released.status_code == 302
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        assert "public" not in uow.session.get_one(ManagedServer, internet).addresses


def test_refusals_are_in_chinese_on_the_pages(app: Flask, journey: Journey) -> None:
    extranet = _server(journey, "extranet", "ext")
    staff = logged_in(app, "zhangwei")  # Chinese by default
    volumes = staff.get("/portal/volumes").get_data(as_text=True)
    assert "存储卷" in volumes and "每 GB 每月" in volumes
    refused = post_form(staff, f"/portal/servers/{extranet}/public-address", {}, page=f"/portal/servers/{extranet}")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "操作被拒绝" in html and "公网地址只分配给互联网区的云主机" in html
    fake = journey.item_id("education", "volume", "fake")
    too_big = post_form(staff, "/portal/volumes", {"name": "big", "size_gb": "10240", "volume_type": str(fake)})
    assert too_big.status_code == 400 and "容量为 1 到 2048 GB 的整数" in too_big.get_data(as_text=True)


# --- the API -----------------------------------------------------------------------------------------


def _post(client: FlaskClient, path: str, headers: dict[str, str], body: Any = None) -> Any:
    return client.post(path, headers=headers, json=body if body is not None else {})


def test_the_api_goes_through_a_volumes_life(app: Flask, journey: Journey) -> None:
    server_id = _server(journey)
    client, staff = app.test_client(), _bearer(journey, "zhangwei")
    created = _post(
        client, "/api/v1/volumes", staff, {"name": "db", "size_gb": 30, "cloud": "education", "volume_type": "fake"}
    )
    assert created.status_code == 202, created.get_json()
    volume = created.get_json()
    assert volume["state"] == "pending" and volume["monthly_price"] is not None
    journey.drain()
    path = f"/api/v1/volumes/{volume['id']}"
    assert client.get(path, headers=staff).get_json()["state"] == "available"
    assert [v["id"] for v in client.get("/api/v1/volumes", headers=staff).get_json()["items"]] == [volume["id"]]

    assert _post(client, f"{path}/attach", staff, {"server_id": server_id}).status_code == 202
    journey.drain()
    assert client.get(path, headers=staff).get_json()["server_id"] == server_id
    busy = client.delete(path, headers=staff)
    assert busy.status_code == 409 and busy.get_json()["message"].startswith("volume_id: ")
    assert _post(client, f"{path}/extend", staff, {"size_gb": 60}).status_code == 202
    journey.drain()
    assert client.get(path, headers=staff).get_json()["size_gb"] == 60
    smaller = _post(client, f"{path}/extend", staff, {"size_gb": 50})
    assert smaller.status_code == 400 and smaller.get_json()["message"].startswith("size_gb: ")
    assert _post(client, f"{path}/detach", staff).status_code == 202
    journey.drain()
    assert client.get(path, headers=staff).get_json()["server_id"] is None
    assert client.delete(path, headers=staff).status_code == 202
    journey.drain()
    assert client.get(path, headers=staff).get_json()["state"] == "deleted"
    assert client.get("/api/v1/volumes", headers=staff).get_json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a", "size_gb": 10240, "cloud": "education", "volume_type": "fake"}, "size_gb"),
        ({"name": "a", "size_gb": -1, "cloud": "education", "volume_type": "fake"}, "size_gb"),
        ({"name": "a", "size_gb": "10", "cloud": "education", "volume_type": "fake"}, "size_gb"),
        ({"name": "a", "size_gb": 10, "cloud": "education", "volume_type": "platinum"}, "volume_type"),
        ({"name": "a", "size_gb": 10, "cloud": "nowhere", "volume_type": "fake"}, "cloud"),
        ({"name": "", "size_gb": 10, "cloud": "education", "volume_type": "fake"}, "name"),
        ({"name": "a", "size_gb": 10, "cloud": "education", "volume_type": "fake", "colour": "red"}, "unknown"),
    ],
)
def test_bad_api_input_is_a_4xx_naming_the_field(
    app: Flask, journey: Journey, body: dict[str, Any], field: str
) -> None:
    response = _post(app.test_client(), "/api/v1/volumes", _bearer(journey, "zhangwei"), body)
    assert 400 <= response.status_code < 500
    assert re.search(rf"\b{field}\b", response.get_json()["message"]), response.get_json()
    assert _volume_ids(journey) == []


def test_the_api_refuses_another_departments_server_and_an_extranet_address(app: Flask, journey: Journey) -> None:
    server_id, extranet = _server(journey), _server(journey, "extranet", "ext")
    client, staff = app.test_client(), _bearer(journey, "zhangwei")
    volume = _post(
        client, "/api/v1/volumes", staff, {"name": "x", "size_gb": 5, "cloud": "education", "volume_type": "fake"}
    ).get_json()
    journey.drain()
    # The other department sees neither the volume nor the server.
    other = _bearer(journey, "wangfang")
    assert client.get(f"/api/v1/volumes/{volume['id']}", headers=other).status_code == 404
    assert _post(client, f"/api/v1/servers/{server_id}/public-address", other).status_code == 404
    with journey.rt.db.unit_of_work() as uow:
        department = uow.session.scalars(select(Department.id).where(Department.key != "prov-education")).first()
        uow.session.execute(update(ManagedServer).where(ManagedServer.id == server_id).values(department_id=department))
    attach = _post(client, f"/api/v1/volumes/{volume['id']}/attach", staff, {"server_id": server_id})
    assert attach.status_code == 404 and attach.get_json()["message"].startswith("server_id: ")
    address = _post(client, f"/api/v1/servers/{extranet}/public-address", staff)
    assert address.status_code == 400
    assert address.get_json()["message"] == "zone: a public address is only given in the internet zone, not in extranet"


def test_operators_read_and_tidy_but_do_not_create(app: Flask, journey: Journey) -> None:
    client, staff, operator = app.test_client(), _bearer(journey, "zhangwei"), _bearer(journey, "operator")
    body = {"name": "x", "size_gb": 5, "cloud": "education", "volume_type": "fake"}
    assert _post(client, "/api/v1/volumes", operator, body).status_code == 403
    volume = _post(client, "/api/v1/volumes", staff, body).get_json()
    journey.drain()
    listed = client.get("/api/v1/volumes?department=prov-education", headers=operator).get_json()["items"]
    assert [v["id"] for v in listed] == [volume["id"]]
    assert _post(client, f"/api/v1/volumes/{volume['id']}/extend", operator, {"size_gb": 9}).status_code == 403
    assert client.delete(f"/api/v1/volumes/{volume['id']}", headers=operator).status_code == 202
    assert client.get("/api/v1/volumes", headers=_bearer(journey, "finance")).status_code == 403


def test_the_page_and_form_need_a_login_and_a_csrf_token(app: Flask, journey: Journey) -> None:
    anonymous = app.test_client()
    assert anonymous.get("/portal/volumes").status_code == 302
    staff = logged_in(app, "zhangwei")
    token = csrf_token(staff.get("/portal/volumes").get_data(as_text=True))
    assert staff.post("/portal/volumes/1/delete", data={"csrf_token": token}).status_code == 404


def test_the_volumes_list_is_searched_filtered_and_paged_in_sql(app: Flask, journey: Journey) -> None:
    """The department's volumes page: search (name, cloud id, type, server), the state and cloud
    filters, pages; another department's volumes never show; a filter value it does not know is
    set aside and said."""
    from cloudmgr.paging import PageRequest
    from cloudmgr.storage import services as storage

    staff = journey.actor("zhangwei")
    with journey.rt.db.unit_of_work() as uow:
        for name in ("archive-a", "archive-b", "scratch"):
            storage.create_volume(
                uow.session, staff, name=name, size_gb=5, cloud_key="education", volume_type_name="fake"
            )
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        other = uow.session.scalars(select(Department).where(Department.key != "prov-education")).first()
        assert other is not None
        mine = uow.session.scalars(select(ManagedVolume).where(ManagedVolume.name == "scratch")).one()
        uow.session.add(
            ManagedVolume(
                name="archive-other", department_id=other.id, cloud_id=mine.cloud_id, index=1, size_gb=5,
                idempotency_key="other-dept-volume", state=VolumeState.AVAILABLE,
            )
        )  # fmt: skip
    client = _english(app, "zhangwei")

    def names(query: str) -> list[str]:
        html = client.get(f"/portal/volumes{query}").get_data(as_text=True)
        return re.findall(r'<tr data-volume="\d+">\s*<th scope="row">([^<]+)', html)

    assert names("") == ["scratch", "archive-b", "archive-a"]
    assert names("?q=ARCHIVE") == ["archive-b", "archive-a"]
    assert names("?q=nothing-like-it") == []
    assert "No volume matches the search or the filters." in client.get("/portal/volumes?q=zzz").get_data(as_text=True)
    assert names("?state=available") == ["scratch", "archive-b", "archive-a"]
    assert names("?state=attached") == []
    assert names("?cloud=education") == ["scratch", "archive-b", "archive-a"]
    assert names("?cloud=province-base") == ["scratch", "archive-b", "archive-a"]  # not its cloud: set aside
    page = client.get("/portal/volumes?cloud=nowhere&state=melted").get_data(as_text=True)
    assert "has no value “melted”" in page and "has no value “nowhere”" in page
    assert names("?per_page=2") == ["scratch", "archive-b"]
    second = client.get("/portal/volumes?per_page=2&page=2").get_data(as_text=True)
    assert "Rows 3–3 of 3 · page 2 of 2" in second and 'rel="prev"' in second
    assert names("?per_page=2&page=2") == ["archive-a"]
    # The service reads one page in SQL, whoever asks.
    with journey.rt.db.unit_of_work() as uow:
        page_of_one = storage.volumes_page(uow.session, staff, PageRequest.of(2, 1, "archive"))
        assert (page_of_one.total, [v.name for v in page_of_one.rows]) == (2, ["archive-a"])
    # In Chinese, the controls are the page's language.
    chinese = logged_in(app, "zhangwei").get("/portal/volumes?state=available").get_data(as_text=True)
    assert "每页行数" in chinese and 'name="state"' in chinese
