"""Shortcuts for the purchase tests."""

from __future__ import annotations

from decimal import Decimal

from cloudmgr.purchases.services import ItemInput, PurchaseForm


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
