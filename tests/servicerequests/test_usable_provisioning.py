"""Provisioning makes what a request asked for beyond the server (issue 16): the keypair, the
firewall groups and user data at boot; after ACTIVE each data volume, attached, and the public
address, associated; crash-safe by tags."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.cloud import CloudProvider
from cloudmgr.cloud.simulated.provider import SimulatedProvider
from cloudmgr.db import utcnow
from cloudmgr.firewall import services as firewall
from cloudmgr.keys import services as keys
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState
from cloudmgr.servicerequests.provisioning import cloud_keypair_name
from cloudmgr.servicerequests.quoting import DataDisk
from cloudmgr.workqueue.models import WorkItem
from tests.conftest import ONE_DATABASE
from tests.journey_fixtures import Journey, LabJourney
from tests.keys.keygen import ed25519_key, public_line

USER_DATA = "#cloud-config\npackages: [nginx]\n"


def _submit_usable(j: Journey, count: int = 2) -> int:
    with j.rt.db.unit_of_work() as uow:
        session = uow.session
        firewall.seed_standard_templates(session, j.operator)
        web = next(t for t in firewall.list_templates(session) if t.name == "web")
        cloud_id = session.scalar(select(Cloud.id).where(Cloud.key == "education"))
        fake = session.scalar(
            select(CatalogItem.id).where(
                CatalogItem.cloud_id == cloud_id,
                CatalogItem.kind == ItemKind.VOLUME_TYPE.value,
                CatalogItem.cloud_name == "fake",
            )
        )
        key_id = keys.add_key(session, j.staff, "laptop", public_line(ed25519_key(), "me@laptop")).id
    form = dataclasses.replace(
        j.form(count),
        zone="internet",
        ssh_key_id=key_id,
        user_data=USER_DATA,
        data_disks=(DataDisk(100, fake),),
        public_address=True,
    )
    with j.rt.db.unit_of_work() as uow:
        request = requests_service.create_request(
            uow.session,
            j.staff,
            form,
            submit=False,
            settings=j.rt.settings,  # type: ignore[arg-type]
        )
        firewall.set_request_firewall(uow.session, request.id, request.department, request.zone, [web.id], [])
        request_id = request.id
    with j.rt.db.unit_of_work() as uow:
        requests_service.submit_request(uow.session, j.staff, request_id, settings=j.rt.settings)  # type: ignore[arg-type]
    actors = {"dept_head": j.head, "operator": j.operator, "finance": j.finance}
    for _ in range(4):
        with j.rt.db.unit_of_work() as uow:
            request = uow.session.get_one(ServiceRequest, request_id)
            role = request.next_role
        if role is None:
            break
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actors[role], request_id, reason="ok")
    return request_id


def _provider_and_project(j: Journey) -> tuple[CloudProvider, str]:
    with j.rt.db.unit_of_work() as uow:
        cloud = uow.session.scalars(select(Cloud).where(Cloud.key == "education")).one()
        link = uow.session.scalars(
            select(DepartmentCloud).where(
                DepartmentCloud.cloud_id == cloud.id, DepartmentCloud.department_id == j.staff.department_id
            )
        ).one()
        assert link.project_id
        return j.rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region), link.project_id


def test_two_usable_vms_get_their_key_groups_disks_and_addresses(journey: Journey) -> None:
    j = journey
    request_id = _submit_usable(j)
    j.drain()
    provider, project_id = _provider_and_project(j)
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        assert request.state == "active", [s.fault for s in request.servers]
        key_name = cloud_keypair_name(request)
        plan = firewall.request_plan(uow.session, request.id, request.department, request.zone)
        servers = {s.server_id: s for s in request.servers}
        assert all(s.state == "active" for s in servers.values())
        volumes = uow.session.scalars(select(ManagedVolume).where(ManagedVolume.request_id == request_id)).all()
        assert [v.state for v in volumes] == [VolumeState.ATTACHED] * 2
        addresses = uow.session.scalars(select(ManagedAddress)).all()
        assert [a.state for a in addresses] == [AddressState.ASSOCIATED] * 2
        assert {s.addresses["public"][0] for s in servers.values()} == {a.address for a in addresses}
        # The server's reservation (VM, disks and address) is used, nothing left held.
        balance = ledger.balance(uow.session, request.department_id, request.cloud_id).resources
        assert balance[Resource.VOLUMES].used == 2 and balance[Resource.VOLUMES].reserved == 0
        assert balance[Resource.GIGABYTES].used == 200
        assert balance[Resource.FLOATING_IPS].used == 1 * 2
    assert key_name is not None and key_name.startswith("cm-laptop-")
    cloud_servers = [s for s in provider.iter_servers() if s.id in servers]
    assert len(cloud_servers) == 2
    for server in cloud_servers:
        assert server.key_name == key_name
        assert set(server.security_groups) == {plan.group_name, plan.department_group}
    groups = {g.name: g for g in provider.list_security_groups(project_id)}
    web_ports = {(r.direction, r.protocol, r.port_min) for r in groups[plan.group_name].rules}
    assert {("ingress", "tcp", 80), ("ingress", "tcp", 443)} <= web_ports
    cloud_volumes = provider.list_volumes(project_id)
    assert len(cloud_volumes) == 2
    assert all(v.size_gb == 100 and v.status == "in-use" for v in cloud_volumes)
    assert {a.server_id for v in cloud_volumes for a in v.attachments} == set(servers)
    floating = provider.list_floating_ips(project_id)
    assert len(floating) == 2 and {f.server_id for f in floating} == set(servers)


def test_a_worker_dying_at_the_volume_attach_is_taken_over_without_a_second_volume(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = journey
    request_id = _submit_usable(j)
    real_attach = SimulatedProvider.attach_volume
    calls: list[str] = []

    def dies_once(self: SimulatedProvider, server_id: str, volume_id: str) -> None:
        calls.append(volume_id)
        if len(calls) == 1:
            raise RuntimeError("worker killed during the attach")
        real_attach(self, server_id, volume_id)

    monkeypatch.setattr(SimulatedProvider, "attach_volume", dies_once)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ServiceRequest, request_id).state == "provisioning"
        # The item waits for its backoff: let it run now, as another worker would later.
        uow.session.execute(update(WorkItem).values(run_after=utcnow() - timedelta(seconds=1)))
    j.drain()
    provider, project_id = _provider_and_project(j)
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        assert request.state == "active", [s.fault for s in request.servers]
        rows = uow.session.scalars(select(ManagedVolume).where(ManagedVolume.request_id == request_id)).all()
        server_ids = set(uow.session.scalars(select(ManagedServer.server_id)))
    cloud_volumes = provider.list_volumes(project_id)
    assert len(cloud_volumes) == 2, cloud_volumes
    assert {v.id for v in cloud_volumes} == {r.volume_id for r in rows}
    assert all(v.status == "in-use" for v in cloud_volumes)
    assert {a.server_id for v in cloud_volumes for a in v.attachments} <= server_ids
    assert len(provider.list_floating_ips(project_id)) == 2


def test_a_failed_attach_fails_the_server_naming_the_disk_and_the_retry_continues(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloudmgr.cloud import CloudConflict

    j = journey
    request_id = _submit_usable(j, count=1)
    real_attach = SimulatedProvider.attach_volume
    calls: list[str] = []

    def refuses_once(self: SimulatedProvider, server_id: str, volume_id: str) -> None:
        calls.append(volume_id)
        if len(calls) == 1:
            raise CloudConflict("volume is busy")
        real_attach(self, server_id, volume_id)

    monkeypatch.setattr(SimulatedProvider, "attach_volume", refuses_once)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        (server,) = uow.session.get_one(ServiceRequest, request_id).servers
        assert server.state == "error" and server.fault is not None
        assert server.fault.startswith("data disk 1: ")
        first_cloud_server, server_row_id = server.server_id, server.id
    with j.rt.db.unit_of_work() as uow:
        requests_service.retry_server(uow.session, j.operator, server_row_id)
    j.drain()
    provider, project_id = _provider_and_project(j)
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        assert request.state == "active", [s.fault for s in request.servers]
        (server,) = request.servers
        assert server.server_id == first_cloud_server  # the same VM, not a second one
    assert len([s for s in provider.iter_servers() if s.project_id == project_id]) == 1
    (volume,) = provider.list_volumes(project_id)
    assert volume.status == "in-use"
    assert len(provider.list_floating_ips(project_id)) == 1


@pytest.mark.lab
@ONE_DATABASE
def test_on_the_lab_one_usable_vm_gets_its_disk_group_and_address(lab_journey: LabJourney) -> None:
    from tests.conftest import lab_connection

    j = lab_journey
    conn = lab_connection(Path(j.clouds_yaml))
    provider, project_id = _provider_and_project(j)
    key_name: str | None = None
    try:
        request_id = _submit_usable(j, count=1)
        j.drain()
        with j.rt.db.unit_of_work() as uow:
            request = uow.session.get_one(ServiceRequest, request_id)
            assert request.state == "active", [s.fault for s in request.servers]
            key_name = cloud_keypair_name(request)
            plan = firewall.request_plan(uow.session, request.id, request.department, request.zone)
            (managed,) = request.servers
            public = managed.addresses["public"][0]
        (server,) = j.nova_servers()
        assert server.id == managed.server_id
        assert server.key_name is not None and key_name is not None and server.key_name.endswith(key_name)
        assert {g["name"] for g in server.security_groups} == {plan.group_name, plan.department_group}
        volumes = list(conn.block_storage.volumes(details=True, all_projects=True, project_id=project_id))
        assert [(v.size, v.status) for v in volumes] == [(100, "in-use")]
        assert [a["server_id"] for a in volumes[0].attachments] == [server.id]
        (ip,) = conn.network.ips(project_id=project_id)
        assert ip.floating_ip_address == public and ip.port_id is not None
        port = conn.network.get_port(ip.port_id)
        assert port.device_id == server.id
    finally:
        for server in j.nova_servers():
            conn.compute.delete_server(server, ignore_missing=True)
            conn.compute.wait_for_delete(server, wait=120)
        for ip in conn.network.ips(project_id=project_id):
            conn.network.delete_ip(ip, ignore_missing=True)
        for volume in conn.block_storage.volumes(details=True, all_projects=True, project_id=project_id):
            provider.delete_volume(volume.id, wait=True)
        for group in provider.list_security_groups(project_id):
            if group.name != "default":
                provider.delete_security_group(project_id, group.name)
        if key_name is not None:
            provider.delete_keypair(project_id, key_name)


@pytest.mark.parametrize("method", ["create_server", "create_volume", "allocate_floating_ip"])
def test_an_answer_lost_after_the_cloud_acted_is_found_by_tag_on_the_next_run(
    journey: Journey, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """A first try skips the look-up by tag (the row says nothing was asked before); the run
    dies after the cloud made the thing but before the answer was recorded: the next run
    finds it by its tag instead of making a second one."""
    j = journey
    request_id = _submit_usable(j)
    real = getattr(SimulatedProvider, method)
    first_tries: list[bool] = []

    def acts_then_dies(self: SimulatedProvider, *args: object, **kwargs: object) -> object:
        first_tries.append(bool(kwargs.get("first_try")))
        made = real(self, *args, **kwargs)
        if len(first_tries) == 1:
            raise RuntimeError(f"worker killed after {method} reached the cloud")
        return made

    monkeypatch.setattr(SimulatedProvider, method, acts_then_dies)
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        assert uow.session.get_one(ServiceRequest, request_id).state == "provisioning"
        uow.session.execute(update(WorkItem).values(run_after=utcnow() - timedelta(seconds=1)))
    j.drain()
    # The first call of the first run skipped the look-up; the dead one's successor did not.
    assert first_tries[0] is True and first_tries[2] is False
    provider, project_id = _provider_and_project(j)
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        assert request.state == "active", [s.fault for s in request.servers]
    assert len([s for s in provider.iter_servers() if s.project_id == project_id]) == 2
    assert len(provider.list_volumes(project_id)) == 2
    assert len(provider.list_floating_ips(project_id)) == 2
