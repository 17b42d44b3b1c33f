"""Who may change a system's classification (issue 14), attacked through the real paths.

* An operator re-imports one host as non-classified (API, page, CLI): the system stays
  classified, a pending declassification is filed and audited, nothing says "updated".
* The requester approves their own request: refused.  An operator approves: refused (role).
  Another administrator approves: declassified, audited.
* A system classified while a server for it runs on the cloud raises an alert operators see
  (list page, system page, API), audited, and it stays until closed with a reason.
* ``make run``'s import of ``inventory/legacy.yml`` after an operator changed a system keeps
  the operator's change.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cli import main
from cloudmgr.inventory.importer import import_inventory
from cloudmgr.inventory.models import DeclassificationRequest, LegacySystem, ReclassificationAlert
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.programme.jobs import waves_progress_job
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ManagedServer
from tests.inventory.test_import import as_yaml, host, inventory
from tests.journey_fixtures import Journey
from tests.web.helpers import PASSWORDS, csrf_token, demo_login, logged_in
from web import create_app

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "inventory" / "legacy.yml"
OPERATOR = demo_login("operator").username
ADMIN = demo_login("admin").username
SECOND_ADMIN = "admin-li"
SECOND_ADMIN_PASSWORD = "Second-Admin-2026!"
SECRET = {"classification": "classified", "network": "intranet"}
OPEN = {"classification": "non_classified", "network": "extranet"}


@pytest.fixture
def app(seeded: Runtime) -> Flask:
    with seeded.db.unit_of_work() as uow:
        org.create_user(
            uow.session,
            username=SECOND_ADMIN,
            password=SECOND_ADMIN_PASSWORD,
            role=Role.ADMIN,
            actor=Actor.system("test"),
        )
    PASSWORDS[SECOND_ADMIN] = SECOND_ADMIN_PASSWORD
    return create_app(runtime=seeded)


class Api:
    def __init__(self, client: FlaskClient, rt: Runtime, username: str) -> None:
        self.client = client
        with rt.db.unit_of_work() as uow:
            user = org.get_user_by_name(uow.session, username)
            self.token = org.issue_token(
                uow.session, user, name="test", expires_at=None, actor=Actor.system("test")
            ).token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = self.client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {self.token}"})
        return response.status_code, response.get_json()


def _seed_classified(rt: Runtime, hostname: str = "edu-secret-01", **extra: Any) -> int:
    with rt.db.unit_of_work() as uow:
        import_inventory(
            uow.session,
            as_yaml(inventory({hostname: host(**SECRET)})),
            filename="a.yml",
            actor=Actor("seed", Role.OPERATOR),
        )
        system = uow.session.scalars(select(LegacySystem).where(LegacySystem.hostname == hostname)).one()
        for key, value in extra.items():
            setattr(system, key, value)
        return system.id


def _system(rt: Runtime, system_id: int) -> LegacySystem:
    with rt.db.unit_of_work() as uow:
        system = uow.session.get(LegacySystem, system_id)
        assert system is not None
        uow.session.expunge(system)
        return system


def _events(rt: Runtime, action: str, system_id: int | None = None) -> list[AuditEvent]:
    with rt.db.unit_of_work() as uow:
        query = select(AuditEvent).where(AuditEvent.action == action)
        if system_id is not None:
            query = query.where(AuditEvent.target_id == str(system_id))
        rows = list(uow.session.scalars(query.order_by(AuditEvent.id)))
        uow.session.expunge_all()
        return rows


def _pending(rt: Runtime, system_id: int) -> list[DeclassificationRequest]:
    with rt.db.unit_of_work() as uow:
        rows = list(
            uow.session.scalars(
                select(DeclassificationRequest).where(
                    DeclassificationRequest.system_id == system_id, DeclassificationRequest.state == "pending"
                )
            )
        )
        uow.session.expunge_all()
        return rows


def _cli(rt: Runtime, *args: str, input_text: str | None = None) -> Any:
    env = {"CLOUDMGR_DATABASE_URL": rt.settings.database_url, "CLOUDMGR_INSTANCE_PATH": str(rt.settings.instance_path)}
    return CliRunner().invoke(main, list(args), env=env, input=input_text)


def _assert_still_classified(rt: Runtime, system_id: int) -> None:
    system = _system(rt, system_id)
    assert (system.classification, system.network, system.state) == ("classified", "intranet", "intranet")


def test_attack_operator_declassifies_with_a_one_host_reimport_through_the_api(app: Flask, seeded: Runtime) -> None:
    system_id = _seed_classified(seeded)
    api = Api(app.test_client(), seeded, OPERATOR)
    one_host = as_yaml(inventory({"edu-secret-01": host(**OPEN, owner_contact="0311-1")}))
    status, body = api.call("POST", "/api/v1/systems/import", {"content": one_host, "filename": "fix.yml"})
    assert status == 200, body
    assert body["declassifications_held"] == 1 and body["held_hosts"] == ["edu-secret-01"]
    _assert_still_classified(seeded, system_id)
    assert _system(seeded, system_id).owner_contact == "0311-1"  # the other fields did apply
    (request,) = _pending(seeded, system_id)
    assert (request.requested_by, request.entry_point) == (OPERATOR, "inventory.import.api")
    assert (request.to_classification, request.to_network) == ("non_classified", "extranet")
    (event,) = _events(seeded, "legacy_system.declassification_requested", system_id)
    assert event.actor == OPERATOR and event.detail["entry_point"] == "inventory.import.api"
    updates = _events(seeded, "legacy_system.updated", system_id)
    assert all("classification" not in e.detail["changed"] for e in updates)
    # asking again (a re-import at every start) does not pile up requests
    assert api.call("POST", "/api/v1/systems/import", {"content": one_host})[0] == 200
    assert len(_pending(seeded, system_id)) == 1
    # the operator cannot approve it: administrators decide
    status, body = api.call("POST", f"/api/v1/declassifications/{request.id}/approve", {"reason": "mine"})
    assert status == 403
    _assert_still_classified(seeded, system_id)


def test_attack_declassifying_through_the_page_and_the_cli_is_held(app: Flask, seeded: Runtime, tmp_path: Path) -> None:
    page_id = _seed_classified(seeded, "edu-secret-page")
    cli_id = _seed_classified(seeded, "edu-secret-cli")
    ops = logged_in(app, OPERATOR)
    token = csrf_token(ops.get("/ops/systems/import").get_data(as_text=True))
    text = as_yaml(inventory({"edu-secret-page": host(**OPEN)}))
    response = ops.post(
        "/ops/systems/import",
        data={"csrf_token": token, "inventory_file": (io.BytesIO(text.encode()), "fix.yml")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert 'data-testid="pending-declassifications"' in response.get_data(as_text=True)
    _assert_still_classified(seeded, page_id)
    assert _pending(seeded, page_id)[0].entry_point == "inventory.import.page"

    path = tmp_path / "fix.yml"
    path.write_text(as_yaml(inventory({"edu-secret-cli": host(**OPEN)})), encoding="utf-8")
    result = _cli(seeded, "inventory", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "1 declassification(s) held for an administrator's approval" in result.output
    _assert_still_classified(seeded, cli_id)
    assert _pending(seeded, cli_id)[0].entry_point == "inventory.import.cli"


def test_attack_the_requester_approves_their_own_declassification(app: Flask, seeded: Runtime) -> None:
    system_id = _seed_classified(seeded)
    with seeded.db.unit_of_work() as uow:  # an administrator who also imports (e.g. through a script)
        import_inventory(
            uow.session,
            as_yaml(inventory({"edu-secret-01": host(**OPEN)})),
            filename="fix.yml",
            actor=Actor(ADMIN, Role.ADMIN),
            entry_point="inventory.import.cli",
        )
    (request,) = _pending(seeded, system_id)
    own = Api(app.test_client(), seeded, ADMIN)
    status, body = own.call("POST", f"/api/v1/declassifications/{request.id}/approve", {"reason": "trust me"})
    assert status == 403 and body["error"] == "declassification_self_approval"
    _assert_still_classified(seeded, system_id)
    # the page refuses it too
    admin_page = logged_in(app, ADMIN)
    token = csrf_token(admin_page.get("/admin/declassifications").get_data(as_text=True))
    admin_page.post(f"/admin/declassifications/{request.id}/approve", data={"csrf_token": token, "reason": "x"})
    _assert_still_classified(seeded, system_id)
    assert _events(seeded, "legacy_system.declassification_approved") == []

    # a second administrator approves on the page: declassified, back in scope, audited
    second = logged_in(app, SECOND_ADMIN)
    listing = second.get("/admin/declassifications").get_data(as_text=True)
    assert 'data-testid="declassification-edu-secret-01"' in listing
    response = second.post(
        f"/admin/declassifications/{request.id}/approve",
        data={"csrf_token": csrf_token(listing), "reason": "the data owner confirmed in writing"},
    )
    assert response.status_code == 302
    system = _system(seeded, system_id)
    assert (system.classification, system.network, system.state) == ("non_classified", "extranet", "legacy")
    (event,) = _events(seeded, "legacy_system.declassification_approved", system_id)
    assert event.actor == SECOND_ADMIN and event.detail["requested_by"] == ADMIN
    assert event.reason == "the data owner confirmed in writing"


def test_an_administrator_rejects_through_the_api_and_the_cli_lists_it(app: Flask, seeded: Runtime) -> None:
    system_id = _seed_classified(seeded)
    Api(app.test_client(), seeded, OPERATOR).call(
        "POST", "/api/v1/systems/import", {"content": as_yaml(inventory({"edu-secret-01": host(**OPEN)}))}
    )
    (request,) = _pending(seeded, system_id)
    admin = Api(app.test_client(), seeded, ADMIN)
    assert admin.call("POST", f"/api/v1/declassifications/{request.id}/reject", {})[0] == 400  # a reason
    status, body = admin.call("POST", f"/api/v1/declassifications/{request.id}/reject", {"reason": "still secret"})
    assert status == 200 and body["state"] == "rejected"
    _assert_still_classified(seeded, system_id)
    assert [e.actor for e in _events(seeded, "legacy_system.declassification_rejected", system_id)] == [ADMIN]
    result = _cli(seeded, "inventory", "declassifications", "--state", "rejected")
    assert result.exit_code == 0 and "edu-secret-01" in result.output and "still secret" in result.output
    result = _cli(
        seeded,
        "inventory",
        "decide-declassification",
        str(request.id),
        "--approve",
        "--as",
        SECOND_ADMIN,
        input_text=SECOND_ADMIN_PASSWORD + "\n",
    )
    assert result.exit_code != 0 and "already rejected" in result.output


def test_attack_at_the_console_a_typed_administrator_name_is_not_a_second_person(app: Flask, seeded: Runtime) -> None:
    """Whoever sits at the console must be the deciding administrator: their password, not just their name."""
    system_id = _seed_classified(seeded)
    Api(app.test_client(), seeded, OPERATOR).call(
        "POST", "/api/v1/systems/import", {"content": as_yaml(inventory({"edu-secret-01": host(**OPEN)}))}
    )
    (request,) = _pending(seeded, system_id)
    args = ("inventory", "decide-declassification", str(request.id), "--approve", "--as", SECOND_ADMIN)
    result = _cli(seeded, *args, input_text="a guess at the password\n")
    assert result.exit_code != 0 and SECOND_ADMIN in result.output
    _assert_still_classified(seeded, system_id)
    assert _pending(seeded, system_id)
    with seeded.db.unit_of_work() as uow:
        failures = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "auth.login_failed", AuditEvent.actor == SECOND_ADMIN)
        ).all()
        assert failures, "the failed console login is audited"
    result = _cli(seeded, *args, input_text=SECOND_ADMIN_PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "approved" in result.output
    system = _system(seeded, system_id)
    assert system.classification == "non_classified"
    (event,) = _events(seeded, "legacy_system.declassification_approved", system_id)
    assert event.actor == SECOND_ADMIN


def test_attack_classifying_a_system_with_a_server_on_the_cloud_alerts_the_operators(
    app: Flask, seeded: Runtime
) -> None:
    with seeded.db.unit_of_work() as uow:
        import_inventory(
            uow.session,
            as_yaml(inventory({"edu-web-01": host()})),
            filename="a.yml",
            actor=Actor("seed", Role.OPERATOR),
        )
        system = uow.session.scalars(select(LegacySystem).where(LegacySystem.hostname == "edu-web-01")).one()
        system.state, system.cloud_server_id = "on_cloud", "srv-4242"
        system_id = system.id
    api = Api(app.test_client(), seeded, OPERATOR)
    status, body = api.call(
        "POST", "/api/v1/systems/import", {"content": as_yaml(inventory({"edu-web-01": host(**SECRET)}))}
    )
    assert status == 200 and body["alerts_raised"] == 1, body
    assert _system(seeded, system_id).classification == "classified"  # the safe direction applies at once
    (event,) = _events(seeded, "legacy_system.reclassified_on_cloud", system_id)
    assert event.actor == OPERATOR and event.detail["servers"] == ["migrated server srv-4242"]

    ops = logged_in(app, OPERATOR)
    listing = ops.get("/ops/systems").get_data(as_text=True)
    assert 'data-testid="alert-edu-web-01"' in listing and "srv-4242" in listing
    detail = ops.get(f"/ops/systems/{system_id}").get_data(as_text=True)
    assert 'data-testid="reclassification-alerts"' in detail
    status, alerts = api.call("GET", "/api/v1/systems/alerts")
    (alert,) = alerts["items"]
    assert alert["hostname"] == "edu-web-01" and alert["servers_now"] == ["migrated server srv-4242"]
    # it stays until closed: no reason while the server is still there → refused
    assert api.call("POST", f"/api/v1/systems/alerts/{alert['id']}/close", {})[0] == 400
    assert len(api.call("GET", "/api/v1/systems/alerts")[1]["items"]) == 1
    token = csrf_token(listing)
    response = ops.post(
        f"/ops/systems/alerts/{alert['id']}/close",
        data={"csrf_token": token, "reason": "server is being deleted under change 2026-118"},
    )
    assert response.status_code == 302
    with seeded.db.unit_of_work() as uow:
        closed = uow.session.get(ReclassificationAlert, alert["id"])
        assert closed is not None and (closed.state, closed.closed_by) == ("acknowledged", OPERATOR)
    assert 'data-testid="alert-edu-web-01"' not in ops.get("/ops/systems").get_data(as_text=True)


def test_attack_make_run_reimports_the_sample_after_an_operator_changed_a_system(seeded: Runtime) -> None:
    assert _cli(seeded, "inventory", "import", "--only-new", str(SAMPLE)).exit_code == 0
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))

    def first_open_host(group: Any) -> tuple[str, dict[str, Any]]:
        for name, values in (group.get("hosts") or {}).items():
            if (values or {}).get("classification") == "non_classified":
                return name, values
        for child in (group.get("children") or {}).values():
            found = first_open_host(child)
            if found[0]:
                return found
        return "", {}

    hostname, _values = first_open_host(data["all"])
    with seeded.db.unit_of_work() as uow:  # an operator classifies it and corrects the owner's contact
        system = uow.session.scalars(select(LegacySystem).where(LegacySystem.hostname == hostname)).one()
        system_id = system.id
        department = system.department.key
        room = system.server_room.code
        changed = host(**SECRET, owner_contact="0311-99999999")
        import_inventory(
            uow.session,
            as_yaml(inventory({hostname: changed}, dept=department, room=room)),
            filename="operator.yml",
            actor=Actor(OPERATOR, Role.OPERATOR),
            entry_point="inventory.import.page",
        )
    # the next `make run`
    result = _cli(seeded, "inventory", "import", "--only-new", str(SAMPLE))
    assert result.exit_code == 0, result.output
    assert "already stored, left as they are" in result.output
    system = _system(seeded, system_id)
    assert (system.classification, system.owner_contact) == ("classified", "0311-99999999")
    # even a full re-import of the file never lowers the classification: held for approval
    result = _cli(seeded, "inventory", "import", str(SAMPLE))
    assert result.exit_code == 0 and "held for an administrator's approval" in result.output
    assert _system(seeded, system_id).classification == "classified"
    assert len(_pending(seeded, system_id)) == 1


def test_attack_classifying_a_system_whose_self_service_server_runs_alerts_until_it_is_gone(
    journey: Journey,
) -> None:
    """The server came from a VM request naming the system (not from a migration)."""
    rt = journey.rt
    dept = "prov-education"  # zhangwei's department
    with rt.db.unit_of_work() as uow:
        import_inventory(
            uow.session,
            as_yaml(inventory({"edu-lic-01": host()}, dept=dept)),
            filename="a.yml",
            actor=Actor("seed", Role.OPERATOR),
        )
        system_id = uow.session.scalars(select(LegacySystem.id).where(LegacySystem.hostname == "edu-lic-01")).one()
    form = replace(journey.form(1, prefix="lic"), legacy_system_id=system_id)
    with rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(
            uow.session,
            journey.staff,
            form,
            submit=True,
            settings=rt.settings,
        ).id
    for actor in (journey.head, journey.operator):
        with rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actor, request_id, reason="ok")
    journey.drain()
    with rt.db.unit_of_work() as uow:
        server = uow.session.scalars(select(ManagedServer).where(ManagedServer.request_id == request_id)).one()
        assert server.state == "active"
        server_name = server.name
    _cli(rt, "inventory", "import", "--only-new", str(SAMPLE))  # unrelated noise must not matter
    path = rt.settings.instance_path / "reclassify.yml"
    path.write_text(as_yaml(inventory({"edu-lic-01": host(**SECRET)}, dept=dept)), encoding="utf-8")
    result = _cli(rt, "inventory", "import", str(path))
    assert result.exit_code == 0 and "classified with servers on the cloud" in result.output, result.output
    (event,) = _events(rt, "legacy_system.reclassified_on_cloud", system_id)
    assert server_name in event.detail["servers"][0] and event.detail["entry_point"] == "inventory.import.cli"
    result = _cli(rt, "inventory", "alerts")
    assert "edu-lic-01" in result.output and server_name in result.output

    # the waves.progress job resolves it only once the server has left the cloud
    waves_progress_job()
    with rt.db.unit_of_work() as uow:
        assert uow.session.scalar(select(ReclassificationAlert.state)) == "open"
        uow.session.scalars(select(ManagedServer)).one().state = "deleted"
    waves_progress_job()
    with rt.db.unit_of_work() as uow:
        alert = uow.session.scalars(select(ReclassificationAlert)).one()
        assert (alert.state, alert.closed_by) == ("resolved", "system:reclassification")


def test_attack_the_declassification_page_offers_approval_only_to_a_second_administrator(
    app: Flask, seeded: Runtime
) -> None:
    """Who may decide and who may approve a declassification is decided by the reclassification service
    (may_decide_declassification, may_approve_declassification); the page offers the buttons it allows."""
    from cloudmgr.inventory import reclassification

    system_id = _seed_classified(seeded)
    requester = Actor(ADMIN, Role.ADMIN)
    with seeded.db.unit_of_work() as uow:
        import_inventory(
            uow.session,
            as_yaml(inventory({"edu-secret-01": host(**OPEN)})),
            filename="fix.yml",
            actor=requester,
            entry_point="inventory.import.cli",
        )
    (pending,) = _pending(seeded, system_id)
    second = Actor(SECOND_ADMIN, Role.ADMIN)
    operator = Actor(OPERATOR, Role.OPERATOR)
    assert reclassification.may_decide_declassification(requester, pending)
    assert not reclassification.may_approve_declassification(requester, pending)
    assert reclassification.may_approve_declassification(second, pending)
    assert not reclassification.may_decide_declassification(operator, pending)
    own = logged_in(app, ADMIN).get("/admin/declassifications").get_data(as_text=True)
    assert f"/admin/declassifications/{pending.id}/reject" in own
    assert f"/admin/declassifications/{pending.id}/approve" in own  # the form's action; no Approve button:
    assert 'data-testid="second-admin-approves"' in own
    other = logged_in(app, SECOND_ADMIN).get("/admin/declassifications").get_data(as_text=True)
    assert 'data-testid="second-admin-approves"' not in other
    assert f'formaction="/admin/declassifications/{pending.id}/approve"' in other
    _assert_still_classified(seeded, system_id)
