"""A cloud that is down leaves the rest of cloudmgr working (issue 17), on the simulated clouds.

The Tangshan city cloud (ts-gov) goes down while its department, which also uses the province's
HRSS cloud, has a request on each: the province's provisions, the city's waits (retried, never
failed, past the work queue's usual attempts) and completes once the city cloud is back; the
reachability table says which cloud is down and since when, for every process and page.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from cloudmgr.cloud import CloudUnavailable
from cloudmgr.cloud.simulated import SimulatedProvider
from cloudmgr.db import utcnow
from cloudmgr.organisation import reachability
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, CloudReachability, DepartmentCloud, Role
from cloudmgr.organisation.sync import sync_clouds
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.approvals import approve_request
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.workqueue.models import WorkItem, WorkState
from tests.journey_fixtures import Journey

CITY = "ts-gov"
PROVINCE = "hrss"


def _provider(rt: Runtime, key: str) -> SimulatedProvider:
    with rt.db.unit_of_work() as uow:
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == key))
        assert cloud is not None
        os_cloud, region = cloud.os_cloud, cloud.region
    provider = rt.providers.for_cloud(key, os_cloud, region)
    assert isinstance(provider, SimulatedProvider)
    return provider


def _city_head(rt: Runtime) -> Actor:
    with rt.db.unit_of_work() as uow:
        user = org.create_user(
            uow.session,
            username="ts-head",
            password="a-long-test-password-1",
            role=Role.DEPT_HEAD,
            department_key="ts-hrss",
            actor=Actor.system("test"),
        )
        return Actor.of(user)


def _request(j: Journey, head: Actor, cloud: str, prefix: str) -> int:
    with j.rt.db.unit_of_work() as uow:
        request = requests_service.create_request(
            uow.session,
            j.other_staff,  # wangfang, of ts-hrss
            j.form(1, cloud=cloud, prefix=prefix),
            submit=True,
            settings=j.rt.settings,  # type: ignore[arg-type]
        )
        request_id = request.id
    for actor in (head, j.operator):
        with j.rt.db.unit_of_work() as uow:
            approve_request(uow.session, actor, request_id, reason="ok")
    return request_id


def _state(j: Journey, request_id: int) -> tuple[str, list[str]]:
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None
        return request.state, [s.state for s in request.servers]


def _status(j: Journey, key: str) -> reachability.CloudStatus:
    with j.rt.db.unit_of_work() as uow:
        (status,) = reachability.cloud_statuses(uow.session, cloud_keys=[key])
        return status


def test_a_simulated_cloud_made_unreachable_raises_what_openstack_raises_and_is_recorded(journey: Journey) -> None:
    city = _provider(journey.rt, CITY)
    city.set_unreachable("connection refused (test)")
    with pytest.raises(CloudUnavailable) as raised:
        city.list_flavors()
    assert raised.value.status_code is None and raised.value.request_reached_server is False
    assert raised.value.cloud_key == CITY
    down = _status(journey, CITY)
    assert not down.reachable and down.failure_kind == reachability.REFUSED
    assert down.unreachable_since is not None and "connection refused (test)" in (down.failure_detail or "")
    assert _status(journey, PROVINCE).reachable

    city.set_unreachable(None)
    assert city.list_flavors()
    back = _status(journey, CITY)
    assert back.reachable and back.last_success_at is not None and back.last_success_at >= down.unreachable_since


def test_sync_creates_each_departments_project_on_every_cloud_it_uses_and_goes_on_past_one_down(
    journey: Journey,
) -> None:
    rt = journey.rt
    with rt.db.unit_of_work() as uow:  # forget the projects the fixture's sync recorded
        uow.session.execute(update(DepartmentCloud).values(project_id=None))
    _provider(rt, CITY).set_unreachable()
    results = {r.cloud_key: r for r in sync_clouds(rt.db, rt.providers, actor=Actor.system("test"))}
    assert not results[CITY].ok and "could not be reached" in results[CITY].problems[0]
    assert all(r.ok for key, r in results.items() if key != CITY)
    with rt.db.unit_of_work() as uow:
        links = {
            (link.department.key, link.cloud.key): link.project_id
            for link in uow.session.scalars(select(DepartmentCloud))
        }
    assert links[("ts-hrss", PROVINCE)] and links[("ts-hrss", CITY)] is None
    assert all(project for (_, cloud), project in links.items() if cloud != CITY)

    _provider(rt, CITY).set_unreachable(None)
    assert all(r.ok for r in sync_clouds(rt.db, rt.providers, actor=Actor.system("test"), only=CITY))
    with rt.db.unit_of_work() as uow:
        city_projects = uow.session.scalars(
            select(DepartmentCloud.project_id).join(Cloud).where(Cloud.key == CITY)
        ).all()
    assert city_projects and all(city_projects)


def test_province_request_provisions_while_the_city_is_down_and_the_citys_completes_when_it_is_back(
    journey: Journey,
) -> None:
    rt = journey.rt
    head = _city_head(rt)
    city = _provider(rt, CITY)
    city.set_unreachable()
    city_request = _request(journey, head, CITY, "city")
    province_request = _request(journey, head, PROVINCE, "prov")

    journey.drain()
    assert _state(journey, province_request) == ("active", ["active"])
    assert _state(journey, city_request) == ("provisioning", ["building"])  # asked for, not booted
    with rt.db.unit_of_work() as uow:
        item = uow.session.scalar(
            select(WorkItem).where(WorkItem.kind == "provision", WorkItem.state == WorkState.QUEUED.value)
        )
        assert item is not None and f"cloud {CITY} unreachable since" in (item.last_error or "")
        # Waiting far longer than its attempts allow: still held, never failed, while within the grace.
        item.attempts = item.max_attempts + 3
        item.run_after = utcnow()
        # The retry is bounded (the city's work resumes soon after it is back).
        assert item.run_after - utcnow() < timedelta(seconds=rt.settings.cloud_unreachable_retry_seconds + 1)
    journey.drain()
    assert _state(journey, city_request) == ("provisioning", ["building"])
    assert not _status(journey, CITY).reachable

    city.set_unreachable(None)
    with rt.db.unit_of_work() as uow:
        uow.session.execute(update(WorkItem).where(WorkItem.state == WorkState.QUEUED.value).values(run_after=utcnow()))
    journey.drain()
    assert _state(journey, city_request) == ("active", ["active"])
    assert _status(journey, CITY).reachable


def test_past_the_grace_period_the_work_queue_gives_up_as_before(journey: Journey) -> None:
    rt = journey.rt
    head = _city_head(rt)
    _provider(rt, CITY).set_unreachable()
    city_request = _request(journey, head, CITY, "city")
    journey.drain()
    with rt.db.unit_of_work() as uow:
        uow.session.execute(
            update(CloudReachability).values(
                unreachable_since=utcnow() - timedelta(seconds=rt.settings.cloud_unreachable_grace_seconds + 60)
            )
        )
        uow.session.execute(
            update(WorkItem)
            .where(WorkItem.state == WorkState.QUEUED.value)
            .values(attempts=WorkItem.max_attempts - 1, run_after=utcnow())
        )
    journey.drain()
    state, servers = _state(journey, city_request)
    assert state == "failed" and servers == ["error"]


def test_quota_reconcile_checks_the_other_clouds_and_asks_the_one_down_once(journey: Journey) -> None:
    from cloudmgr.quotas.cloudsync import reconcile

    rt = journey.rt
    with rt.db.unit_of_work() as uow:
        city_projects = len(uow.session.scalars(select(DepartmentCloud.id).join(Cloud).where(Cloud.key == CITY)).all())
    assert city_projects >= 2
    _provider(rt, CITY).set_unreachable()
    result = reconcile(rt.db, rt.providers)
    city_problems = [p for p in result.problems if p.split(":")[0].endswith(f" on {CITY}")]
    assert len(city_problems) == city_projects
    assert sum("could not be reached" in p for p in city_problems) == 1
    assert sum("unreachable, not checked" in p for p in city_problems) == city_projects - 1
    assert result.checked > 0 and all(CITY not in p for p in result.problems if p not in city_problems)
