"""A purchase as typed (a page, the API, the CLI): its checks, and how it is written onto a draft."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from cloudmgr.purchases.errors import (
    PurchaseInvalid,
)
from cloudmgr.purchases.models import (
    Category,
    PurchaseItem,
    PurchaseRequest,
)
from cloudmgr.purchases.rules import (
    CENT,
    MAX_AMOUNT,
    MAX_DISK_GB,
    MAX_ITEMS,
    MAX_QUANTITY,
    MAX_RAM_GB,
    MAX_VCPUS,
    TEXT_MAX,
    TITLE_MAX,
)


@dataclass(frozen=True)
class ItemInput:
    description: str
    quantity: int
    unit_price: Decimal
    vcpus: int = 0
    ram_gb: int = 0
    disk_gb: int = 0


@dataclass(frozen=True)
class PurchaseForm:
    title: str
    category: str
    # The total, always the sum of the items (quantity × unit price), computed here: None takes
    # the sum (the pages); a given amount (the API) must be that sum.
    amount_yuan: Decimal | None
    application_system: str
    justification: str
    items: Sequence[ItemInput]
    legacy_hostname: str | None = None
    classified: bool = False


def _money(value: Any, what: str, problems: list[str]) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        problems.append(f"{what} is not an amount of yuan")
        return None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        problems.append(f"{what} must be between 0 and {MAX_AMOUNT} yuan")
        return None
    if amount != amount.quantize(CENT):
        problems.append(f"{what} has more than two decimals")
        return None
    return amount.quantize(CENT)


def items_total(items: Sequence[ItemInput]) -> Decimal:
    """The purchase's total in yuan: quantity × unit price of each item (an item whose numbers
    are not valid counts nothing; :func:`validate_form` names it)."""
    total = Decimal(0)
    for item in items:
        try:
            price = Decimal(str(item.unit_price))
        except (InvalidOperation, ValueError):
            continue
        if price.is_finite() and isinstance(item.quantity, int) and not isinstance(item.quantity, bool):
            total += price.quantize(CENT) * item.quantity
    return total.quantize(CENT)


def validate_form(form: PurchaseForm) -> list[str]:
    """Every problem of ``form`` (empty when it is fine)."""
    problems: list[str] = []
    if not form.title.strip():
        problems.append("a title is required")
    elif len(form.title) > TITLE_MAX:
        problems.append(f"the title is too long (at most {TITLE_MAX} characters)")
    if form.category not in set(Category):
        problems.append(f"the category must be one of {', '.join(Category)}")
    if not form.application_system.strip():
        problems.append("name the application system the purchase serves")
    elif len(form.application_system) > 128:
        problems.append("the application system name is too long (at most 128 characters)")
    if form.legacy_hostname is not None and len(form.legacy_hostname) > 128:
        problems.append("the legacy hostname is too long (at most 128 characters)")
    if not form.justification.strip():
        problems.append("a justification is required")
    elif len(form.justification) > TEXT_MAX:
        problems.append(f"the justification is too long (at most {TEXT_MAX} characters)")
    if not form.items:
        problems.append("add at least one item")
    elif len(form.items) > MAX_ITEMS:
        problems.append(f"at most {MAX_ITEMS} items")
    total = Decimal(0)
    for n, item in enumerate(form.items, start=1):
        if not item.description.strip():
            problems.append(f"item {n}: a description is required")
        elif len(item.description) > 255:
            problems.append(f"item {n}: the description is too long (at most 255 characters)")
        for name, value, maximum in (
            ("quantity", item.quantity, MAX_QUANTITY),
            ("vCPU", item.vcpus, MAX_VCPUS),
            ("RAM (GB)", item.ram_gb, MAX_RAM_GB),
            ("disk (GB)", item.disk_gb, MAX_DISK_GB),
        ):
            low = 1 if name == "quantity" else 0
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= maximum:
                problems.append(f"item {n}: {name} must be a whole number between {low} and {maximum}")
        price = _money(item.unit_price, f"item {n}: the unit price", problems)
        if price is not None and isinstance(item.quantity, int) and 1 <= item.quantity <= MAX_QUANTITY:
            total += price * item.quantity
    if form.amount_yuan is None:
        return problems
    amount = _money(form.amount_yuan, "the amount", problems)
    if amount is not None and not problems and amount != total.quantize(CENT):
        problems.append(f"the amount ({amount} yuan) is not the sum of the items ({total.quantize(CENT)} yuan)")
    return problems


def _apply_form(purchase: PurchaseRequest, form: PurchaseForm) -> None:
    problems = validate_form(form)
    if problems:
        raise PurchaseInvalid("; ".join(problems))
    purchase.title = form.title.strip()
    purchase.category = form.category
    purchase.amount_yuan = items_total(form.items)  # checked equal to a given amount above
    purchase.application_system = form.application_system.strip()
    purchase.legacy_hostname = (form.legacy_hostname or "").strip() or None
    purchase.classified = bool(form.classified)
    purchase.justification = form.justification.strip()
    purchase.items.clear()
    for position, item in enumerate(form.items, start=1):
        purchase.items.append(
            PurchaseItem(
                position=position,
                description=item.description.strip(),
                vcpus=item.vcpus,
                ram_gb=item.ram_gb,
                disk_gb=item.disk_gb,
                quantity=item.quantity,
                unit_price=Decimal(str(item.unit_price)).quantize(CENT),
            )
        )
