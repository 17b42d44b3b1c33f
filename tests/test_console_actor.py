"""Decisions taken at the console are taken by the user named, who proves it with their password
(issue 14: a typed ``--as`` name let whoever had a shell approve as anyone)."""

from __future__ import annotations

from click.testing import CliRunner, Result
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cli import main
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ServiceRequest
from tests.journey_fixtures import Journey
from tests.web.helpers import PASSWORDS


def _approve(j: Journey, request_id: int, username: str, password: str) -> Result:
    env = {
        "CLOUDMGR_INSTANCE_PATH": str(j.rt.settings.instance_path),
        "CLOUDMGR_DATABASE_URL": j.rt.settings.database_url,
        "CLOUDMGR_CLOUD_PROVIDER": "simulated",
    }
    args = ["requests", "approve", str(request_id), "--as", username, "--reason", "ok"]
    return CliRunner().invoke(main, args, env=env, input=f"{password}\n")


def _state(j: Journey, request_id: int) -> tuple[str, int]:
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None
        return request.state, request.current_step


def test_attack_approving_at_the_console_as_someone_else_needs_their_password(journey: Journey) -> None:
    with journey.rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(
            uow.session, journey.staff, journey.form(1), submit=True, settings=journey.rt.settings
        ).id

    # Whoever sits at the console types the head's name: without her password nothing moves.
    refused = _approve(journey, request_id, "lina", "a guess")
    assert refused.exit_code != 0 and "lina:" in refused.output
    assert _state(journey, request_id) == ("submitted", 0)
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "auth.login_failed", AuditEvent.actor == "lina")
        ).all()

    # An unknown user is refused the same way, with a non-zero exit.
    assert _approve(journey, request_id, "nobody-such", "x").exit_code != 0

    approved = _approve(journey, request_id, "lina", PASSWORDS["lina"])
    assert approved.exit_code == 0, approved.output
    assert "waiting for operator" in approved.output
    assert _state(journey, request_id) == ("submitted", 1)

    # The operator, with his own password, takes the last step.
    operator = _approve(journey, request_id, "operator", PASSWORDS["operator"])
    assert operator.exit_code == 0 and _state(journey, request_id)[0] == "approved"
