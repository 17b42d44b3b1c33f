"""Deleting a server with data volumes and a public address (issue 16): the user says whether
the volumes are kept or deleted (nothing happens without the answer), the address is always
released, the ledger follows, and a worker dying midway is taken over to the same end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cloud.simulated.provider import SimulatedProvider
from cloudmgr.db import utcnow
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.errors import ChoiceProblem, InvalidTransition, RequestInvalid
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState
from cloudmgr.workqueue.models import WorkItem
from tests.journey_fixtures import Journey
from tests.servicerequests.test_usable_provisioning import _provider_and_project, _submit_usable


def _one_usable_server(j: Journey) -> tuple[int, int, str]:
    """A provisioned server with one 100 GB data volume and a public address: (request, server row, name)."""
    request_id = _submit_usable(j, count=1)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        assert request.state == "active", [s.fault for s in request.servers]
        (server,) = request.servers
        return request_id, server.id, server.name


def _used(j: Journey, request_id: int) -> dict[Resource, int]:
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        resources = ledger.balance(uow.session, request.department_id, request.cloud_id).resources
        return {r: resources[r].used for r in (Resource.INSTANCES, Resource.VOLUMES, Resource.GIGABYTES)} | {
            Resource.FLOATING_IPS: resources[Resource.FLOATING_IPS].used
        }


def _delete(j: Journey, server_id: int, name: str, volumes: str | None) -> None:
    with j.rt.db.unit_of_work() as uow:
        requests_service.server_action(uow.session, j.staff, server_id, "delete", confirm=name, volumes=volumes)


def test_keeping_the_volumes_leaves_them_available_to_the_department_and_releases_the_address(
    journey: Journey,
) -> None:
    j = journey
    request_id, server_id, name = _one_usable_server(j)
    provider, project_id = _provider_and_project(j)
    assert _used(j, request_id) == {
        Resource.INSTANCES: 1,
        Resource.VOLUMES: 1,
        Resource.GIGABYTES: 100,
        Resource.FLOATING_IPS: 1,
    }
    _delete(j, server_id, name, "keep")
    with j.rt.db.unit_of_work() as uow:
        decision = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "server.delete", AuditEvent.target_id == str(server_id))
        ).one()
        assert decision.actor == j.staff.username and decision.detail is not None
        assert decision.detail["volumes"] == "keep"
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        server = uow.session.get_one(ManagedServer, server_id)
        assert server.state == "deleted" and "public" not in (server.addresses or {})
        (volume,) = uow.session.scalars(select(ManagedVolume).where(ManagedVolume.request_id == request_id))
        assert volume.state == VolumeState.AVAILABLE and volume.server_id is None
        assert volume.department_id == server.department_id and volume.volume_id
        # It keeps the name it had after the server (the cloud's name for it too).
        assert volume.name == f"{name}-data1"
        (address,) = uow.session.scalars(select(ManagedAddress).where(ManagedAddress.server_id == server_id))
        assert address.state == AddressState.RELEASED
    (cloud_volume,) = provider.list_volumes(project_id)
    assert cloud_volume.id == volume.volume_id and cloud_volume.name == f"{name}-data1"
    assert cloud_volume.status == "available" and not cloud_volume.attachments
    assert provider.list_floating_ips(project_id) == []
    assert not [s for s in provider.iter_servers() if s.id == server.server_id and s.status != "DELETED"]
    # The kept volume is still the department's use; the VM and the address are given back.
    assert _used(j, request_id) == {
        Resource.INSTANCES: 0,
        Resource.VOLUMES: 1,
        Resource.GIGABYTES: 100,
        Resource.FLOATING_IPS: 0,
    }


def test_deleting_the_volumes_removes_them_and_gives_back_their_quota(journey: Journey) -> None:
    j = journey
    request_id, server_id, name = _one_usable_server(j)
    provider, project_id = _provider_and_project(j)
    _delete(j, server_id, name, "delete")
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ManagedServer, server_id).state == "deleted"
        assert uow.session.get_one(ServiceRequest, request_id).state == "retired"
        (volume,) = uow.session.scalars(select(ManagedVolume).where(ManagedVolume.request_id == request_id))
        assert volume.state == VolumeState.DELETED
    assert provider.list_volumes(project_id) == []
    assert provider.list_floating_ips(project_id) == []
    assert set(_used(j, request_id).values()) == {0}


@pytest.mark.parametrize("answer", [None, "", "maybe"])
def test_without_an_answer_for_the_volumes_nothing_is_deleted(journey: Journey, answer: str | None) -> None:
    j = journey
    request_id, server_id, name = _one_usable_server(j)
    provider, project_id = _provider_and_project(j)
    before = _used(j, request_id)
    with j.rt.db.unit_of_work() as uow:
        items = uow.session.scalar(select(func.count(WorkItem.id)))
    with j.rt.db.unit_of_work() as uow, pytest.raises(RequestInvalid) as refused:
        requests_service.server_action(uow.session, j.staff, server_id, "delete", confirm=name, volumes=answer)
    (problem,) = refused.value.problems
    assert problem.field == "volumes" and problem.code is ChoiceProblem.VOLUMES_CHOICE
    assert "volumes" in refused.value.message
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ManagedServer, server_id).state == "active"
        assert uow.session.scalar(select(func.count(WorkItem.id))) == items
        assert uow.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "server.delete")) is None
    assert [v.status for v in provider.list_volumes(project_id)] == ["in-use"]
    assert len(provider.list_floating_ips(project_id)) == 1
    assert _used(j, request_id) == before


def test_a_server_without_volumes_needs_no_answer(journey: Journey) -> None:
    j = journey
    with j.rt.db.unit_of_work() as uow:
        request = requests_service.create_request(
            uow.session,
            j.staff,
            j.form(1),
            submit=True,
            settings=j.rt.settings,  # type: ignore[arg-type]
        )
        request_id = request.id
    actors = {"dept_head": j.head, "operator": j.operator, "finance": j.finance}
    while True:
        with j.rt.db.unit_of_work() as uow:
            role = uow.session.get_one(ServiceRequest, request_id).next_role
        if role is None:
            break
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actors[role], request_id, reason="ok")
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        (server,) = uow.session.get_one(ServiceRequest, request_id).servers
        server_id, name = server.id, server.name
    _delete(j, server_id, name, None)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ManagedServer, server_id).state == "deleted"
    assert _used(j, request_id)[Resource.INSTANCES] == 0


@pytest.mark.parametrize("choice", ["keep", "delete"])
def test_a_worker_dying_midway_is_taken_over_to_the_same_end(
    journey: Journey, monkeypatch: pytest.MonkeyPatch, choice: str
) -> None:
    j = journey
    request_id, server_id, name = _one_usable_server(j)
    provider, project_id = _provider_and_project(j)
    real_detach = SimulatedProvider.detach_volume
    real_delete_server = SimulatedProvider.delete_server
    calls: list[str] = []

    def detach_then_die(self: SimulatedProvider, server: str, volume_id: str) -> None:
        real_detach(self, server, volume_id)  # the cloud did it; the worker dies before recording it
        calls.append("detach")
        if calls.count("detach") == 1:
            raise RuntimeError("worker killed after the detach")

    def dies_once(self: SimulatedProvider, server: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        calls.append("delete_server")
        if calls.count("delete_server") == 1:
            raise RuntimeError("worker killed before the server's deletion")
        real_delete_server(self, server, wait=wait, timeout=timeout)

    monkeypatch.setattr(SimulatedProvider, "detach_volume", detach_then_die)
    monkeypatch.setattr(SimulatedProvider, "delete_server", dies_once)
    _delete(j, server_id, name, choice)
    for _ in range(3):
        j.drain()
        with j.rt.db.unit_of_work() as uow:
            # The item waits for its backoff: let it run now, as another worker would later.
            uow.session.execute(update(WorkItem).values(run_after=utcnow() - timedelta(seconds=1)))
    assert calls.count("detach") >= 2 and calls.count("delete_server") == 2
    with j.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ManagedServer, server_id).state == "deleted"
        (volume,) = uow.session.scalars(select(ManagedVolume).where(ManagedVolume.request_id == request_id))
        (address,) = uow.session.scalars(select(ManagedAddress).where(ManagedAddress.server_id == server_id))
        assert address.state == AddressState.RELEASED
        released = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "address.released")).all()
        assert len(released) == 1
    assert provider.list_floating_ips(project_id) == []
    used = _used(j, request_id)
    assert used[Resource.INSTANCES] == 0 and used[Resource.FLOATING_IPS] == 0
    if choice == "keep":
        assert volume.state == VolumeState.AVAILABLE
        assert [(v.status, v.attachments) for v in provider.list_volumes(project_id)] == [("available", ())]
        assert used[Resource.VOLUMES] == 1 and used[Resource.GIGABYTES] == 100
    else:
        assert volume.state == VolumeState.DELETED
        assert provider.list_volumes(project_id) == []
        assert used[Resource.VOLUMES] == 0 and used[Resource.GIGABYTES] == 0


def test_a_volume_change_under_way_holds_the_deletion_back(journey: Journey) -> None:
    j = journey
    _request_id, server_id, name = _one_usable_server(j)
    with j.rt.db.unit_of_work() as uow:
        (volume,) = uow.session.scalars(select(ManagedVolume).where(ManagedVolume.server_id == server_id))
        volume.state = VolumeState.EXTENDING  # as cloudmgr.storage leaves it while its work item runs
    with j.rt.db.unit_of_work() as uow, pytest.raises(InvalidTransition, match=r"data disk 1 of lic-01 is under way"):
        requests_service.server_action(uow.session, j.staff, server_id, "delete", confirm=name, volumes="delete")
    with j.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ManagedServer, server_id).state == "active"
        assert uow.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "server.delete")) is None
