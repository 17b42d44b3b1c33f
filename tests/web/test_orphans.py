"""The operator's orphans page and API for tagged volumes and floating IPs no request owns
(issue 16): listed after the reconcile job, adopted or deleted by an operator (work items run
later), refused with the reason, and closed to everyone else."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.jobs import reconcile_requests
from cloudmgr.servicerequests.orphans import OrphanResolution, OrphanResource
from tests.web.helpers import Journey, csrf_token, logged_in
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _education(journey: Journey) -> tuple[CloudProvider, str, str]:
    """The simulated provider, zhangwei's department's project and the public network on 教育云,
    with room in the ledger for two volumes of 50 GB and one address."""
    with journey.rt.db.unit_of_work() as uow:
        staff = org.get_user_by_name(uow.session, "zhangwei")
        link = uow.session.scalar(
            select(DepartmentCloud)
            .join(Cloud)
            .where(DepartmentCloud.department_id == staff.department_id, Cloud.key == "education")
        )
        assert link is not None and link.project_id and link.cloud.external_network
        cloud = link.cloud
        ledger.set_limits(
            uow.session,
            link.department_id,
            cloud.id,
            {Resource.VOLUMES: 2, Resource.GIGABYTES: 50, Resource.FLOATING_IPS: 1},
        )
        provider = journey.rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
        return provider, link.project_id, cloud.external_network


def _orphan_ids(journey: Journey) -> dict[str, int]:
    with journey.rt.db.unit_of_work() as uow:
        return {o.tag: o.id for o in uow.session.scalars(select(OrphanResource))}


def _resolution(journey: Journey, orphan_id: int) -> OrphanResolution | None:
    with journey.rt.db.unit_of_work() as uow:
        orphan = uow.session.get(OrphanResource, orphan_id)
        assert orphan is not None
        return orphan.resolution


def _api_token(journey: Journey, username: str) -> dict[str, str]:
    with journey.rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(uow.session, user, name="test", expires_at=None, actor=Actor.system("test")).token
    return {"Authorization": f"Bearer {token}"}


def test_operator_adopts_and_deletes_from_the_page(app: Flask, journey: Journey) -> None:
    provider, project, public = _education(journey)
    volume = provider.create_volume(project, "stray-disk", 20, None, "cm-r800-s1-d1")
    address = provider.allocate_floating_ip(project, public, "cm-r800-s1-ip")
    reconcile_requests(journey.rt.db, journey.rt.providers, hold_days=14)
    ids = _orphan_ids(journey)
    ops = logged_in(app, "operator")
    html = ops.get("/ops/orphans").get_data(as_text=True)
    assert "stray-disk" in html and volume.id in html and address.address in html and "cm-r800-s1-ip" in html
    token = csrf_token(html)
    response = ops.post(f"/ops/orphans/resources/{ids['cm-r800-s1-d1']}/adopt", data={"csrf_token": token})
    assert response.status_code == 302
    response = ops.post(f"/ops/orphans/resources/{ids['cm-r800-s1-ip']}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    # Asked twice: refused with the reason, on the page.
    response = ops.post(f"/ops/orphans/resources/{ids['cm-r800-s1-ip']}/delete", data={"csrf_token": token})
    assert response.status_code == 409
    refusal = re.search(r'class="flash flash-error"[^>]*>(.*?)</div>', response.get_data(as_text=True), re.S)
    assert refusal is not None and address.address in refusal.group(1)
    journey.drain()
    assert _resolution(journey, ids["cm-r800-s1-d1"]) == OrphanResolution.ADOPTED
    assert _resolution(journey, ids["cm-r800-s1-ip"]) == OrphanResolution.DELETED
    assert address.id not in {a.id for a in provider.list_floating_ips(project)}
    html = ops.get("/ops/orphans?all=1").get_data(as_text=True)
    assert "stray-disk" in html


def test_adoption_that_does_not_fit_is_refused_on_the_page_and_the_api(app: Flask, journey: Journey) -> None:
    provider, project, _public = _education(journey)
    provider.create_volume(project, "huge", 60, None, "cm-r801-s1-d1")
    reconcile_requests(journey.rt.db, journey.rt.providers, hold_days=14)
    orphan_id = _orphan_ids(journey)["cm-r801-s1-d1"]
    ops = logged_in(app, "operator")
    token = csrf_token(ops.get("/ops/orphans").get_data(as_text=True))
    response = ops.post(f"/ops/orphans/resources/{orphan_id}/adopt", data={"csrf_token": token})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert 'class="flash flash-error" role="alert"' in html and "huge" in html  # the page again, with the refusal
    client = app.test_client()
    response = client.post(
        f"/api/v1/orphans/{orphan_id}/actions", json={"action": "adopt"}, headers=_api_token(journey, "operator")
    )
    assert response.status_code == 409
    body: Any = response.get_json()
    assert body["error"] == "quota_exceeded" and "volume_gb limit 50" in body["message"]


def test_api_lists_and_acts_for_operators_only(app: Flask, journey: Journey) -> None:
    provider, project, _public = _education(journey)
    volume = provider.create_volume(project, "stray-disk", 5, None, "cm-r802-s1-d1")
    reconcile_requests(journey.rt.db, journey.rt.providers, hold_days=14)
    client = app.test_client()
    operator = _api_token(journey, "operator")
    items = client.get("/api/v1/orphans", headers=operator).get_json()["items"]
    assert [(o["kind"], o["resource_id"], o["size_gb"]) for o in items] == [("volume", volume.id, 5)]
    orphan_id = items[0]["id"]
    for username in ("zhangwei", "lina", "finance"):
        headers = _api_token(journey, username)
        assert client.get("/api/v1/orphans", headers=headers).status_code == 403
        response = client.post(f"/api/v1/orphans/{orphan_id}/actions", json={"action": "delete"}, headers=headers)
        assert response.status_code == 403
    staff = logged_in(app, "zhangwei")
    assert staff.get("/ops/orphans").status_code == 403
    assert _resolution(journey, orphan_id) is None
    response = client.post(f"/api/v1/orphans/{orphan_id}/actions", json={"action": "delete"}, headers=operator)
    assert response.status_code == 202 and response.get_json()["pending_action"] == "delete"
    assert client.post("/api/v1/orphans/999999/actions", json={"action": "delete"}, headers=operator).status_code == 404
    journey.drain()
    assert _resolution(journey, orphan_id) == OrphanResolution.DELETED
    assert volume.id not in {v.id for v in provider.list_volumes(project)}


FLASH = re.compile(r'<div class="flash flash-(\w+)"[^>]*>(.*?)</div>', re.S)


def test_operator_adopts_several_at_once_and_the_one_over_quota_is_named(app: Flask, journey: Journey) -> None:
    provider, project, _public = _education(journey)  # room for two volumes of 50 GB in all
    for n in (1, 2, 3):
        provider.create_volume(project, f"stray-{n}", 20, None, f"cm-r81{n}-s1-d1")
    reconcile_requests(journey.rt.db, journey.rt.providers, hold_days=14)
    ids = _orphan_ids(journey)
    chosen = [ids["cm-r811-s1-d1"], ids["cm-r812-s1-d1"], ids["cm-r813-s1-d1"]]
    ops = logged_in(app, "operator")
    html = ops.get("/ops/orphans").get_data(as_text=True)
    assert all(f'value="{orphan_id}" form="bulk-orphans"' in html for orphan_id in chosen)
    assert 'data-testid="bulk-delete"' in html and "data-confirm=" in html
    response = ops.post(
        "/ops/orphans/resources/bulk",
        data={"csrf_token": csrf_token(html), "orphan_id": chosen, "adopt": "1"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    flashes = FLASH.findall(response.get_data(as_text=True))
    assert [kind for kind, _text in flashes] == ["success", "error"]
    assert "2" in flashes[0][1]
    assert "stray-3" in flashes[1][1]  # the one that no longer fits, with the quota's reason
    journey.drain()
    assert [_resolution(journey, orphan_id) for orphan_id in chosen] == [
        OrphanResolution.ADOPTED,
        OrphanResolution.ADOPTED,
        None,
    ]


def test_orphans_search_filter_and_bad_filters(app: Flask, journey: Journey) -> None:
    provider, project, public = _education(journey)
    provider.create_volume(project, "findme-disk", 20, None, "cm-r820-s1-d1")
    address = provider.allocate_floating_ip(project, public, "cm-r820-s1-ip")
    reconcile_requests(journey.rt.db, journey.rt.providers, hold_days=14)
    ops = logged_in(app, "operator")
    html = ops.get("/ops/orphans?q=findme").get_data(as_text=True)
    assert "findme-disk" in html and address.address not in html
    html = ops.get("/ops/orphans?kind=address").get_data(as_text=True)
    assert "findme-disk" not in html and address.address in html
    html = ops.get("/ops/orphans?kind=server").get_data(as_text=True)
    assert "findme-disk" in html and address.address in html and 'role="status">' in html
    assert ops.get("/ops/orphans?page=-5&per_page=99999999999&servers_page=x").status_code == 200
    response = ops.post("/ops/orphans/resources/bulk", data={"csrf_token": csrf_token(html), "adopt": "1"})
    assert response.status_code == 400
