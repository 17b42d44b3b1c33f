"""各部门资源 / Department resources on the operators' and administrators' pages and
GET /api/v1/departments/<key>/resources (issue 16), on the simulated cloud; and a firewall rule
kept once per address family shown as one line wherever rules are listed."""

from __future__ import annotations

import dataclasses
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cloudmgr.backups import services as backups
from cloudmgr.firewall import services as firewall
from cloudmgr.keys import services as keys
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.quoting import DataDisk
from cloudmgr.storage import services as storage
from tests.keys.keygen import ed25519_key, public_line
from tests.web.helpers import Journey, logged_in
from web import create_app

PAGE = "/ops/department-resources"
ADMIN_PAGE = "/admin/department-resources"
API = "/api/v1/departments/prov-education/resources"
ANY_ADDRESS = "any address (IPv4+IPv6)"


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _english(app: Flask, username: str) -> FlaskClient:
    client = logged_in(app, username)
    client.get("/language/en")
    return client


def _bearer(journey: Journey, username: str) -> dict[str, str]:
    with journey.rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(uow.session, user, name="t", expires_at=None, actor=Actor.system("test")).token
    return {"Authorization": f"Bearer {token}"}


def _department_with_everything(journey: Journey) -> dict[str, object]:
    """zhangwei's department: a provisioned server with the web template, a public address and a
    data disk, a volume of its own with a snapshot and a backup, an SSH key."""
    operator, staff = journey.actor("operator"), journey.actor("zhangwei")
    with journey.rt.db.unit_of_work() as uow:
        firewall.seed_standard_templates(uow.session, operator)
    form = dataclasses.replace(
        journey.form(1, prefix="webres"),
        zone="internet",
        firewall_templates=("web",),
        public_address=True,
        data_disks=(DataDisk(10, journey.item_id("education", "volume", "fake")),),
    )
    from cloudmgr.servicerequests import services as requests_service

    with journey.rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(
            uow.session, staff, form, submit=True, settings=journey.rt.settings
        ).id
    journey.approve(request_id, "lina", "operator")
    journey.drain()
    assert journey.request_state(request_id) == "active"
    key_line = public_line(ed25519_key(), "zw@laptop")
    with journey.rt.db.unit_of_work() as uow:
        key = keys.add_key(uow.session, staff, "laptop", key_line)
        volume = storage.create_volume(
            uow.session, staff, name="archive", size_gb=20, cloud_key="education", volume_type_name="fake"
        )
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        backups.take_snapshot(uow.session, staff, volume.id)
        backups.back_up_now(uow.session, staff, volume.id)
        backups.set_schedule(uow.session, staff, volume.id, backups.ScheduleForm("weekly", 2, 7, weekday=6))
    journey.drain()
    return {"request": request_id, "fingerprint": key.fingerprint, "key_body": key_line.split()[1]}


