"""The self-service journey on the simulated cloud (the lab journey is in test_lab_journey.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.errors import (
    InvalidTransition,
    NotYourTurn,
    RequestInvalid,
    RequestNotFound,
    ServerNotFound,
)
from cloudmgr.servicerequests.jobs import handle_expiry, reconcile_requests
from cloudmgr.servicerequests.models import ManagedServer, RequestEvent, ServiceRequest
from cloudmgr.servicerequests.services import RequestFilter
from tests.journey_fixtures import Journey


def _submit(j: Journey, count: int = 3, **kwargs: object) -> int:
    with j.rt.db.unit_of_work() as uow:
        request = requests_service.create_request(
            uow.session,
            j.staff,
            j.form(count, **kwargs),
            submit=True,
            settings=j.rt.settings,  # type: ignore[arg-type]
        )
        return request.id


def _approve_all(j: Journey, request_id: int) -> None:
    for actor in (j.head, j.operator):
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actor, request_id, reason="ok")


def _balance(j: Journey, cloud: str = "education") -> dict[Resource, tuple[int, int]]:
    with j.rt.db.unit_of_work() as uow:
        dept = j.staff.department_id
        assert dept is not None
        from cloudmgr.organisation.models import Cloud

        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == cloud))
        assert cloud_id is not None
        bal = ledger.balance(uow.session, dept, cloud_id)
        return {r: (b.reserved, b.used) for r, b in bal.resources.items()}


def test_quote_shows_cost_quota_left_and_chain(journey: Journey) -> None:
    with journey.rt.db.unit_of_work() as uow:
        quote = requests_service.quote(uow.session, journey.staff, journey.form(3))
    assert quote.monthly_cost == 360  # 3 × m1.small at 120 yuan
    assert quote.needs[Resource.INSTANCES] == 3 and quote.free[Resource.INSTANCES] == 8 and quote.fits
    assert quote.approval_steps == ["dept_head", "operator"]


def test_full_journey_provisions_and_converts_the_reservation(journey: Journey) -> None:
    request_id = _submit(journey)
    assert _balance(journey)[Resource.INSTANCES] == (3, 0)
    _approve_all(journey, request_id)
    assert journey.drain() >= 1
    with journey.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None
        assert request.state == "active"
        assert [s.state for s in request.servers] == ["active"] * 3
        assert [s.name for s in request.servers] == ["lic-01", "lic-02", "lic-03"]
        actions = [(e.action, e.actor, e.to_state) for e in request.events]
        assert actions == [
            ("create", "zhangwei", "draft"),
            ("submit", "zhangwei", "submitted"),
            ("approve", "lina", "submitted"),
            ("approve", "operator", "approved"),
            ("provision", "system:provisioning", "provisioning"),
            ("provisioned", "system:provisioning", "active"),
        ]
        assert uow.session.scalars(select(AuditEvent).where(AuditEvent.target_type == "service_request")).all()
    assert _balance(journey)[Resource.INSTANCES] == (0, 3)
    assert _balance(journey)[Resource.CORES] == (0, 3)


def test_fourth_request_beyond_quota_is_refused_with_resource_limit_and_free(journey: Journey) -> None:
    _submit(journey, 3)
    _submit(journey, 3, prefix="two")
    with pytest.raises(QuotaExceeded) as info, journey.rt.db.unit_of_work() as uow:
        requests_service.create_request(
            uow.session, journey.staff, journey.form(3, prefix="three"), submit=True, settings=journey.rt.settings
        )
    assert "instances limit 8, 2 free, 3 requested" in str(info.value)
    with journey.rt.db.unit_of_work() as uow:
        assert len(uow.session.scalars(select(ServiceRequest)).all()) == 2  # nothing half-written


def test_only_the_right_role_and_department_approves(journey: Journey) -> None:
    request_id = _submit(journey)
    with pytest.raises(NotYourTurn), journey.rt.db.unit_of_work() as uow:
        requests_service.approve_request(uow.session, journey.operator, request_id)  # the head comes first
    with pytest.raises(NotYourTurn), journey.rt.db.unit_of_work() as uow:
        requests_service.approve_request(uow.session, journey.staff, request_id)
    with pytest.raises(RequestNotFound), journey.rt.db.unit_of_work() as uow:
        requests_service.approve_request(uow.session, journey.other_staff, request_id)  # another department


def test_departments_never_see_each_other(journey: Journey) -> None:
    request_id = _submit(journey)
    with journey.rt.db.unit_of_work() as uow:
        rows, total = requests_service.list_requests(uow.session, journey.other_staff, RequestFilter())
        assert (rows, total) == ([], 0)
        with pytest.raises(RequestNotFound):
            requests_service.get_request(uow.session, journey.other_staff, request_id)
        rows, total = requests_service.list_requests(uow.session, journey.operator, RequestFilter())
        assert total == 1


def test_reject_and_cancel_release_the_quota(journey: Journey) -> None:
    first = _submit(journey)
    second = _submit(journey, prefix="two")
    with journey.rt.db.unit_of_work() as uow:
        with pytest.raises(RequestInvalid, match="reason"):
            requests_service.reject_request(uow.session, journey.head, first, reason=" ")
        requests_service.reject_request(uow.session, journey.head, first, reason="use the shared system")
        requests_service.cancel_request(uow.session, journey.staff, second, reason="not needed")
    assert _balance(journey)[Resource.INSTANCES] == (0, 0)
    with journey.rt.db.unit_of_work() as uow:
        states = {r.id: r.state for r in uow.session.scalars(select(ServiceRequest))}
        assert states == {first: "rejected", second: "cancelled"}
        with pytest.raises(InvalidTransition):
            requests_service.approve_request(uow.session, journey.head, first)


def test_finance_joins_the_chain_above_the_threshold(journey: Journey) -> None:
    # The health cloud adds finance above 1,000 yuan a month (etc/government-clouds.yaml).
    from cloudmgr.organisation.actor import Actor
    from cloudmgr.organisation.models import Department, Role

    form = journey.form(3, cloud="health", flavor="m1.large", prefix="his")
    with journey.rt.db.unit_of_work() as uow:
        dept = uow.session.scalar(select(Department).where(Department.key == "prov-health"))
        assert dept is not None
        health_staff = Actor("hs", Role.DEPT_STAFF, department_id=dept.id)
        request = requests_service.create_request(
            uow.session, health_staff, form, submit=True, settings=journey.rt.settings
        )
        assert request.monthly_cost == 3 * 540
        assert request.approval_steps == ["dept_head", "operator", "finance"]


def test_bad_input_is_refused_clearly(journey: Journey) -> None:
    from dataclasses import replace

    base = journey.form(1)
    cases = [
        ("count must be between 1 and 100", replace(base, count=0)),
        ("count must be between 1 and 100", replace(base, count=101)),
        ("name prefix", replace(base, name_prefix="Bad Prefix!")),
        ("justification is required", replace(base, justification="  ")),
        ("expiry date must be in the future", replace(base, expires_on=date.today())),
        ("has no 'intranet' zone", replace(base, zone="intranet")),
        ("may not use cloud 'health'", replace(base, cloud_key="health")),
        ("choose a flavor offered", replace(base, flavor_item_id=999999)),
    ]
    for message, form in cases:
        with pytest.raises(RequestInvalid, match=message), journey.rt.db.unit_of_work() as uow:
            requests_service.create_request(uow.session, journey.staff, form, submit=True, settings=journey.rt.settings)


def test_cloud_refusal_fails_the_server_with_its_reason_and_releases_quota(journey: Journey) -> None:
    request_id = _submit(journey, 2)
    _approve_all(journey, request_id)
    # The cloud's own quota is lower than the ledger thinks (changed behind our back).
    with journey.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None
        from cloudmgr.organisation.models import DepartmentCloud

        link = uow.session.scalar(
            select(DepartmentCloud).where(
                DepartmentCloud.department_id == request.department_id, DepartmentCloud.cloud_id == request.cloud_id
            )
        )
        assert link is not None and link.project_id
        provider = journey.rt.providers.for_cloud(request.cloud.key, request.cloud.os_cloud, request.cloud.region)
        project_id = link.project_id
    from cloudmgr.quotas.resources import quota_set_with

    provider.set_quota(project_id, quota_set_with(provider.get_quota(project_id), {Resource.INSTANCES: 1}))
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None
        assert request.state == "partially_active"
        failed = [s for s in request.servers if s.state == "error"]
        assert len(failed) == 1 and failed[0].fault and "quota exceeded in the cloud" in failed[0].fault
    assert _balance(journey)[Resource.INSTANCES] == (0, 1)

    # An operator raises the cloud quota back and retries: a new attempt, a new key.
    provider.set_quota(project_id, quota_set_with(provider.get_quota(project_id), {Resource.INSTANCES: 8}))
    with journey.rt.db.unit_of_work() as uow:
        with pytest.raises(NotYourTurn):
            requests_service.retry_server(uow.session, journey.staff, failed[0].id)
        server = requests_service.retry_server(uow.session, journey.operator, failed[0].id)
        assert server.idempotency_key.endswith("-a2")
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None and request.state == "active"
    assert len([s for s in provider.iter_servers(project_id)]) == 2


def test_stop_start_delete_and_retire(journey: Journey) -> None:
    request_id = _submit(journey, 1)
    _approve_all(journey, request_id)
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        server_id = uow.session.scalars(select(ManagedServer.id)).one()
        requests_service.server_action(uow.session, journey.staff, server_id, "stop")
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.get(ManagedServer, server_id).state == "stopped"  # type: ignore[union-attr]
        requests_service.server_action(uow.session, journey.staff, server_id, "start")
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        with pytest.raises(RequestInvalid, match="type the server's name"):
            requests_service.server_action(uow.session, journey.staff, server_id, "delete", confirm="yes")
        with pytest.raises(ServerNotFound):  # another department's server does not exist for them
            requests_service.server_action(uow.session, journey.other_staff, server_id, "stop")
    with journey.rt.db.unit_of_work() as uow:
        requests_service.server_action(uow.session, journey.staff, server_id, "delete", confirm="lic-01")
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.get(ManagedServer, server_id).state == "deleted"  # type: ignore[union-attr]
        assert uow.session.get(ServiceRequest, request_id).state == "retired"  # type: ignore[union-attr]
    assert _balance(journey)[Resource.INSTANCES] == (0, 0)


def test_expiry_reminds_then_stops_never_deletes(journey: Journey) -> None:
    request_id = _submit(journey, 1)
    _approve_all(journey, request_id)
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        server = uow.session.scalars(select(ManagedServer)).one()
        expires = server.expires_on
    reminder_day = expires - timedelta(days=10)
    report = handle_expiry(journey.rt.db, reminder_days=14, grace_days=7, today=reminder_day)
    assert report.reminded == ["lic-01"] and report.stopped == []
    assert handle_expiry(journey.rt.db, reminder_days=14, grace_days=7, today=reminder_day).reminded == []
    late = handle_expiry(journey.rt.db, reminder_days=14, grace_days=7, today=expires + timedelta(days=8))
    assert late.stopped == ["lic-01"]
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        server = uow.session.scalars(select(ManagedServer)).one()
        assert server.state == "stopped"  # stopped, never deleted without a human
        requests_service.extend_expiry(uow.session, journey.staff, server.id, date.today() + timedelta(days=400))


def test_resize_goes_through_approval(journey: Journey) -> None:
    request_id = _submit(journey, 1)
    _approve_all(journey, request_id)
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        server = uow.session.scalars(select(ManagedServer)).one()
        from cloudmgr.catalog.models import CatalogItem

        medium = uow.session.scalar(
            select(CatalogItem).where(CatalogItem.cloud_id == server.cloud_id, CatalogItem.cloud_name == "m1.medium")
        )
        assert medium is not None
        resize = requests_service.request_resize(
            uow.session, journey.staff, server.id, medium.id, justification="more load", settings=journey.rt.settings
        )
        resize_id, server_id = resize.id, server.id
    _approve_all(journey, resize_id)
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        server = uow.session.get(ManagedServer, server_id)
        assert server is not None and server.vcpus == 2 and server.ram_mb == 4096
        assert uow.session.get(ServiceRequest, resize_id).state == "active"  # type: ignore[union-attr]
    assert _balance(journey)[Resource.CORES] == (0, 2)


def test_reconcile_resumes_a_request_whose_work_was_lost(journey: Journey) -> None:
    from cloudmgr.workqueue.models import WorkItem

    request_id = _submit(journey, 2)
    _approve_all(journey, request_id)
    with journey.rt.db.unit_of_work() as uow:  # the work item is lost (a bug, a manual deletion…)
        for item in uow.session.scalars(select(WorkItem).where(WorkItem.kind == "provision")):
            uow.session.delete(item)
    report = reconcile_requests(journey.rt.db, journey.rt.providers, hold_days=14)
    assert report.resumed == [request_id]
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.get(ServiceRequest, request_id).state == "active"  # type: ignore[union-attr]
        events = uow.session.scalars(select(RequestEvent).where(RequestEvent.request_id == request_id)).all()
        assert [e.action for e in events][-1] == "provisioned"


def test_orphans_are_reported(journey: Journey) -> None:
    from cloudmgr.cloud import ServerSpec
    from cloudmgr.organisation.models import Cloud, DepartmentCloud

    with journey.rt.db.unit_of_work() as uow:
        link = uow.session.scalar(
            select(DepartmentCloud)
            .join(Cloud)
            .where(DepartmentCloud.department_id == journey.staff.department_id, Cloud.key == "education")
        )
        assert link is not None and link.project_id
        cloud = link.cloud
        provider = journey.rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
        project = link.project_id
    flavor = provider.list_flavors()[0]
    provider.create_server(
        project,
        ServerSpec("stray", flavor.id, provider.list_images()[0].id, provider.list_networks()[0].id, "cm-r999-s1-a1"),
    )
    report = reconcile_requests(journey.rt.db, journey.rt.providers, hold_days=14)
    assert [o.split(":")[0] for o in report.orphans] == ["education"]
    assert reconcile_requests(journey.rt.db, journey.rt.providers, hold_days=14).orphans == []  # reported once
