"""A department volume on the simulated cloud: one server provisioned with a 10 GB data disk."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.cloud.simulated.provider import SimulatedProvider
from cloudmgr.organisation.models import Cloud
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.servicerequests.parts import ManagedVolume, VolumeState
from cloudmgr.servicerequests.quoting import DataDisk
from tests.journey_fixtures import Journey


def provision_volume(j: Journey, size_gb: int = 10) -> int:
    """The id of the attached ManagedVolume of a freshly provisioned server of j.staff's department."""
    with j.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == "education"))
        volume_type = uow.session.scalar(
            select(CatalogItem.id).where(
                CatalogItem.cloud_id == cloud_id,
                CatalogItem.kind == ItemKind.VOLUME_TYPE.value,
                CatalogItem.cloud_name == "fake",
            )
        )
    form = dataclasses.replace(j.form(1), data_disks=(DataDisk(size_gb, volume_type),))
    with j.rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(
            uow.session,
            j.staff,
            form,
            submit=True,
            settings=j.rt.settings,  # type: ignore[arg-type]
        ).id
    actors = {"dept_head": j.head, "operator": j.operator, "finance": j.finance}
    for _ in range(4):
        with j.rt.db.unit_of_work() as uow:
            role = uow.session.get_one(ServiceRequest, request_id).next_role
        if role is None:
            break
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actors[role], request_id, reason="ok")
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        volume = uow.session.scalars(select(ManagedVolume).where(ManagedVolume.request_id == request_id)).one()
        assert volume.state == VolumeState.ATTACHED, volume.fault
        return volume.id


def simulator(j: Journey) -> SimulatedProvider:
    with j.rt.db.unit_of_work() as uow:
        cloud = uow.session.scalars(select(Cloud).where(Cloud.key == "education")).one()
        provider = j.rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
    assert isinstance(provider, SimulatedProvider)
    return provider


def cloud_volume_id(j: Journey, volume_row_id: int) -> str:
    with j.rt.db.unit_of_work() as uow:
        volume_id = uow.session.get_one(ManagedVolume, volume_row_id).volume_id
    assert volume_id
    return volume_id
