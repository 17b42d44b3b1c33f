"""The portal's new request: SSH key, user data, data disks and a public address; the preview's cost
lines and the request page (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cloudmgr.keys import services as keys
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ServiceRequest
from tests.keys.keygen import ed25519_key, public_line
from tests.web.helpers import Journey, logged_in, post_form
from tests.web.test_portal_selfservice import NEW, _form, _request_count
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _english(app: Flask, username: str) -> FlaskClient:
    client = logged_in(app, username)
    client.get("/language/en")
    return client


def _key(journey: Journey, username: str, name: str = "laptop") -> int:
    with journey.rt.db.unit_of_work() as uow:
        return keys.add_key(uow.session, journey.actor(username), name, public_line(ed25519_key(), "me@laptop")).id


def _choices(journey: Journey, **overrides: Any) -> dict[str, Any]:
    choices: dict[str, Any] = {
        "zone": "internet",
        "count": "2",
        "disk1_size": "100",
        "disk1_type": journey.item_id("education", "volume", "ssd"),
        "disk2_size": "20",
        "disk2_type": journey.item_id("education", "volume", "fake"),
        "public_address": "y",
        "user_data": "#cloud-config\npackages: [nginx]\n",
    }
    return _form(journey, **(choices | overrides))


def test_the_form_offers_the_users_keys_the_volume_types_and_the_address(app: Flask, journey: Journey) -> None:
    _key(journey, "zhangwei", "mine")
    _key(journey, "wangfang", "theirs")
    html = logged_in(app, "zhangwei").get(NEW).get_data(as_text=True)
    assert 'name="ssh_key"' in html and ">mine · SHA256:" in html and "theirs" not in html
    assert 'name="user_data"' in html and 'name="disk1_size"' in html and 'name="disk2_type"' in html
    assert "¥0.80" in html and "¥0.30" in html  # per GB-month
    assert 'name="public_address"' in html and "¥25.00" in html


def test_the_preview_shows_the_disk_and_address_cost_lines(app: Flask, journey: Journey) -> None:
    client = _english(app, "zhangwei")
    response = post_form(client, NEW, _choices(journey, preview="Preview"))
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    lines = html[html.index('data-testid="cost-lines"') :]
    # m1.small 120 + 100 GB x 0.80 + 20 GB x 0.30 + 25, for two servers.
    assert "¥240.00" in lines and "¥160.00" in lines and "¥12.00" in lines and "¥50.00" in lines
    assert "Data disk 100 GB" in lines and "Public address" in lines
    assert "¥462.00" in html[html.index('data-testid="monthly-cost"') :]
    assert _request_count(journey) == 0


def test_a_submitted_request_shows_key_disks_and_address(app: Flask, journey: Journey) -> None:
    key_id = _key(journey, "zhangwei")
    client = _english(app, "zhangwei")
    response = post_form(client, NEW, _choices(journey, ssh_key=str(key_id), submit="Submit"))
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "laptop" in page and "SHA256:" in page[page.index('data-testid="ssh-key"') :]
    disks = page[page.index('data-testid="data-disks"') :]
    assert "100 GB, ssd" in disks and "20 GB, fake" in disks
    assert 'data-testid="public-address"' in page
    assert "nginx" not in page  # the user data itself is not shown
    with journey.rt.db.unit_of_work() as uow:
        stored = uow.session.scalars(select(ServiceRequest)).one()
        assert stored.public_address and len(stored.data_disks) == 2 and stored.ssh_key_name == "laptop"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"zone": "extranet"}, "A public address is only given in the internet zone, not in the "),
        ({"disk1_size": "10240"}, "A data disk is 1 to 2048 GB."),
        ({"disk1_size": "-1"}, "A data disk is 1 to 2048 GB."),
        ({"user_data": "配" * 6000}, "User data: at most 16 KiB (UTF-8)."),
    ],
)
def test_bad_choices_are_refused_with_a_message(
    app: Flask, journey: Journey, overrides: dict[str, Any], message: str
) -> None:
    client = _english(app, "zhangwei")
    response = post_form(client, NEW, _choices(journey, **overrides, submit="Submit"))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _request_count(journey) == 0


def test_another_users_key_is_refused(app: Flask, journey: Journey) -> None:
    theirs = _key(journey, "wangfang")
    client = _english(app, "zhangwei")
    response = post_form(client, NEW, _choices(journey, ssh_key=str(theirs), submit="Submit"))
    assert response.status_code == 400
    assert "SSH key: choose one of your own keys added in this department." in response.get_data(as_text=True)
    assert _request_count(journey) == 0


def test_the_refusal_is_in_the_readers_language(app: Flask, journey: Journey) -> None:
    # Chinese is the default: the refusal's frame and the zone it names are the reader's words
    # (the sentence itself is in the catalogue once the fragment is merged).
    client = logged_in(app, "zhangwei")
    response = post_form(client, NEW, _choices(journey, zone="extranet", submit="提交"))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    summary = html[html.index('class="error-summary"') :]
    summary = summary[: summary.index("</ul>")]
    assert "操作被拒绝：" in summary and "电子政务外网" in summary
    assert "extranet" not in summary


def test_operators_price_volume_types_and_the_address_on_the_catalog_page(app: Flask, journey: Journey) -> None:
    client = _english(app, "operator")
    html = client.get("/ops/catalog?cloud=education").get_data(as_text=True)
    volume_types = html[html.index("Volume types of") :]
    assert "<code>ssd</code>" in volume_types and 'value="0.80"' in volume_types
    addresses = html[html.index("Public addresses of") :]
    assert "<code>floating IP</code>" in addresses and 'value="25.00"' in addresses
