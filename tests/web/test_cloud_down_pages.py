"""A cloud that is down, on the pages (issue 17): the operators' pages (capacity, orphans,
quotas, catalog, clouds) and a department's (home, request form, servers) say which cloud cannot
be reached and since when, in Chinese and in English, and show the other clouds as usual; a
request for the cloud that is down is still accepted and the form says it waits for the cloud.
Another department, whose clouds are up, is told nothing."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import select

from cloudmgr.cloud.simulated import SimulatedProvider
from cloudmgr.organisation.models import Cloud
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ServiceRequest
from tests.web.helpers import Journey, logged_in
from web import create_app

DOWN = "province-base"  # one of zhangwei's department's two clouds (the other: education)
OPERATOR_PAGES = (
    ("operator", "/ops/capacity"),
    ("operator", "/ops/orphans"),
    ("operator", "/ops/quotas"),
    ("operator", "/ops/catalog"),
    ("admin", "/admin/clouds"),
    ("admin", "/admin/quotas"),
)
STAFF_PAGES = ("/portal/", "/portal/requests/new", "/portal/servers")


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _take_down(rt: Runtime) -> SimulatedProvider:
    with rt.db.unit_of_work() as uow:
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == DOWN))
        assert cloud is not None
        provider = rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
    assert isinstance(provider, SimulatedProvider)
    provider.set_unreachable("connection refused")
    try:
        provider.list_flavors()
    except Exception as exc:  # the first call finds it down, and cloudmgr records it
        assert "could not be reached" in str(exc)
    else:
        raise AssertionError("the simulated cloud answered while down")
    return provider


def _banners(html: str) -> list[str]:
    return [part.split("</div>")[0] for part in html.split('class="flash flash-warning cloud-unreachable"')[1:]]


def test_operator_pages_name_the_unreachable_cloud_and_show_the_others(app: Flask, journey: Journey) -> None:
    provider = _take_down(journey.rt)
    clients = {username: logged_in(app, username) for username in ("operator", "admin")}
    for username, path in OPERATOR_PAGES:
        response = clients[username].get(f"{path}?lang=en")
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        [banner] = _banners(html)
        assert f'data-cloud="{DOWN}"' in banner, path
        assert "is unreachable (since " in banner and "(connection refused)" in banner, path
    clouds = clients["admin"].get("/admin/clouds?lang=en").get_data(as_text=True)
    table = clouds.split('class="data-table cloud-status"')[1].split("</table>")[0]
    rows = {row.split('"')[0]: row for row in table.split('<tr data-cloud="')[1:]}
    assert "Unreachable since" in rows[DOWN]
    assert all("Unreachable" not in row for key, row in rows.items() if key != DOWN)
    assert "education" in rows and "Reachable" in rows["education"]

    provider.set_unreachable(None)
    provider.list_flavors()
    for username, path in OPERATOR_PAGES:
        assert _banners(clients[username].get(f"{path}?lang=en").get_data(as_text=True)) == [], path


def test_department_pages_say_requests_wait_for_the_cloud_and_are_accepted(app: Flask, journey: Journey) -> None:
    _take_down(journey.rt)
    staff = logged_in(app, "zhangwei")
    for path in STAFF_PAGES:
        response = staff.get(f"{path}?lang=en")
        assert response.status_code == 200, path
        [banner] = _banners(response.get_data(as_text=True))
        assert f'data-cloud="{DOWN}"' in banner and "is unreachable (since " in banner, path
    form = staff.get("/portal/requests/new?lang=en").get_data(as_text=True)
    assert "Requests for it are still accepted" in _banners(form)[0]
    # Another department, whose clouds answer, is told nothing.
    other = logged_in(app, "wangfang")
    for path in STAFF_PAGES:
        assert _banners(other.get(f"{path}?lang=en").get_data(as_text=True)) == [], path

    # The request for the cloud that is down is accepted (submitted, waiting for approval).
    request_id = journey.submit("zhangwei", count=1, cloud=DOWN, prefix="down")
    with journey.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None and request.state == "submitted"
    # Approved, it waits for the cloud: its page says so (only about its own cloud).
    journey.approve(request_id, "lina", "operator")
    [banner] = _banners(staff.get(f"/portal/requests/{request_id}?lang=en").get_data(as_text=True))
    assert f'data-cloud="{DOWN}"' in banner and "provisioned when the cloud is back" in banner
    other_cloud = journey.submit("zhangwei", count=1, prefix="up")  # education: up
    journey.approve(other_cloud, "lina", "operator")
    assert _banners(staff.get(f"/portal/requests/{other_cloud}?lang=en").get_data(as_text=True)) == []


def test_the_banner_reads_in_chinese(app: Flask, journey: Journey) -> None:
    """Passes once /work/po-fragments/clouddown.po is merged into the catalogue."""
    _take_down(journey.rt)
    operator = logged_in(app, "operator")
    [banner] = _banners(operator.get("/ops/capacity?lang=zh").get_data(as_text=True))
    assert "省统一公共基础云平台" in banner or "无法连接" in banner
    assert "无法连接（自 " in banner and " 起）" in banner
    assert "拒绝连接" in banner
    staff = logged_in(app, "zhangwei")
    [banner] = _banners(staff.get("/portal/requests/new?lang=zh").get_data(as_text=True))
    assert "仍可提交" in banner


def test_metrics_say_since_when_a_cloud_cannot_be_reached(app: Flask, journey: Journey) -> None:
    """What the alert CloudmgrCloudDown reads (deploy/prometheus/alerts.yml)."""
    client = app.test_client()
    client.get("/login")
    before = client.get("/metrics").get_data(as_text=True)
    assert f'cloudmgr_cloud_unreachable_since_timestamp_seconds{{cloud="{DOWN}"}} 0.0' in before
    provider = _take_down(journey.rt)
    exported = client.get("/metrics").get_data(as_text=True)
    match = re.search(rf'^cloudmgr_cloud_unreachable_since_timestamp_seconds{{cloud="{DOWN}"}} (\S+)$', exported, re.M)
    assert match and float(match.group(1)) > 1.7e9
    assert 'cloudmgr_cloud_unreachable_since_timestamp_seconds{cloud="education"} 0.0' in exported
    provider.set_unreachable(None)
    provider.list_flavors()
    after = client.get("/metrics").get_data(as_text=True)
    assert f'cloudmgr_cloud_unreachable_since_timestamp_seconds{{cloud="{DOWN}"}} 0.0' in after


def test_the_api_says_which_cloud_cannot_be_reached(app: Flask, journey: Journey) -> None:
    from datetime import timedelta

    from cloudmgr.db import utcnow
    from cloudmgr.organisation import services as org
    from cloudmgr.organisation.actor import Actor

    with journey.rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, "zhangwei")
        token = org.issue_token(
            uow.session, user, name="t", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        ).token
    _take_down(journey.rt)
    response = app.test_client().get("/api/v1/clouds", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    clouds = {c["key"]: c["reachability"] for c in response.get_json()["items"]}
    assert set(clouds) == {DOWN, "education"}  # the department's clouds
    assert clouds[DOWN]["reachable"] is False and clouds[DOWN]["unreachable_since"]
    assert clouds[DOWN]["failure_kind"] == "refused"
    assert clouds["education"]["reachable"] is True and clouds["education"]["failure_kind"] is None
