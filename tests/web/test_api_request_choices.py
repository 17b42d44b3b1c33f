"""``/api/v1/requests``: the SSH key, user data, data disks and public address of a request (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cloudmgr.keys import services as keys
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from tests.keys.keygen import ed25519_key, public_line
from tests.web.helpers import Journey
from tests.web.test_api_selfservice import Api, _body
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


@pytest.fixture
def api(client: FlaskClient, journey_rt: Runtime) -> Any:
    return lambda username: Api(client, journey_rt, username)


def _key_of(runtime: Runtime, username: str) -> int:
    with runtime.db.unit_of_work() as uow:
        actor = Actor.of(org.get_user_by_name(uow.session, username))
        return keys.add_key(uow.session, actor, "laptop", public_line(ed25519_key(), "me@laptop")).id


def test_a_request_with_every_choice_is_quoted_stored_and_shown(
    api: Any, journey: Journey, journey_rt: Runtime
) -> None:
    staff = api("zhangwei")
    key_id = _key_of(journey_rt, "zhangwei")
    choices = {
        "zone": "internet",
        "count": 2,
        "ssh_key_id": key_id,
        "user_data": "#cloud-config\npassword: secret-not-shown\n",
        "data_disks": [{"size_gb": 100, "volume_type": "ssd"}, {"size_gb": 20, "volume_type": "fake"}],
        "public_address": True,
    }
    status, quoted = staff.post("/requests/quote", _body(journey, **choices))
    assert status == 200, quoted
    assert quoted["needs"]["volumes"] == 4 and quoted["needs"]["volume_gb"] == 240
    assert quoted["needs"]["floating_ips"] == 2
    status, created = staff.post("/requests", _body(journey, **choices, submit=True))
    assert status == 201, created
    assert created["monthly_cost"] == quoted["monthly_cost"]
    status, shown = staff.get(f"/requests/{created['id']}")
    assert status == 200
    assert shown["ssh_key"]["name"] == "laptop" and shown["ssh_key"]["fingerprint"].startswith("SHA256:")
    assert shown["user_data"] == {"bytes": len(choices["user_data"]), "first_line": "#cloud-config"}
    assert "secret-not-shown" not in str(shown)
    assert shown["data_disks"] == [{"size_gb": 100, "volume_type": "ssd"}, {"size_gb": 20, "volume_type": "fake"}]
    assert shown["public_address"] is True


def test_a_request_without_choices_shows_none(api: Any, journey: Journey) -> None:
    status, created = api("zhangwei").post("/requests", _body(journey))
    assert status == 201, created
    assert created["ssh_key"] is None and created["user_data"] is None
    assert created["data_disks"] == [] and created["public_address"] is False


@pytest.mark.parametrize(
    ("choices", "named"),
    [
        ({"data_disks": [{"size_gb": 10 * 1024, "volume_type": "fake"}]}, "data_disks[1].size_gb"),
        ({"data_disks": [{"size_gb": -1, "volume_type": "fake"}]}, "data_disks[1].size_gb"),
        ({"data_disks": [{"size_gb": 1.5, "volume_type": "fake"}]}, "data_disks[1].size_gb must be an integer"),
        ({"data_disks": [{"size_gb": 10, "volume_type": "gold"}]}, "data_disks[1].volume_type"),
        ({"data_disks": [{"size_gb": 10}]}, "data_disks[1].volume_type"),
        ({"data_disks": [{"size_gb": 10, "volume_type": "fake", "iops": 5}]}, "data_disks[1]: unknown field"),
        ({"data_disks": [{"size_gb": 10, "volume_type": "fake"}] * 5}, "data_disks: at most 4 data disks"),
        ({"data_disks": "10G"}, "data_disks must be a list of objects"),
        ({"user_data": "x" * (16 * 1024 + 1)}, "user_data: at most 16 KiB"),
        ({"user_data": "a\u0000b"}, "NUL character"),
        ({"ssh_key_id": 424242}, "ssh_key_id: no such SSH key"),
        ({"ssh_key_id": "mine"}, "ssh_key_id must be an integer"),
        ({"public_address": True}, "public_address: a public address is only given in the internet zone"),
        ({"public_address": "yes"}, "public_address must be true or false"),
    ],
)
def test_bad_choices_are_400_naming_the_field(api: Any, journey: Journey, choices: dict[str, Any], named: str) -> None:
    for path in ("/requests/quote", "/requests"):
        status, refused = api("zhangwei").post(path, _body(journey, **choices))
        assert status == 400, refused
        assert named in refused["message"]


def test_another_users_key_is_not_found(api: Any, journey: Journey, journey_rt: Runtime) -> None:
    theirs = _key_of(journey_rt, "wangfang")
    status, refused = api("zhangwei").post("/requests", _body(journey, ssh_key_id=theirs))
    assert status == 400
    assert refused["error"] == "request_invalid"
    assert "ssh_key_id: no such SSH key of yours" in refused["message"]


def test_the_catalog_lists_volume_types_and_the_address(api: Any, journey: Journey) -> None:
    status, listed = api("zhangwei").get("/catalog?cloud=education")
    assert status == 200
    volumes = {i["cloud_name"]: i["monthly_price"] for i in listed["items"] if i["kind"] == "volume"}
    assert volumes == {"fake": "0.30", "ssd": "0.80"}
    assert [i["monthly_price"] for i in listed["items"] if i["kind"] == "address"] == ["25.00"]
