"""The classified rule through every entry point: each refused AND audited.

B2 (waves) and D (moves) add their own cases here or in their own tests.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cli import main
from cloudmgr.cloud import ServerSpec
from cloudmgr.cloud.guard import ClassifiedServerRefused
from cloudmgr.cloud.simulated import SimulatedProvider
from cloudmgr.inventory.classification import REFUSAL_ACTION, ensure_placeable, server_metadata
from cloudmgr.inventory.errors import ClassifiedPlacementRefused, SystemNotFound
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.inventory.planning import plan_systems
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ServiceRequest
from tests.inventory.helpers import make_system
from tests.journey_fixtures import Journey
from tests.web.helpers import csrf_token
from web import create_app


def refusals(runtime: Runtime, entry_point: str | None = None) -> list[AuditEvent]:
    with runtime.db.unit_of_work() as uow:
        events = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == REFUSAL_ACTION)).all()
    return [e for e in events if entry_point is None or e.detail.get("entry_point") == entry_point]


def _classified(runtime: Runtime, hostname: str = "edu-secret-01") -> int:
    with runtime.db.unit_of_work() as uow:
        system = make_system(uow.session, hostname, classification="classified", network="intranet", state="intranet")
        return system.id


# --- the service: ensure_placeable ----------------------------------------------------------


def test_non_classified_system_is_placeable_and_not_audited(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        system = make_system(uow.session, "edu-open-01")
        assert ensure_placeable(uow.session, system.id, actor=Actor("ops", Role.OPERATOR), entry_point="test") is system
        with pytest.raises(SystemNotFound):
            ensure_placeable(uow.session, 999_999, actor=Actor("ops", Role.OPERATOR), entry_point="test")
    assert refusals(seeded) == []


def test_refusal_is_audited_whether_the_caller_rolls_back_commits_or_closes(seeded: Runtime) -> None:
    system_id = _classified(seeded)
    # the caller rolls back: the refusal is written in its own transaction afterwards
    with pytest.raises(ClassifiedPlacementRefused) as caught, seeded.db.unit_of_work() as uow:
        make_system(uow.session, "edu-lost-01")  # the caller's own change, rolled back
        ensure_placeable(uow.session, system_id, actor=Actor("zhang", Role.OPERATOR), entry_point="test.rollback")
    assert caught.value.code == "classified_system" and caught.value.http_status == 409
    [event] = refusals(seeded, "test.rollback")
    assert event.actor == "zhang" and event.target_id == str(system_id)
    assert event.detail["hostname"] == "edu-secret-01"
    with seeded.db.unit_of_work() as uow:
        assert uow.session.scalars(select(LegacySystem.hostname)).all() == ["edu-secret-01"]
    # the caller catches the error and commits: the refusal commits with it, once
    with seeded.db.unit_of_work() as uow, pytest.raises(ClassifiedPlacementRefused):
        ensure_placeable(uow.session, system_id, actor=Actor("ops", Role.OPERATOR), entry_point="test.commit")
    assert len(refusals(seeded, "test.commit")) == 1
    # a session closed without commit or rollback
    session = seeded.db.session_factory()
    try:
        with pytest.raises(ClassifiedPlacementRefused):
            ensure_placeable(session, system_id, actor=Actor("ops", Role.OPERATOR), entry_point="test.close")
    finally:
        session.close()
    assert len(refusals(seeded, "test.close")) == 1


# --- the adapter ------------------------------------------------------------------------------


def test_simulated_provider_refuses_classified_metadata(tmp_path) -> None:  # type: ignore[no-untyped-def]
    provider = SimulatedProvider(state_path=tmp_path / "sim.json")
    project = provider.ensure_project("dept-guard", "guard--test")
    flavor = provider.list_flavors()[0]
    image = provider.list_images()[0]
    spec = ServerSpec(
        name="secret-vm",
        flavor_id=flavor.id,
        image_id=image.id,
        network_id=None,
        idempotency_key="guard-classified-1",
        metadata={"cloudmgr-legacy-system": "edu-secret-01", "cloudmgr-classification": "Classified"},
    )
    with pytest.raises(ClassifiedServerRefused):
        provider.create_server(project.id, spec)
    assert list(provider.list_servers(project.id).servers) == []
    open_spec = ServerSpec(
        name="open-vm",
        flavor_id=flavor.id,
        image_id=image.id,
        network_id=None,
        idempotency_key="guard-open-1",
        metadata={"cloudmgr-legacy-system": "edu-open-01", "cloudmgr-classification": "non_classified"},
    )
    assert provider.create_server(project.id, open_spec).name == "open-vm"


def test_server_metadata_names_the_system_and_its_classification(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        system = make_system(uow.session, "edu-meta-01", classification="classified", network="intranet")
        assert server_metadata(system) == {
            "cloudmgr-legacy-system": "edu-meta-01",
            "cloudmgr-classification": "classified",
        }


# --- the entry points: portal, API, CLI, planner ---------------------------------------------


def _requests(runtime: Runtime) -> int:
    with runtime.db.unit_of_work() as uow:
        return uow.session.scalar(select(func.count(ServiceRequest.id))) or 0


def _portal_form(journey: Journey, **overrides: Any) -> dict[str, Any]:
    form = journey.form(1)
    data = {
        "zone": "extranet",
        "flavor": str(form.flavor_item_id),
        "image": str(form.image_item_id),
        "count": "1",
        "name_prefix": "lic",
        "application_system": "学籍管理",
        "justification": "替代机房中的老旧服务器",
        "expires_on": (date.today() + timedelta(days=180)).isoformat(),
        "submit": "提交",
    }
    data.update(overrides)
    return data


def _portal_refuses(journey: Journey) -> None:
    secret_id = _classified(journey.rt)
    with journey.rt.db.unit_of_work() as uow:
        open_id = make_system(uow.session, "edu-open-02").id
    app = create_app(runtime=journey.rt)
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "zhangwei", "password": "demo-staff-2026", "csrf_token": token})
    page = client.get("/portal/requests/new?cloud=education").get_data(as_text=True)
    assert "edu-secret-01" in page and "edu-open-02" in page  # the department's systems to choose from
    data = _portal_form(journey, legacy_system=str(secret_id), csrf_token=csrf_token(page))
    response = client.post("/portal/requests/new?cloud=education", data=data)
    assert response.status_code == 409
    assert "涉密系统 edu-secret-01" in response.get_data(as_text=True)  # the reader's language
    assert _requests(journey.rt) == 0
    [event] = refusals(journey.rt, "portal.request")
    assert event.actor == "zhangwei"
    # a non-classified system is fine and recorded on the request
    response = client.post(
        "/portal/requests/new?cloud=education", data={**data, "legacy_system": str(open_id), "name_prefix": "ok"}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.scalars(select(ServiceRequest.legacy_system_id)).all() == [open_id]


def _api_refuses(journey: Journey) -> None:
    secret_id = _classified(journey.rt, "edu-secret-02")
    before = _requests(journey.rt)
    with journey.rt.db.unit_of_work() as uow:
        other_dept = make_system(uow.session, "hr-open-01", dept_key="ts-hrss").id
        user = org.get_user_by_name(uow.session, "zhangwei")
        token = org.issue_token(uow.session, user, name="t", expires_at=None, actor=Actor.system("test")).token
    client = create_app(runtime=journey.rt).test_client()
    form = journey.form(1)
    body = {
        "cloud": "education",
        "zone": "extranet",
        "flavor": form.flavor_item_id,
        "image": form.image_item_id,
        "count": 1,
        "name_prefix": "lic",
        "justification": "replaces a legacy server",
        "expires_on": (date.today() + timedelta(days=90)).isoformat(),
        "submit": True,
    }
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    response = client.post(
        "/api/v1/requests", headers=headers, data=json.dumps({**body, "legacy_system_id": secret_id})
    )
    assert response.status_code == 409
    assert response.get_json()["error"] == "classified_system"
    # another department's system is not found, not refused
    response = client.post(
        "/api/v1/requests", headers=headers, data=json.dumps({**body, "legacy_system_id": other_dept})
    )
    assert response.status_code == 404
    assert _requests(journey.rt) == before
    [event] = refusals(journey.rt, "api.request")
    assert event.actor == "zhangwei" and event.target_id == str(secret_id)


def _submission_rechecks(journey: Journey) -> None:
    with journey.rt.db.unit_of_work() as uow:
        system_id = make_system(uow.session, "edu-later-01").id
    from dataclasses import replace

    from cloudmgr.servicerequests import services as sr

    form = replace(journey.form(1), legacy_system_id=system_id)
    with journey.rt.db.unit_of_work() as uow:
        request_id = sr.create_request(uow.session, journey.staff, form, submit=False, settings=journey.rt.settings).id
    with journey.rt.db.unit_of_work() as uow:
        system = uow.session.get(LegacySystem, system_id)
        assert system is not None
        system.classification, system.network, system.state = "classified", "intranet", "intranet"
    with pytest.raises(ClassifiedPlacementRefused), journey.rt.db.unit_of_work() as uow:
        sr.submit_request(uow.session, journey.staff, request_id, settings=journey.rt.settings, entry_point="test")
    assert len(refusals(journey.rt, "test")) == 1
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.scalar(select(ServiceRequest.state).where(ServiceRequest.id == request_id)) == "draft"


def test_self_service_requests_naming_a_classified_system_are_refused_and_audited(journey: Journey) -> None:
    """Portal and API (create, and submission of a draft): one journey, three entry points."""
    _portal_refuses(journey)
    _api_refuses(journey)
    _submission_rechecks(journey)


def test_cli_set_target_refuses_a_classified_system_and_audits(seeded: Runtime, tmp_path: Path) -> None:
    _classified(seeded)
    with seeded.db.unit_of_work() as uow:
        make_system(uow.session, "edu-open-03")
    env = {"CLOUDMGR_DATABASE_URL": seeded.settings.database_url, "CLOUDMGR_INSTANCE_PATH": str(tmp_path)}
    runner = CliRunner()
    result = runner.invoke(main, ["inventory", "set-target", "edu-secret-01", "--cloud", "education"], env=env)
    assert result.exit_code == 1 and "classified system edu-secret-01" in result.output
    [event] = refusals(seeded, "cli")
    assert event.actor.startswith("cli:")
    result = runner.invoke(main, ["inventory", "set-target", "edu-open-03", "--cloud", "education"], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["inventory", "set-target", "edu-open-03", "--cloud", "health"], env=env)
    assert result.exit_code == 1 and "may not use cloud 'health'" in result.output


def test_planner_refuses_classified_systems_and_audits_each(seeded: Runtime) -> None:
    _classified(seeded)
    with seeded.db.unit_of_work() as uow:
        for n in range(3):
            make_system(uow.session, f"edu-open-1{n}")
        result = plan_systems(
            uow.session, host_vcpus=16, host_ram_gb=64, host_disk_gb=2000, actor=Actor("ops", Role.OPERATOR)
        )
    assert result.systems == 3 and result.refused == ["edu-secret-01"]
    assert "edu-secret-01" not in result.plan.placements
    assert [r.name for r in result.plan.refused] == ["edu-secret-01"]  # the planner refuses it again
    assert set(result.plan.placements) == {"edu-open-10", "edu-open-11", "edu-open-12"}
    [event] = refusals(seeded, "planner")
    assert event.actor == "ops"
