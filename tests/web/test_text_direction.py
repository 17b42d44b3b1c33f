"""Text-direction control characters (U+202E and the like) are refused at input on every path,
with a message naming the field (issue 14): the web forms (one common base), the API's body
reader, and the imported files."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import pytest
from flask import Flask
from flask_wtf import FlaskForm
from sqlalchemy import func, select

import web
from cloudmgr.capacity.config import read_capacity_file
from cloudmgr.capacity.errors import CapacityCsvInvalid
from cloudmgr.capacity.planner import PlannerInputError, read_servers_csv
from cloudmgr.capacity.services import import_csv
from cloudmgr.inventory.errors import InventoryInvalid
from cloudmgr.inventory.importer import import_inventory
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.purchases.models import PurchaseRequest
from cloudmgr.quotas.errors import QuotaFilesInvalid
from cloudmgr.quotas.files import read_quota_files
from cloudmgr.runtime import Runtime
from cloudmgr.text import BIDI_CONTROLS, bidi_problem
from tests.inventory.test_import import _csv, _csv_row, as_yaml, host, inventory
from tests.web.helpers import logged_in, post_form
from tests.web.test_purchases import _body as api_purchase_body
from tests.web.test_purchases import _form as web_purchase_form
from web import create_app
from web.common.forms import SafeForm

RLO = "\u202e"


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _purchases(rt: Runtime) -> int:
    with rt.db.unit_of_work() as uow:
        return uow.session.scalar(select(func.count(PurchaseRequest.id))) or 0


def test_every_control_character_is_named() -> None:
    assert len(BIDI_CONTROLS) == 12
    for char in BIDI_CONTROLS:
        assert bidi_problem("title", f"a{char}b") is not None
    assert bidi_problem("title", "不动产登记系统 v2 (2026)") is None


def test_every_web_form_refuses_them_through_one_base() -> None:
    for module in pkgutil.walk_packages(web.__path__, "web."):
        importlib.import_module(module.name)
    forms = [f for f in _subclasses(FlaskForm) if f.__module__.startswith("web.") and f is not SafeForm]
    assert len(forms) >= 25
    assert [f.__qualname__ for f in forms if not issubclass(f, SafeForm)] == []


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_attack_a_justification_with_a_right_to_left_override_through_the_form(app: Flask, journey_rt: Runtime) -> None:
    staff = logged_in(app, "zhangwei")
    before = _purchases(journey_rt)
    for field, label in (("justification", "申请理由"), ("title", "标题")):
        data = {**web_purchase_form(**{field: f"服务器{RLO}fdp.exe"}), "save": "1"}
        response = post_form(staff, "/portal/purchases/new", data)
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        # The page's error summary names the field and links to it, in the page's language.
        assert f'<a href="#{field}">{label}：此处文字含有文字方向控制字符（U+202E），不允许使用。' in page
    assert _purchases(journey_rt) == before


def test_attack_a_justification_with_a_right_to_left_override_through_the_api(app: Flask, journey_rt: Runtime) -> None:
    with journey_rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, "zhangwei")
        token = org.issue_token(uow.session, user, name="t", expires_at=None, actor=Actor.system("test")).token
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    before = _purchases(journey_rt)
    body = api_purchase_body(justification=f"业务增长{RLO}")
    body["items"][0]["description"] = f"机架式{RLO}服务器"
    response = client.post("/api/v1/purchases", headers=headers, data=json.dumps(body))
    assert response.status_code == 400
    message = response.get_json()["message"]
    assert "justification contains a text-direction control character (U+202E)" in message
    assert "items[0].description contains" in message
    # Any endpoint, any field: a VM request's justification, a key of the body.
    response = client.post("/api/v1/requests", headers=headers, data=json.dumps({"justification": "x\u2067y"}))
    assert response.status_code == 400 and "justification contains" in response.get_json()["message"]
    assert _purchases(journey_rt) == before


def test_attack_an_imported_inventory_with_a_right_to_left_override(seeded: Runtime) -> None:
    yaml_text = as_yaml(inventory({"edu-app-77": host(owner_name=f"张伟{RLO}")}))
    csv_text = _csv([_csv_row("hr-77", application_system=f"社保{RLO}系统")])
    for text, filename, expected in (
        (yaml_text, "a.yml", ("edu-app-77", "owner_name contains a text-direction control character (U+202E)")),
        (csv_text, "a.csv", ("hr-77", "line 2: application_system contains a text-direction control character")),
    ):
        with seeded.db.unit_of_work() as uow, pytest.raises(InventoryInvalid) as caught:
            import_inventory(uow.session, text, filename=filename, actor=Actor("ops", Role.OPERATOR))
        [(where, reason)] = caught.value.problems
        assert where == expected[0] and reason.startswith(expected[1]), (where, reason)


def test_attack_imported_capacity_planner_and_quota_files_with_direction_controls(
    seeded: Runtime, tmp_path: Path
) -> None:
    config = read_capacity_file(seeded.settings.capacity_file)
    capacity = f"base,date,physical_servers,vcpus,ram_gb,disk_gb,label\nzhangbei,2017-06-30,1,4,1,1,机房{RLO}A\n"
    with seeded.db.unit_of_work() as uow, pytest.raises(CapacityCsvInvalid) as info:
        import_csv(uow.session, config, capacity, source_name="bases.csv", actor=Actor("test", Role.OPERATOR))
    assert "bases.csv:2: label contains a text-direction control character (U+202E)" in info.value.message

    planner = tmp_path / "servers.csv"
    planner.write_text(f"name,vcpus,ram_gb,disk_gb,department\na,4,8,100,财政厅\nb{RLO},2,4,10,教育厅\n", "utf-8")
    with pytest.raises(PlannerInputError) as planned:
        read_servers_csv(planner)
    assert "line 3: name contains a text-direction control character (U+202E)" in str(planned.value)

    quotas = tmp_path / "quotas"
    quotas.mkdir()
    (quotas / "sizes.yaml").write_text(
        f"sizes:\n  small{RLO}:\n    cores: 1\n    ram_gb: 1\n    instances: 1\n    networks: 0\n    floating_ips: 0\n",
        "utf-8",
    )
    with pytest.raises(QuotaFilesInvalid) as bad_quota:
        read_quota_files(quotas)
    assert f"{quotas / 'sizes.yaml'}:2: a key of sizes contains a text-direction control character" in str(
        bad_quota.value
    )
