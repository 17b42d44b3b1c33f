"""The operators' legacy-system pages, the import form, and the metric (Flask test client)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cloudmgr.inventory.models import LegacySystem
from cloudmgr.inventory.services import transition_system
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime
from tests.web.helpers import csrf_token, logged_in

SAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "legacy.yml"


@pytest.fixture
def imported(seeded: Runtime) -> Runtime:
    from cloudmgr.inventory.importer import import_inventory

    with seeded.db.unit_of_work() as uow:
        import_inventory(
            uow.session,
            SAMPLE.read_text(encoding="utf-8"),
            filename="legacy.yml",
            actor=Actor("operator", Role.OPERATOR),
        )
    return seeded


def _id(rt: Runtime, hostname: str) -> int:
    with rt.db.unit_of_work() as uow:
        found = uow.session.scalar(select(LegacySystem.id).where(LegacySystem.hostname == hostname))
    assert found is not None
    return found


def test_list_sorted_easy_to_hard_with_classified_apart_and_filters(app: Flask, imported: Runtime) -> None:
    assert logged_in(app, "zhangwei").get("/ops/systems").status_code == 403  # operators only
    ops = logged_in(app, "operator")
    assert 'href="/ops/systems"' in ops.get("/ops/").get_data(as_text=True)  # the nav item
    html = ops.get("/ops/systems").get_data(as_text=True)
    in_scope = html[html.index('data-testid="systems-in-scope"') : html.index('data-testid="systems-out-of-scope"')]
    out_scope = html[html.index('data-testid="systems-out-of-scope"') :]
    hosts_in = re.findall(r'data-hostname="([^"]+)"', in_scope)
    hosts_out = re.findall(r'data-hostname="([^"]+)"', out_scope)
    assert "czt-hexin-db01" in hosts_out and "czt-hexin-db01" not in hosts_in
    assert len(hosts_out) == 6 and len(hosts_in) == 45
    with imported.db.unit_of_work() as uow:
        scores = dict(uow.session.execute(select(LegacySystem.hostname, LegacySystem.complexity_score)).tuples().all())
    assert [scores[h] for h in hosts_in] == sorted(scores[h] for h in hosts_in)
    assert "待迁移上云" in html and "涉密与内网系统（不上云）" in html and "迁移难度" in html
    # filters: department, scope, state
    html = ops.get("/ops/systems?department=prov-finance&scope=in").get_data(as_text=True)
    assert set(re.findall(r'data-hostname="([^"]+)"', html)) == {
        "czt-budget-app01",
        "czt-budget-db01",
        "czt-zhifu-app01",
        "czt-zhifu-db01",
    }
    assert 'data-testid="systems-out-of-scope"' not in html
    with imported.db.unit_of_work() as uow:
        system = uow.session.get(LegacySystem, _id(imported, "zd-web01"))
        assert system is not None
        transition_system(uow.session, system, "planned", actor=Actor("operator", Role.OPERATOR), reason="wave 1")
    html = ops.get("/ops/systems?state=planned").get_data(as_text=True)
    assert re.findall(r'data-hostname="([^"]+)"', html) == ["zd-web01"]
    # nonsense filters are ignored, not errors
    assert ops.get("/ops/systems?state=nope&scope=maybe&department=x&page=-3").status_code == 200
    assert "In scope (move to the cloud)" in ops.get("/ops/systems?lang=en").get_data(as_text=True)


def test_system_page_shows_vars_reasons_and_history(app: Flask, imported: Runtime) -> None:
    ops = logged_in(app, "operator")
    system_id = _id(imported, "jyt-gaokao-db01")
    with imported.db.unit_of_work() as uow:
        system = uow.session.get(LegacySystem, system_id)
        assert system is not None
        transition_system(uow.session, system, "planned", actor=Actor("operator", Role.OPERATOR), reason="第一批")
    html = ops.get(f"/ops/systems/{system_id}").get_data(as_text=True)
    assert "高考网上报名系统" in html and "省教育考试院机房" in html and "10.21.3.21" in html
    assert "Windows Server 2008 R2" in html and "孙丽" in html and "jyt-gaokao-web01" in html  # used by
    reasons = html[html.index('data-testid="complexity-reasons"') :]
    assert "windows_drivers" in reasons and "os_end_of_life" in reasons and "迁移难度：55" in html
    history = html[html.index('data-testid="system-history"') :]
    assert "已导入" in history and "第一批" in history and "已排入迁移批次" in history
    secret = ops.get(f"/ops/systems/{_id(imported, 'bgt-gongwen01')}").get_data(as_text=True)
    assert 'data-testid="classified-notice"' in secret
    assert ops.get("/ops/systems/999999").status_code == 404
    assert ops.get("/ops/systems/99999999999").status_code == 404


def _upload(client: FlaskClient, name: str, data: bytes) -> tuple[int, str]:
    token = csrf_token(client.get("/ops/systems/import").get_data(as_text=True))
    response = client.post(
        "/ops/systems/import",
        data={"csrf_token": token, "inventory_file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )
    return response.status_code, response.get_data(as_text=True)


def test_import_form_all_or_nothing_with_every_error(app: Flask, seeded: Runtime) -> None:
    ops = logged_in(app, "operator")
    bad = SAMPLE.read_text(encoding="utf-8").replace("cpu_p95_pct: 35", "cpu_p95_pct: 135", 1)
    bad = bad.replace("department: prov-hrss", "department: prov-nowhere")
    status, html = _upload(ops, "legacy.yml", bad.encode())
    assert status == 400
    problems = html[html.index('data-testid="import-problems"') :]
    assert "jyt-portal-web01" in problems and "cpu_p95_pct must be between 0 and 100" in problems
    assert problems.count("unknown department &#39;prov-nowhere&#39;") == 6  # every host of the department
    assert "未导入任何内容" in html
    with seeded.db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count(LegacySystem.id))) == 0
    status, html = _upload(ops, "legacy.yml", b"\xff\xfe not utf-8")
    assert status == 400 and "UTF-8" in html
    token = csrf_token(ops.get("/ops/systems/import").get_data(as_text=True))
    assert ops.post("/ops/systems/import", data={"csrf_token": token}).status_code == 400  # no file
    response = ops.post(
        "/ops/systems/import",
        data={"csrf_token": token, "inventory_file": (io.BytesIO(SAMPLE.read_bytes()), "legacy.yml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    html = ops.get(response.headers["Location"]).get_data(as_text=True)
    assert "已从 legacy.yml 导入 51 个系统" in html
    with seeded.db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count(LegacySystem.id))) == 51


def test_metric_counts_systems_by_state_and_classification(client: FlaskClient, imported: Runtime) -> None:
    text = client.get("/metrics").get_data(as_text=True)
    assert 'cloudmgr_legacy_systems{classification="classified",state="intranet"} 6.0' in text
    assert 'cloudmgr_legacy_systems{classification="non_classified",state="legacy"} 45.0' in text
