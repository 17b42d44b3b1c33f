"""A bad line of a purchase is named by its row and field in the page's language (issue 18: the
error summary showed the nested errors WTForms keeps for a list of sub-forms as a Python repr,
``Lines：{'quantity': [...]}``)."""

from __future__ import annotations

from flask import Flask

from tests.web.helpers import logged_in, post_form

BAD_LINE = {
    "title": "不动产登记系统扩容",
    "category": "server",
    "application_system": "不动产登记系统",
    "justification": "业务量增长",
    "lines-0-description": "机架式服务器",
    "lines-0-quantity": "1",
    "lines-0-unit_price": "45000",
    "lines-1-description": "交换机",
    "lines-1-quantity": "0",
    "lines-1-unit_price": "45000",
    "save": "1",
}


def test_a_bad_purchase_line_is_named_by_row_and_field(app: Flask) -> None:
    staff = logged_in(app, "zhangwei")
    response = post_form(staff, "/portal/purchases/new?lang=en", BAD_LINE)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    summary = html[html.index('class="error-summary"') :][:3000]
    assert "{'" not in summary and "[{" not in summary
    assert 'href="#lines-1-quantity"' in summary
    assert "row 2 · Quantity: Between 1 and" in summary
