"""Tagged volumes and floating IPs no request owns (issue 16), on the simulated cloud: made
behind cloudmgr's back with the provider, reported by the reconcile job, adopted into the
department's ledger or deleted by an operator's work item, resolved when they vanish."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.errors import InvalidTransition, NotYourTurn
from cloudmgr.servicerequests.jobs import reconcile_requests
from cloudmgr.servicerequests.orphans import (
    OrphanKind,
    OrphanResolution,
    OrphanResource,
    request_orphan_action,
)
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState
from tests.journey_fixtures import Journey


@dataclass
class Behind:
    provider: CloudProvider
    project: str
    cloud_id: int
    department_id: int
    external_network: str


@pytest.fixture
def behind(journey: Journey) -> Behind:
    with journey.rt.db.unit_of_work() as uow:
        link = uow.session.scalar(
            select(DepartmentCloud)
            .join(Cloud)
            .where(DepartmentCloud.department_id == journey.staff.department_id, Cloud.key == "education")
        )
        assert link is not None and link.project_id
        cloud = link.cloud
        provider = journey.rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
        assert cloud.external_network
        ledger.set_limits(
            uow.session,
            link.department_id,
            cloud.id,
            {Resource.VOLUMES: 4, Resource.GIGABYTES: 100, Resource.FLOATING_IPS: 2},
        )
        return Behind(provider, link.project_id, cloud.id, link.department_id, cloud.external_network)


def _reconcile(j: Journey) -> list[str]:
    return reconcile_requests(j.rt.db, j.rt.providers, hold_days=14).orphans


def _orphans(j: Journey) -> dict[str, OrphanResource]:
    with j.rt.db.unit_of_work() as uow:
        rows = uow.session.scalars(select(OrphanResource)).all()
        uow.session.expunge_all()
        return {r.tag: r for r in rows}


def _used(j: Journey, b: Behind, resource: Resource) -> tuple[int, int]:
    with j.rt.db.unit_of_work() as uow:
        row = ledger.balance(uow.session, b.department_id, b.cloud_id).resources[resource]
        return row.reserved, row.used


def _act(j: Journey, orphan_id: int, action: str) -> None:
    with j.rt.db.unit_of_work() as uow:
        request_orphan_action(uow.session, j.operator, orphan_id, action)


def test_tagged_volume_and_address_are_reported_once_and_untagged_ones_not(journey: Journey, behind: Behind) -> None:
    volume = behind.provider.create_volume(behind.project, "stray-disk", 10, None, "cm-r900-s1-d1")
    address = behind.provider.allocate_floating_ip(behind.project, behind.external_network, "cm-r900-s1-ip")
    behind.provider.create_volume(behind.project, "hand-made", 5, None, "someone-elses-tag")
    found = _reconcile(journey)
    assert sorted(found) == sorted(
        [
            f"education: volume stray-disk ({volume.id})",
            f"education: address {address.address} ({address.id})",
        ]
    )
    assert _reconcile(journey) == []  # reported once
    orphans = _orphans(journey)
    assert orphans["cm-r900-s1-d1"].kind == OrphanKind.VOLUME and orphans["cm-r900-s1-d1"].size_gb == 10
    assert orphans["cm-r900-s1-ip"].kind == OrphanKind.ADDRESS and orphans["cm-r900-s1-ip"].is_open
    with journey.rt.db.unit_of_work() as uow:
        actions = uow.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("%.orphan"))).all()
    assert sorted(actions) == ["address.orphan", "volume.orphan"]


def test_adopt_makes_them_the_departments_and_counts_them(journey: Journey, behind: Behind) -> None:
    volume = behind.provider.create_volume(behind.project, "stray-disk", 10, None, "cm-r901-s1-d2")
    address = behind.provider.allocate_floating_ip(behind.project, behind.external_network, "cm-r901-s1-ip")
    _reconcile(journey)
    orphans = _orphans(journey)
    _act(journey, orphans["cm-r901-s1-d2"].id, "adopt")
    _act(journey, orphans["cm-r901-s1-ip"].id, "adopt")
    assert _used(journey, behind, Resource.GIGABYTES) == (10, 0)  # held while the work waits
    with pytest.raises(InvalidTransition):  # one action at a time
        _act(journey, orphans["cm-r901-s1-ip"].id, "delete")
    journey.drain()
    assert _used(journey, behind, Resource.GIGABYTES) == (0, 10)
    assert _used(journey, behind, Resource.VOLUMES) == (0, 1)
    assert _used(journey, behind, Resource.FLOATING_IPS) == (0, 1)
    with journey.rt.db.unit_of_work() as uow:
        row = uow.session.scalar(select(ManagedVolume).where(ManagedVolume.volume_id == volume.id))
        assert row is not None and row.department_id == behind.department_id and row.server_id is None
        assert row.state == VolumeState.AVAILABLE and row.idempotency_key == "cm-r901-s1-d2" and row.index == 2
        addr = uow.session.scalar(select(ManagedAddress).where(ManagedAddress.floating_ip_id == address.id))
        assert addr is not None and addr.department_id == behind.department_id and addr.cloud_id == behind.cloud_id
        assert addr.state == AddressState.ALLOCATED and addr.address == address.address
    orphans = _orphans(journey)
    assert {o.resolution for o in orphans.values()} == {OrphanResolution.ADOPTED}
    assert _reconcile(journey) == []  # owned now: not found again
    assert all(o.resolution == OrphanResolution.ADOPTED for o in _orphans(journey).values())
    journey.drain()  # a rerun of a done item changes nothing
    assert _used(journey, behind, Resource.GIGABYTES) == (0, 10)


def test_adopt_that_does_not_fit_is_refused_with_the_reason(journey: Journey, behind: Behind) -> None:
    behind.provider.create_volume(behind.project, "too-big", 101, None, "cm-r902-s1-d1")
    _reconcile(journey)
    orphan = _orphans(journey)["cm-r902-s1-d1"]
    with pytest.raises(QuotaExceeded, match="volume_gb limit 100, 100 free, 101 requested"):
        _act(journey, orphan.id, "adopt")
    assert _orphans(journey)["cm-r902-s1-d1"].pending_action is None
    assert _used(journey, behind, Resource.GIGABYTES) == (0, 0)


def test_delete_removes_them_from_the_cloud(journey: Journey, behind: Behind) -> None:
    volume = behind.provider.create_volume(behind.project, "stray-disk", 10, None, "cm-r903-s1-d1")
    address = behind.provider.allocate_floating_ip(behind.project, behind.external_network, "cm-r903-s1-ip")
    _reconcile(journey)
    orphans = _orphans(journey)
    for orphan in orphans.values():
        _act(journey, orphan.id, "delete")
    journey.drain()
    assert volume.id not in {v.id for v in behind.provider.list_volumes(behind.project)}
    assert address.id not in {a.id for a in behind.provider.list_floating_ips(behind.project)}
    assert {o.resolution for o in _orphans(journey).values()} == {OrphanResolution.DELETED}
    assert _used(journey, behind, Resource.VOLUMES) == (0, 0)


def test_an_attached_volume_is_not_deleted(journey: Journey, behind: Behind) -> None:
    from cloudmgr.cloud import ServerSpec

    provider = behind.provider
    server = provider.create_server(
        behind.project,
        ServerSpec("holder", provider.list_flavors()[0].id, provider.list_images()[0].id,
                   provider.list_networks()[0].id, "cm-r904-s1-a1"),
    )  # fmt: skip
    provider.wait_for_server(server.id)
    volume = provider.create_volume(behind.project, "in-use", 5, None, "cm-r904-s1-d1")
    provider.wait_volume(volume.id)
    provider.attach_volume(server.id, volume.id)
    provider.wait_volume(volume.id, frozenset({"in-use"}))
    _reconcile(journey)
    orphan = _orphans(journey)["cm-r904-s1-d1"]
    assert orphan.attached_to == server.id
    with pytest.raises(InvalidTransition, match="attached to server"):
        _act(journey, orphan.id, "delete")
    assert volume.id in {v.id for v in provider.list_volumes(behind.project)}


def test_vanished_orphans_are_resolved_and_a_pending_adoption_gives_its_quota_back(
    journey: Journey, behind: Behind
) -> None:
    volume = behind.provider.create_volume(behind.project, "stray-disk", 10, None, "cm-r905-s1-d1")
    address = behind.provider.allocate_floating_ip(behind.project, behind.external_network, "cm-r905-s1-ip")
    _reconcile(journey)
    _act(journey, _orphans(journey)["cm-r905-s1-d1"].id, "adopt")
    assert _used(journey, behind, Resource.GIGABYTES) == (10, 0)
    behind.provider.delete_volume(volume.id, wait=True)
    behind.provider.release_floating_ip(address.id)
    _reconcile(journey)
    assert {o.resolution for o in _orphans(journey).values()} == {OrphanResolution.GONE}
    assert _used(journey, behind, Resource.GIGABYTES) == (0, 0)
    journey.drain()  # the adoption's work item finds nothing left to do
    assert _used(journey, behind, Resource.GIGABYTES) == (0, 0)


def test_only_an_operator_acts_on_an_orphan(journey: Journey, behind: Behind) -> None:
    behind.provider.create_volume(behind.project, "stray-disk", 10, None, "cm-r906-s1-d1")
    _reconcile(journey)
    orphan = _orphans(journey)["cm-r906-s1-d1"]
    for actor in (journey.staff, journey.head, journey.finance):
        with journey.rt.db.unit_of_work() as uow, pytest.raises(NotYourTurn):
            request_orphan_action(uow.session, actor, orphan.id, "delete")
    assert _orphans(journey)["cm-r906-s1-d1"].pending_action is None
