"""The purchase form takes any number of item rows (up to the service's limit): "more item rows"
and each row's "drop" work without the script, nothing is saved on the way; the total is the sum
of the items, computed by the service, never typed (issue 18)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

from cloudmgr.purchases.models import PurchaseRequest
from cloudmgr.runtime import Runtime
from tests.web.helpers import Journey, logged_in, post_form
from web import create_app

NEW = "/portal/purchases/new"


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _head(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "机房网络改造",
        "category": "network",
        "application_system": "政务外网接入",
        "justification": "设备老化",
    }
    data.update(overrides)
    return data


def _rows(n: int, *, start: int = 0) -> dict[str, str]:
    data: dict[str, str] = {}
    for i in range(start, start + n):
        data |= {
            f"lines-{i}-description": f"交换机 {i}",
            f"lines-{i}-quantity": str(i + 1),
            f"lines-{i}-unit_price": "1000.50",
        }
    return data


def _row_names(html: str) -> list[str]:
    return re.findall(r'name="(lines-\d+)-description"', html)


def _purchases(journey: Journey) -> list[PurchaseRequest]:
    with journey.rt.db.unit_of_work() as uow:
        found = uow.session.query(PurchaseRequest).all()
        for purchase in found:
            _ = list(purchase.items)
            uow.session.expunge(purchase)
        return found


def test_a_new_form_has_empty_rows_a_more_button_and_no_typed_total(app: Flask) -> None:
    html = logged_in(app, "zhangwei").get(NEW).get_data(as_text=True)
    assert _row_names(html) == ["lines-0", "lines-1", "lines-2"]
    assert 'data-testid="add-row"' in html and 'name="drop_row" value="2"' in html
    assert 'name="amount_yuan"' not in html  # the total is not typed
    assert re.search(r'data-testid="purchase-total"[^>]*>¥0\.00<', html)
    assert "js/purchase-items.js" in html


def test_more_rows_and_dropping_one_keep_what_was_typed_and_save_nothing(app: Flask, journey: Journey) -> None:
    staff = logged_in(app, "zhangwei")
    more = post_form(staff, NEW, {**_head(), **_rows(3), "add_rows": "1"})
    assert more.status_code == 200
    html = more.get_data(as_text=True)
    assert _row_names(html) == [f"lines-{i}" for i in range(6)]
    assert 'value="交换机 2"' in html
    # 1×1000.50 + 2×1000.50 + 3×1000.50, computed by the server on the way
    assert re.search(r'data-testid="purchase-total"[^>]*>¥6,003\.00<', html)

    dropped = post_form(staff, NEW, {**_head(), **_rows(3), "drop_row": "1"}).get_data(as_text=True)
    assert "交换机 1" not in dropped and 'value="交换机 0"' in dropped and 'value="交换机 2"' in dropped
    assert re.search(r'data-testid="purchase-total"[^>]*>¥4,002\.00<', dropped)
    assert _purchases(journey) == []  # nothing saved by either


def test_many_items_are_saved_with_the_computed_total_and_edited_again(app: Flask, journey: Journey) -> None:
    staff = logged_in(app, "zhangwei")
    # eight rows, one index skipped (a row dropped in the page): all saved, in order
    rows = {**_rows(3), **_rows(5, start=4)}
    saved = post_form(staff, NEW, {**_head(), **rows, "amount_yuan": "1", "save": "1"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    [purchase] = _purchases(journey)
    assert len(purchase.items) == 8
    expected = sum(Decimal("1000.50") * q for q in (1, 2, 3, 5, 6, 7, 8, 9))
    assert purchase.amount_yuan == expected  # a typed amount is ignored: the sum counts

    edit = f"/portal/purchases/{purchase.id}/edit"
    html = staff.get(edit).get_data(as_text=True)
    assert len(_row_names(html)) == 9  # the eight and an empty one
    assert f"¥{expected:,.2f}" in html
    changed = post_form(staff, edit, {**_head(), **_rows(2), "save": "1"})
    assert changed.status_code == 302
    [purchase] = _purchases(journey)
    assert len(purchase.items) == 2 and purchase.amount_yuan == Decimal("3001.50")


def test_dropping_the_only_filled_row_leaves_empty_rows(app: Flask) -> None:
    staff = logged_in(app, "zhangwei")
    data = {**_head(), "lines-0-description": "路由器", "lines-0-quantity": "1", "lines-0-unit_price": "5"}
    html = post_form(staff, f"{NEW}?x=1", {**data, "drop_row": "0"}, page=NEW).get_data(as_text=True)
    # the empty rows stay for typing; the dropped row and its text are gone
    assert "路由器" not in html and len(_row_names(html)) >= 1


def test_the_rows_speak_chinese(app: Flask) -> None:
    html = logged_in(app, "zhangwei").get(NEW).get_data(as_text=True)
    for text in ("增加物品行", "去掉第 1 项", "合计"):
        assert text in html, text