def _section(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    return html[start : html.index("</section>", start)]


def test_the_page_picks_a_department_by_name_and_shows_its_resources(app: Flask, journey: Journey) -> None:
    made = _department_with_everything(journey)
    client = _english(app, "operator")
    picker = client.get(PAGE)
    assert picker.status_code == 200
    html = picker.get_data(as_text=True)
    select = html[
        html.index('data-testid="department-select"') : html.index("</select>", html.index("department-select"))
    ]
    # Names are what one reads and searches; the key only travels as the value.
    assert re.search(
        r'<option value="prov-education" data-search="省教育厅 [^"]*prov-education">[^<]*Education', select
    )
    assert 'data-filter-select="department"' in html
    assert 'href="/ops/department-resources"' in html  # in the operators' menu

    html = client.get(f"{PAGE}?department=prov-education").get_data(as_text=True)
    assert str(made["fingerprint"]) in _section(html, "keys")
    assert str(made["key_body"]) not in html  # never the key itself
    volumes = _section(html, "volumes")
    assert "archive" in volumes and "20 GB" in volumes and "fake" in volumes
    rules = _section(html, "firewall-groups")
    assert f"ingress tcp 80 {ANY_ADDRESS}" in rules and f"ingress tcp 443 {ANY_ADDRESS}" in rules
    assert f"egress any {ANY_ADDRESS}" in rules
    assert "0.0.0.0/0" not in rules and "::/0" not in rules  # one line, not two alike
    assert f">#{made['request']}</a>" in rules
    assert "in use" in _section(html, "addresses")
    assert "archive" in _section(html, "snapshots") and "ready" in _section(html, "backups")
    schedules = html[html.index('data-testid="schedules"') :]
    assert "Weekly on Sunday at 02:00, keeps 7" in schedules[: schedules.index("</table>")]
    usage = _section(html, "usage")
    assert 'data-testid="usage-differs"' not in usage
    row = re.search(r'data-usage="education/volumes">(.*?)</tr>', usage, re.S)
    assert row is not None
    listed = re.search(r"<td class=\"num\" data-listed>(\d+)</td>", row.group(1))
    ledger = re.search(r"<td class=\"num\" data-ledger>(\d+) / (\d+)</td>", row.group(1))
    assert listed and ledger and listed.group(1) == ledger.group(1) == "2"

    elsewhere = client.get(f"{PAGE}?department=prov-education&cloud=province-base")
    assert elsewhere.status_code == 200
    other = elsewhere.get_data(as_text=True)
    assert "archive" not in _section(other, "volumes") and str(made["fingerprint"]) in _section(other, "keys")
    assert "No live request chose a firewall." in _section(other, "firewall-groups")


def test_unknown_department_or_cloud_is_said_on_the_page(app: Flask, journey: Journey) -> None:
    client = _english(app, "operator")
    missing = client.get(f"{PAGE}?department=nowhere")
    assert missing.status_code == 404 and "There is no department “nowhere”." in missing.get_data(as_text=True)
    cloud = client.get(f"{PAGE}?department=prov-education&cloud=nowhere")
    assert cloud.status_code == 404 and "There is no cloud “nowhere”." in cloud.get_data(as_text=True)


def test_administrators_read_the_same_page_from_the_departments_list(app: Flask, journey: Journey) -> None:
    made = _department_with_everything(journey)
    client = _english(app, "admin")
    listing = client.get("/admin/departments").get_data(as_text=True)
    assert 'href="/admin/department-resources?department=prov-education"' in listing
    html = client.get(f"{ADMIN_PAGE}?department=prov-education").get_data(as_text=True)
    assert str(made["fingerprint"]) in html and "archive" in html
    assert "/ops/requests/" not in html  # no links into the operators' pages


@pytest.mark.parametrize("username", ["zhangwei", "lina", "finance"])
def test_departments_and_finance_are_refused(app: Flask, journey: Journey, username: str) -> None:
    client = logged_in(app, username)
    assert client.get(f"{PAGE}?department=prov-education").status_code == 403
    assert client.get(f"{ADMIN_PAGE}?department=prov-education").status_code == 403
    assert client.get(API, headers=_bearer(journey, username)).status_code == 403


def test_the_api_gives_the_same_for_operators_and_administrators(app: Flask, journey: Journey) -> None:
    made = _department_with_everything(journey)
    client = app.test_client()
    for username in ("operator", "admin"):
        response = client.get(API, headers=_bearer(journey, username))
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["department"]["key"] == "prov-education" and body["cloud"] is None
        (key,) = body["ssh_keys"]
        assert key["fingerprint"] == made["fingerprint"] and "public_key" not in key
        assert str(made["key_body"]) not in response.get_data(as_text=True)
        assert {v["name"] for v in body["volumes"]} >= {"archive"}
        (group,) = body["firewall_groups"]
        assert group["request_id"] == made["request"] and group["templates"] == ["web"]
        assert [(r["direction"], r["port_min"], r["remote_kind"], r["families"]) for r in group["rules"]] == [
            ("ingress", 80, "any_address", ["IPv4", "IPv6"]),
            ("ingress", 443, "any_address", ["IPv4", "IPv6"]),
            ("egress", None, "any_address", ["IPv4", "IPv6"]),
        ]
        (address,) = body["public_addresses"]
        assert address["state"] == "associated" and address["cloud"] == "education"
        assert [s["state"] for s in body["snapshots"]] == ["ready"]
        assert [b["state"] for b in body["backups"]] == ["ready"]
        (schedule,) = body["backup_schedules"]
        assert (schedule["volume_name"], schedule["frequency"], schedule["weekday"], schedule["keep"]) == (
            "archive",
            "weekly",
            6,
            7,
        )
        education = next(u for u in body["usage"] if u["cloud"] == "education")
        volumes = next(r for r in education["resources"] if r["resource"] == "volumes")
        assert (volumes["listed"], volumes["used"], volumes["agrees"]) == (2, 2, True)

    narrowed = client.get(f"{API}?cloud=education", headers=_bearer(journey, "operator")).get_json()
    assert narrowed["cloud"] == "education" and [u["cloud"] for u in narrowed["usage"]] == ["education"]
    for path, code in (
        (f"{API}?cloud=nowhere", "unknown_cloud"),
        ("/api/v1/departments/nowhere/resources", "unknown_department"),
    ):
        response = client.get(path, headers=_bearer(journey, "operator"))
        assert response.status_code == 404 and response.get_json()["error"] == code


def test_the_openapi_document_lists_the_path(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    operation = doc["paths"]["/api/v1/departments/{key}/resources"]["get"]
    assert "Roles: operator, admin." in operation["description"]
    assert {p["name"] for p in operation["parameters"]} == {"key", "cloud"}
    assert {"200", "401", "403", "404"} <= set(operation["responses"])


def test_world_rules_are_one_line_on_every_page_that_lists_rules(app: Flask, journey: Journey) -> None:
    made = _department_with_everything(journey)
    operator = _english(app, "operator")
    templates = operator.get("/ops/firewall").get_data(as_text=True)
    row = templates[templates.index(">web</a>") :]
    row = row[: row.index("</tr>")]
    assert row.count("<code>") == 2 and f"ingress tcp 80 {ANY_ADDRESS}" in row and "::/0" not in row

    staff = _english(app, "zhangwei")
    form = staff.get("/portal/requests/new?cloud=education").get_data(as_text=True)
    offered = form[form.index('data-testid="firewall"') :]
    assert f"ingress tcp 443 {ANY_ADDRESS}" in offered and "ingress tcp 443 ::/0" not in offered

    page = staff.get(f"/portal/requests/{made['request']}").get_data(as_text=True)
    reason = page[page.index('data-testid="firewall-reason"') :]
    reason = reason[: reason.index("</ul>")]
    assert reason.count("<li>") == 2 and f"ingress tcp 80 {ANY_ADDRESS}" in reason
    rules = _section(page, "request-firewall")
    assert rules.count("<tr>") == 1 + 2  # the header and one line a port
