"""The wave and programme pages (operators; finance and departments read the programme), their
API and metrics, on the simulated cloud with a small inventory and a fixed "today"."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.programme import tracking
from cloudmgr.runtime import Runtime
from cloudmgr.workqueue.models import WorkItem
from tests.programme.conftest import TODAY, Inventory, build_scenario, lean_programme_state
from tests.web.helpers import csrf_token, logged_in
from web import create_app

WAVE_FORM = {
    "name": "第一批",
    "cloud": "education",
    "zone": "extranet",
    "window_start": "2026-12-05",
    "window_end": "2026-12-06",
}


@pytest.fixture
def app(seeded: Runtime, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setattr(tracking, "today", lambda: TODAY)
    lean_programme_state(seeded)
    return create_app(runtime=seeded)


@pytest.fixture
def inv(seeded: Runtime) -> Inventory:
    return Inventory(seeded)


def _post(client: FlaskClient, path: str, page: str, data: dict[str, Any] | None = None) -> Any:
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **(data or {})})


def test_operators_build_check_and_start_a_wave_in_the_pages(app: Flask, seeded: Runtime, inv: Inventory) -> None:
    hard = inv.system("edu-hard", complexity=70)
    easy = inv.system("edu-easy", complexity=3)
    secret = inv.system("edu-secret", classification="classified")
    inv.system("edu-web", network="internet")
    ops = logged_in(app, "operator")
    assert "No waves yet" in ops.get("/ops/waves").get_data(as_text=True) or ops.get("/ops/waves").status_code == 200

    bad = _post(
        ops,
        "/ops/waves/new",
        "/ops/waves/new",
        {**WAVE_FORM, "window_start": "2026-12-06", "window_end": "2026-12-05"},
    )
    assert bad.status_code == 400 and "窗口结束日期早于开始日期。" in bad.get_data(as_text=True)
    created = _post(
        ops,
        "/ops/waves/new",
        "/ops/waves/new",
        WAVE_FORM,
    )
    assert created.status_code == 302
    page = created.headers["Location"]
    wave_id = int(page.rsplit("/", 1)[1])
    html = ops.get(page).get_data(as_text=True)
    candidates = re.findall(r'data-candidate="([^"]+)"', html)
    assert candidates == ["edu-easy", "edu-hard"]  # neither the internet nor the classified system

    refused = _post(ops, f"/ops/waves/{wave_id}/systems", page, {"system_id": [str(secret), str(easy)]})
    assert refused.status_code == 409
    assert "涉密系统" in refused.get_data(as_text=True)  # the refusal in the page's language
    added = _post(ops, f"/ops/waves/{wave_id}/systems", page, {"system_id": [str(hard), str(easy)]})
    assert added.status_code == 302
    html = ops.get(page).get_data(as_text=True)
    members = html.split('data-testid="members"')[1].split("</table>")[0]
    assert re.findall(r'data-hostname="([^"]+)"', members) == ["edu-easy", "edu-hard"]  # easy to hard

    early = _post(ops, f"/ops/waves/{wave_id}/start", page)
    assert early.status_code == 409 and "须先通过检查" in early.get_data(as_text=True)
    assert _post(ops, f"/ops/waves/{wave_id}/check", page).status_code == 302
    html = ops.get(page).get_data(as_text=True)
    assert 'data-fits="yes"' in html and 'data-testid="hosts-needed">1<' in html
    # when it was checked, in the pages' local time (not the stored ISO text in UTC)
    checked = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d)(?:[^\d:]|$)", html.split('id="check-title"')[1])
    assert checked and "T" not in checked.group(0) and "+00:00" not in html.split('id="check-title"')[1][:600]
    assert _post(ops, f"/ops/waves/{wave_id}/start", page).status_code == 302
    assert 'data-testid="wave-state">' in ops.get(page).get_data(as_text=True)
    with seeded.db.unit_of_work() as uow:
        kinds = uow.session.scalars(select(WorkItem.kind)).all()
    assert kinds.count("runbook.migrate_system") == 2
    assert _post(ops, f"/ops/waves/{wave_id}/cancel", page).status_code == 409
    listing = ops.get("/ops/waves").get_data(as_text=True)
    assert f'data-wave="{wave_id}"' in listing and "第一批" in listing
    assert ops.get("/ops/waves/999999").status_code == 404


def test_the_programme_page_for_operators_finance_and_departments(app: Flask, inv: Inventory) -> None:
    build_scenario(inv)
    ops = logged_in(app, "operator")
    html = ops.get("/ops/programme").get_data(as_text=True)
    assert 'data-testid="in-scope">6<' in html and 'data-testid="overdue">1<' in html
    assert 'data-testid="burndown-chart"' in html and 'data-testid="ideal-line"' in html
    assert html.count('data-testid="deadline-line"') == 2
    assert 'data-hostname="edu-old"' in html and 'data-hostname="edu-soon"' in html
    assert ops.get("/ops/programme?period=week").status_code == 200
    assert html.count('data-testid="close-room"') == 1  # only zd-room has nothing left

    # closing: refused while systems remain, done when they are
    full = inv.room("edu-room-1", "prov-education")
    refused = _post(ops, f"/ops/programme/rooms/{full}/close", "/ops/programme")
    assert refused.status_code == 303
    assert "edu-old" in ops.get("/ops/programme").get_data(as_text=True)
    done = inv.room("zd-room", "sjz-zhengding-gov")
    assert _post(ops, f"/ops/programme/rooms/{done}/close", "/ops/programme").status_code == 302
    assert 'data-testid="rooms-closed">1 / 4<' in ops.get("/ops/programme").get_data(as_text=True)

    finance = logged_in(app, "finance").get("/finance/programme").get_data(as_text=True)
    assert 'data-testid="in-scope">6<' in finance and "close-room" not in finance

    staff = logged_in(app, "zhangwei").get("/portal/programme").get_data(as_text=True)
    assert 'data-testid="in-scope">3<' in staff and 'data-department="prov-education"' in staff
    assert "ts-later" not in staff and "ts-hrss" not in staff and "close-room" not in staff
    other = logged_in(app, "wangfang").get("/portal/programme").get_data(as_text=True)
    assert 'data-testid="in-scope">2<' in other and "edu-old" not in other
    assert logged_in(app, "zhangwei").get("/ops/programme").status_code == 403


def _token(rt: Runtime, username: str) -> dict[str, str]:
    from datetime import UTC, datetime

    with rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(
            uow.session, user, name="t", expires_at=datetime.now(UTC) + timedelta(days=1), actor=Actor.system("test")
        ).token
    return {"Authorization": f"Bearer {token}"}


def test_the_waves_and_programme_api(app: Flask, seeded: Runtime, inv: Inventory) -> None:
    ids = build_scenario(inv)
    ids["edu-new"] = inv.system("edu-new", complexity=1)
    client = app.test_client()
    ops = _token(seeded, "operator")

    bad = client.post("/api/v1/waves", json={"name": "x", "cloud": "education", "zone": "lan"}, headers=ops)
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid"
    assert "window_start is required" in bad.get_json()["message"]
    wrong = client.post(
        "/api/v1/waves",
        json={**WAVE_FORM, "zone": "lan"},
        headers=ops,
    )
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "wave_invalid"
    created = client.post(
        "/api/v1/waves",
        json={**WAVE_FORM, "name": "API 批次"},
        headers=ops,
    )
    assert created.status_code == 201, created.get_json()
    wave_id = created.get_json()["id"]
    base = f"/api/v1/waves/{wave_id}"

    secret = client.post(base + "/systems", json={"systems": [ids["edu-secret"]]}, headers=ops)
    assert secret.status_code == 409 and secret.get_json()["error"] == "classified_system"
    assert client.post(base + "/systems", json={"systems": [True]}, headers=ops).status_code == 400
    added = client.post(base + "/systems", json={"systems": ["edu-old", ids["edu-new"]]}, headers=ops)
    assert added.status_code == 200
    assert [m["hostname"] for m in added.get_json()["members"]] == ["edu-new", "edu-old"]
    assert client.post(base + "/start", headers=ops).status_code == 409
    checked = client.post(base + "/check", headers=ops).get_json()
    assert checked["state"] == "checked" and checked["check"]["fits"]
    started = client.post(base + "/start", headers=ops).get_json()
    assert started["state"] == "running"
    assert client.post(base + "/cancel", json={"reason": "x"}, headers=ops).status_code == 409
    listed = client.get("/api/v1/waves?state=running", headers=ops).get_json()["items"]
    assert [(w["id"], w["systems"]) for w in listed] == [(wave_id, 2)]
    assert client.get("/api/v1/waves/2147483647", headers=ops).status_code == 404
    staff = _token(seeded, "zhangwei")
    assert client.get("/api/v1/waves", headers=staff).status_code == 403

    whole = client.get("/api/v1/programme", headers=ops).get_json()
    assert (whole["in_scope"], whole["done"], whole["overdue"], whole["at_risk"]) == (7, 3, 2, 1)
    assert whole["deadlines"]["cloud"] == "2018-12-31"
    assert whole["burndown"]["ideal"] == [
        {"date": "2017-01-01", "remaining": 7},
        {"date": "2018-12-31", "remaining": 0},
    ]
    # migrating is not done: still overdue until on the cloud
    assert {(x["hostname"], x["state"]) for x in whole["overdue_systems"]} == {
        ("edu-old", "migrating"),
        ("edu-new", "migrating"),
    }
    finance = client.get("/api/v1/programme?department=ts-hrss", headers=_token(seeded, "finance")).get_json()
    assert [r["key"] for r in finance["departments"]] == ["ts-hrss"]
    own = client.get("/api/v1/programme?department=ts-hrss", headers=staff).get_json()
    assert [r["key"] for r in own["departments"]] == ["prov-education"]  # their own, whatever they ask
    assert client.get("/api/v1/programme?department=nowhere", headers=ops).status_code == 404
    burn = client.get("/api/v1/programme/burndown?period=week", headers=ops).get_json()
    assert burn["period"] == "week" and burn["actual"] == [{"date": TODAY.isoformat(), "remaining": 4}]

    metrics = client.get("/metrics").get_data(as_text=True)
    assert "cloudmgr_at_risk_systems 1.0" in metrics
    assert 'cloudmgr_migration_waves{state="running"} 1.0' in metrics
    assert 'cloudmgr_server_rooms{state="open"} 5.0' in metrics


FLASH = re.compile(r'<div class="flash flash-(\w+)"[^>]*>(.*?)</div>', re.S)


def test_operators_put_several_systems_into_a_wave_from_the_list(app: Flask, inv: Inventory) -> None:
    easy = inv.system("edu-easy", complexity=3)
    hard = inv.system("edu-hard", complexity=70)
    secret = inv.system("edu-secret", classification="classified")
    ops = logged_in(app, "operator")
    wave_id = int(_post(ops, "/ops/waves/new", "/ops/waves/new", WAVE_FORM).headers["Location"].rsplit("/", 1)[1])
    html = ops.get("/ops/systems").get_data(as_text=True)
    assert f'<option value="{wave_id}"' in html and f'value="{easy}" form="systems-to-wave"' in html
    token = csrf_token(html)
    response = ops.post(
        "/ops/systems/to-wave?q=edu",
        data={"csrf_token": token, "wave_id": str(wave_id), "system_id": [str(easy), str(secret), str(hard)]},
        follow_redirects=True,
    )
    assert response.status_code == 200
    flashes = FLASH.findall(response.get_data(as_text=True))
    assert [kind for kind, _text in flashes] == ["success", "error"]
    assert "2" in flashes[0][1] and "edu-secret" in flashes[1][1]  # the classified one, with the reason
    members = ops.get(f"/ops/waves/{wave_id}").get_data(as_text=True).split('data-testid="members"')[1]
    assert re.findall(r'data-hostname="([^"]+)"', members.split("</table>")[0]) == ["edu-easy", "edu-hard"]
    # Nothing ticked, or a wave that is not one of the open ones: the form says so, nothing changes.
    assert ops.post("/ops/systems/to-wave", data={"csrf_token": token, "wave_id": str(wave_id)}).status_code == 400
    bad_wave = ops.post(
        "/ops/systems/to-wave", data={"csrf_token": token, "wave_id": "999999", "system_id": [str(secret)]}
    )
    assert bad_wave.status_code == 400


def test_systems_and_waves_lists_search_filter_and_page(app: Flask, inv: Inventory) -> None:
    for n in range(3):
        inv.system(f"edu-app{n}", complexity=n + 1)
    inv.system("edu-findme", complexity=50)
    ops = logged_in(app, "operator")
    hosts = re.compile(r'data-hostname="([^"]+)"')
    assert hosts.findall(ops.get("/ops/systems?q=findme&scope=in").get_data(as_text=True)) == ["edu-findme"]
    assert hosts.findall(ops.get("/ops/systems?scope=in&per_page=2").get_data(as_text=True)) == [
        "edu-app0",
        "edu-app1",
    ]
    page_two = ops.get("/ops/systems?scope=in&per_page=2&page=2").get_data(as_text=True)
    assert hosts.findall(page_two) == ["edu-app2", "edu-findme"] and 'rel="prev"' in page_two
    for query in ("page=-1", "per_page=1000000000000", "page=99999999", "state=nope", "q=" + "x" * 5000):
        assert ops.get(f"/ops/systems?{query}").status_code == 200, query
    _post(ops, "/ops/waves/new", "/ops/waves/new", WAVE_FORM)
    _post(ops, "/ops/waves/new", "/ops/waves/new", {**WAVE_FORM, "name": "第二批"})
    waves = re.compile(r'data-wave="(\d+)"')
    assert len(waves.findall(ops.get("/ops/waves").get_data(as_text=True))) == 2
    assert len(waves.findall(ops.get("/ops/waves?q=第二").get_data(as_text=True))) == 1
    assert len(waves.findall(ops.get("/ops/waves?per_page=1&page=5").get_data(as_text=True))) == 1
    assert len(waves.findall(ops.get("/ops/waves?state=done").get_data(as_text=True))) == 0
    assert ops.get("/ops/waves?state=bogus&page=-9").status_code == 200
