"""Waves keep the clouds' rules on every path (issue 14).

* A system of a department that may not use the wave's cloud is refused through the API, the
  page and the CLI, and again when the wave starts (the link may have gone meanwhile).
* A system classified after its wave started is refused when its migration work item runs
  (audited, entry point "runbook.migrate") and leaves "migrating" for "rolled_back".
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import delete, select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cli import main
from cloudmgr.inventory.errors import ClassifiedPlacementRefused
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, DepartmentCloud, Role
from cloudmgr.programme import services as waves
from cloudmgr.programme.errors import WaveMemberRefused
from cloudmgr.programme.models import MigrationWaveMember
from cloudmgr.runbooks.services import migrate_system
from tests.programme.conftest import Env, Inventory
from tests.web.helpers import csrf_token, logged_in
from web import create_app

OPERATOR = "operator"
AS_OPERATOR = Actor(username=OPERATOR, role=Role.OPERATOR)


def _wave(journey: Env) -> int:
    with journey.rt.db.unit_of_work() as uow:
        return waves.create_wave(
            uow.session,
            name="教育云第一批",
            cloud_key="education",
            zone="extranet",
            window_start=date(2026, 12, 5),
            window_end=date(2026, 12, 6),
            actor=AS_OPERATOR,
        ).id


def _members(journey: Env, wave_id: int) -> list[int]:
    with journey.rt.db.unit_of_work() as uow:
        return list(
            uow.session.scalars(select(MigrationWaveMember.system_id).where(MigrationWaveMember.wave_id == wave_id))
        )


def _api(client: FlaskClient, journey: Env) -> dict[str, str]:
    with journey.rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, OPERATOR)
        token = org.issue_token(uow.session, user, name="test", expires_at=None, actor=Actor.system("test")).token
    return {"Authorization": f"Bearer {token}"}


def test_attack_a_wave_takes_a_department_that_may_not_use_its_cloud(journey: Env, inventory: Inventory) -> None:
    # ts-hrss (Tangshan) may use ts-gov and hrss, not the provincial education cloud
    outsider = inventory.system("ts-hr-01", "ts-hrss")
    wave_id = _wave(journey)
    app = create_app(runtime=journey.rt)

    client = app.test_client()
    response = client.post(
        f"/api/v1/waves/{wave_id}/systems", json={"systems": [outsider]}, headers=_api(client, journey)
    )
    assert response.status_code == 409, response.get_json()
    body: Any = response.get_json()
    assert body["error"] == "wave_member_refused" and "may not use cloud education" in body["message"]

    ops = logged_in(app, OPERATOR)
    page = f"/ops/waves/{wave_id}"
    html = ops.get(page).get_data(as_text=True)
    assert 'data-candidate="ts-hr-01"' not in html  # not even offered
    refused = ops.post(f"{page}/systems", data={"csrf_token": csrf_token(html), "system_id": [str(outsider)]})
    # The page says it in Chinese (the API and CLI below in English).
    assert refused.status_code == 409 and "不能使用云平台 education" in refused.get_data(as_text=True)

    env = {
        "CLOUDMGR_DATABASE_URL": journey.rt.settings.database_url,
        "CLOUDMGR_INSTANCE_PATH": str(journey.rt.settings.instance_path),
    }
    result = CliRunner().invoke(main, ["waves", "add", str(wave_id), "ts-hr-01"], env=env)
    assert result.exit_code != 0 and "may not use cloud education" in result.output
    assert _members(journey, wave_id) == []
    assert inventory.state(outsider) == "legacy"


def test_attack_the_department_loses_the_cloud_before_the_wave_starts(journey: Env, inventory: Inventory) -> None:
    system_id = inventory.system("edu-app-01")
    wave_id = _wave(journey)
    with journey.rt.db.unit_of_work() as uow:
        waves.add_systems(uow.session, wave_id, [system_id], actor=AS_OPERATOR)
    assert waves.check_wave(journey.rt.db, journey.rt.providers, wave_id, actor=AS_OPERATOR)["fits"]
    with journey.rt.db.unit_of_work() as uow:
        education = uow.session.scalars(select(Cloud.id).where(Cloud.key == "education")).one()
        dept = uow.session.scalars(select(Department.id).where(Department.key == "prov-education")).one()
        uow.session.execute(
            delete(DepartmentCloud).where(DepartmentCloud.department_id == dept, DepartmentCloud.cloud_id == education)
        )
    with pytest.raises(WaveMemberRefused, match="may not use cloud education"), journey.rt.db.unit_of_work() as uow:
        waves.start_wave(uow.session, wave_id, actor=AS_OPERATOR)
    assert inventory.state(system_id) == "planned"  # nothing started


def test_attack_a_system_classified_after_its_wave_started_is_refused_by_its_work_item(
    journey: Env, inventory: Inventory
) -> None:
    system_id = inventory.system("edu-app-02")
    wave_id = _wave(journey)
    with journey.rt.db.unit_of_work() as uow:
        waves.add_systems(uow.session, wave_id, [system_id], actor=AS_OPERATOR)
    assert waves.check_wave(journey.rt.db, journey.rt.providers, wave_id, actor=AS_OPERATOR)["fits"]
    with journey.rt.db.unit_of_work() as uow:
        waves.start_wave(uow.session, wave_id, actor=AS_OPERATOR)
    assert inventory.state(system_id) == "migrating"
    with journey.rt.db.unit_of_work() as uow:  # classified meanwhile (the import applies it at once)
        system = uow.session.get(LegacySystem, system_id)
        assert system is not None
        system.classification, system.network = "classified", "intranet"
    rt = journey.rt
    with pytest.raises(ClassifiedPlacementRefused):
        migrate_system(rt.db, rt.settings, rt.providers, system_id, actor=Actor.system("worker"), wave_id=wave_id)
    assert inventory.state(system_id) == "rolled_back"
    with rt.db.unit_of_work() as uow:
        refusals = uow.session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "legacy_system.placement_refused", AuditEvent.target_id == str(system_id)
            )
        ).all()
        assert [e.detail["entry_point"] for e in refusals] == ["runbook.migrate"]
