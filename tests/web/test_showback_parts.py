"""The showback page, its CSV and the API show the data disks and public addresses a department
pays for (issue 16); department users reach their own department's only."""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask import Flask
from sqlalchemy import select

from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import User
from cloudmgr.runtime import Runtime
from tests.journey_fixtures import Journey
from tests.purchases.helpers import provision_disk_and_address
from tests.web.helpers import logged_in
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


@pytest.fixture
def provisioned(journey_rt: Runtime) -> int:
    with journey_rt.db.unit_of_work() as uow:
        users = {u.username: Actor.of(u) for u in uow.session.scalars(select(User))}
    j = Journey(journey_rt, users["zhangwei"], users["lina"], users["operator"], users["finance"], users["wangfang"])
    return provision_disk_and_address(j)


def _cells(html: str, marker: str) -> list[str]:
    row = re.search(rf"<tr {marker}>(.*?)</tr>", html, re.S)
    assert row is not None, marker
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]


def test_finance_sees_disks_and_addresses_on_the_page_and_in_the_csv(app: Flask, provisioned: int) -> None:
    finance = logged_in(app, "finance")
    page = finance.get("/finance/showback").get_data(as_text=True)
    cells = _cells(page, 'data-showback-row="prov-education/education"')
    # servers, vCPU, RAM, servers ¥, disk GB, disks ¥, addresses, addresses ¥, ...
    assert cells[2:12] == ["1", "1", "2", "¥120.00", "100", "¥30.00", "1", "¥25.00", "0", "¥0.00"]
    assert cells[-1] == "¥175.00"
    department = _cells(page, 'data-showback-department="prov-education"')
    assert department[1:5] == ["¥120.00", "¥30.00", "¥25.00", "¥0.00"] and department[-1] == "¥175.00"
    assert 'data-testid="showback-volumes-total">¥30.00<' in page
    assert 'data-testid="showback-addresses-total">¥25.00<' in page
    assert 'data-testid="showback-backups-total">¥0.00<' in page and "showback-backups-unpriced" not in page
    exported = finance.get("/finance/showback.csv").get_data(as_text=True).lstrip("\ufeff")
    line = next(r for r in csv.DictReader(io.StringIO(exported)) if r["department"] == "prov-education")
    assert (line["volume_gb"], line["volumes_yuan"], line["addresses_yuan"], line["monthly_yuan"]) == (
        "100",
        "30.00",
        "25.00",
        "175.00",
    )
    # Department users have no finance pages.
    assert logged_in(app, "wangfang").get("/finance/showback").status_code in {302, 403}


def _api_get(app: Flask, rt: Runtime, username: str, path: str) -> dict[str, object]:
    with rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(uow.session, user, name="test", expires_at=None, actor=Actor.system("test")).token
    response = app.test_client().get("/api/v1" + path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    payload = response.get_json()
    assert isinstance(payload, dict)
    return payload


def test_the_api_gives_the_new_lines_and_keeps_the_department_wall(
    app: Flask, journey_rt: Runtime, provisioned: int
) -> None:
    report = _api_get(app, journey_rt, "finance", "/showback")
    assert (report["volumes_yuan"], report["addresses_yuan"]) == ("30.00", "25.00")
    # No backups yet; the price is the rates file's.
    assert (report["backups_yuan"], report["backup_gb_price"]) == ("0.00", "0.1")
    items = report["items"]
    assert isinstance(items, list)
    item = next(i for i in items if (i["department"], i["cloud"]) == ("prov-education", "education"))
    assert (item["volumes"], item["volume_gb"], item["volumes_yuan"]) == (1, 100, "30.00")
    assert (item["addresses"], item["addresses_yuan"], item["monthly_yuan"]) == (1, "25.00", "175.00")
    departments = report["departments"]
    assert isinstance(departments, list)
    assert {"department": "prov-education", "monthly_yuan": "175.00"}.items() <= departments[0].items()
    own = _api_get(app, journey_rt, "zhangwei", "/showback")
    assert [i["department"] for i in own["items"]] == ["prov-education"]  # type: ignore[union-attr]
    other = _api_get(app, journey_rt, "wangfang", "/showback")
    assert other["items"] == [] and other["departments"] == [] and other["volumes_yuan"] == "0.00"
