"""A finished wave says what happened (issue 18): "done" only when every system is on the cloud;
a wave whose only system stopped at its pre-check (rolled_back: the source still serves) ended
with no system migrated, one with some on the cloud ended partly.  And the wave and system
pages say so instead of 已完成 and 已回退."""

from __future__ import annotations

from datetime import date

import pytest
from flask import Flask

from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.programme import services as waves
from cloudmgr.programme import tracking
from cloudmgr.runtime import Runtime
from tests.programme.conftest import TODAY, Env, Inventory, lean_programme_state
from tests.web.helpers import logged_in
from tests.web.test_programme import _token
from web import create_app

AS_OPERATOR = Actor(username="operator", role=Role.OPERATOR)


def _run_wave(journey: Env, inventory: Inventory, finals: dict[str, str]) -> int:
    """A wave of ``finals``' systems started, each system then set to its final state, finished."""
    ids = {name: inventory.system(name) for name in finals}
    with journey.rt.db.unit_of_work() as uow:
        wave_id = waves.create_wave(
            uow.session,
            name="第一批",
            cloud_key="education",
            zone="extranet",
            window_start=date(2026, 12, 5),
            window_end=date(2026, 12, 6),
            actor=AS_OPERATOR,
        ).id
        waves.add_systems(uow.session, wave_id, list(ids.values()), actor=AS_OPERATOR)
    assert waves.check_wave(journey.rt.db, journey.rt.providers, wave_id, actor=AS_OPERATOR)["fits"]
    with journey.rt.db.unit_of_work() as uow:
        waves.start_wave(uow.session, wave_id, actor=AS_OPERATOR)
    for name, state in finals.items():
        inventory.set_state(ids[name], state)
    with journey.rt.db.unit_of_work() as uow:
        assert waves.finish_waves(uow.session) == [wave_id]
    return wave_id


def _outcome(journey: Env, wave_id: int) -> tuple[str, str]:
    with journey.rt.db.unit_of_work() as uow:
        wave = waves.get_wave(uow.session, wave_id)
        return str(wave.state), wave.outcome


@pytest.mark.parametrize(
    ("finals", "outcome"),
    [
        ({"edu-a": "rolled_back"}, "done_none"),  # its only system failed its pre-check
        ({"edu-a": "on_cloud", "edu-b": "rolled_back"}, "done_partly"),
        ({"edu-a": "on_cloud", "edu-b": "decommissioned"}, "done"),
    ],
)
def test_a_finished_wave_says_how_many_systems_moved(
    journey: Env, inventory: Inventory, finals: dict[str, str], outcome: str
) -> None:
    wave_id = _run_wave(journey, inventory, finals)
    assert _outcome(journey, wave_id) == ("done", outcome)


def test_an_open_waves_outcome_is_its_state(journey: Env, inventory: Inventory) -> None:
    inventory.system("edu-a")
    with journey.rt.db.unit_of_work() as uow:
        wave = waves.create_wave(
            uow.session,
            name="草稿",
            cloud_key="education",
            zone="extranet",
            window_start=date(2026, 12, 5),
            window_end=date(2026, 12, 6),
            actor=AS_OPERATOR,
        )
        assert wave.outcome == "draft"


@pytest.fixture
def app(seeded: Runtime, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setattr(tracking, "today", lambda: TODAY)
    lean_programme_state(seeded)
    return create_app(runtime=seeded)


def test_the_pages_do_not_call_a_failed_wave_done_nor_a_failed_precheck_rolled_back(
    app: Flask, seeded: Runtime
) -> None:
    journey, inventory = Env(seeded), Inventory(seeded)
    wave_id = _run_wave(journey, inventory, {"edu-a": "rolled_back"})
    ops = logged_in(app, "operator")
    page = ops.get(f"/ops/waves/{wave_id}").get_data(as_text=True)
    state = page.split('data-testid="wave-state">')[1].split("<")[0]
    assert state != "已完成" and state in {"已结束：没有系统完成迁移", "Ended: no system migrated"}
    assert "state-bad" in page.split('data-testid="wave-state"')[0].rsplit("<span", 1)[1]
    listing = ops.get("/ops/waves").get_data(as_text=True)
    assert "已完成" not in listing.split(f'data-wave="{wave_id}"')[1].split("</tr>")[0]
    # the system's state: not "rolled back" (已回退) but what is true: not migrated, the source serves
    assert "已回退" not in page
    assert "未迁移" in page or "Not migrated: the source still serves" in page
    # the quota check names the department, not its key (the key stays in data-department)
    quota = page.split('data-testid="quota-check"')[1].split("</table>")[0]
    assert '<tr data-department="prov-education">' in quota
    assert '<th scope="row">省教育厅</th>' in quota
    # the API says the same
    headers = _token(seeded, "operator")
    body = app.test_client().get(f"/api/v1/waves/{wave_id}", headers=headers).get_json()
    assert (body["state"], body["outcome"]) == ("done", "done_none")
    listed = app.test_client().get("/api/v1/waves", headers=headers).get_json()["items"]
    assert [w["outcome"] for w in listed if w["id"] == wave_id] == ["done_none"]
