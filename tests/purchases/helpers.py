"""Shortcuts for the purchase tests."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from sqlalchemy import select

from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.organisation.models import Cloud
from cloudmgr.purchases.services import ItemInput, PurchaseForm
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.models import ServiceRequest
from tests.journey_fixtures import Journey


def server_form(
    *,
    description: str = "机架式服务器 2路 8核 16G内存 500G硬盘",
    vcpus: int = 8,
    ram_gb: int = 16,
    disk_gb: int = 40,
    quantity: int = 2,
    unit_price: str = "45000.00",
    category: str = "server",
    application_system: str = "不动产登记系统",
    classified: bool = False,
    legacy_hostname: str | None = None,
) -> PurchaseForm:
    price = Decimal(unit_price)
    return PurchaseForm(
        title="不动产登记系统扩容",
        category=category,
        amount_yuan=price * quantity,
        application_system=application_system,
        justification="业务量增长，现有服务器不足",
        items=[
            ItemInput(
                description=description,
                quantity=quantity,
                unit_price=price,
                vcpus=vcpus,
                ram_gb=ram_gb,
                disk_gb=disk_gb,
            )
        ],
        legacy_hostname=legacy_hostname,
        classified=classified,
    )


def provision_disk_and_address(j: Journey, *, count: int = 1) -> int:
    """A request on education's internet zone for ``count`` m1.small VMs, each with a 100 GB data
    disk of volume type ``fake`` and a public address, approved by every step it needs and
    provisioned on the simulator; its id."""
    with j.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == "education"))
        fake = uow.session.scalar(
            select(CatalogItem.id).where(
                CatalogItem.cloud_id == cloud_id,
                CatalogItem.kind == ItemKind.VOLUME_TYPE.value,
                CatalogItem.cloud_name == "fake",
            )
        )
    form = replace(j.form(count), zone="internet", data_disks=(sr.DataDisk(100, fake),), public_address=True)
    with j.rt.db.unit_of_work() as uow:
        request_id = sr.create_request(uow.session, j.staff, form, submit=True, settings=j.rt.settings).id
    actors = {"dept_head": j.head, "operator": j.operator, "finance": j.finance}
    for _ in range(4):
        with j.rt.db.unit_of_work() as uow:
            role = uow.session.get_one(ServiceRequest, request_id).next_role
        if role is None:
            break
        with j.rt.db.unit_of_work() as uow:
            sr.approve_request(uow.session, actors[role], request_id, reason="ok")
    j.drain()
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        assert request.state == "active", [s.fault for s in request.servers]
    return request_id
