"""Issue 14, the review's attack on the classified rule (涉密系统不上云), through the real API,
the real inventory importer and the real work queue on the simulated cloud.

The attack: ask for servers for a non-classified legacy system, have the system re-imported
as classified (intranet) while the request goes on, and let it be approved, provisioned,
retried, resized.  Every one of these steps must refuse, audit who/what/which path, and
boot nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.inventory.classification import CLASSIFICATION_METADATA_KEY, LEGACY_SYSTEM_METADATA_KEY
from cloudmgr.organisation.models import Cloud
from cloudmgr.quotas.models import QuotaReservation
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.provisioning import SYSTEM
from cloudmgr.workqueue.models import WorkItem
from tests.journey_fixtures import Journey
from tests.servicerequests.classified_helpers import Api, api_as, cloud_servers, import_system, refusals
from tests.web.helpers import logged_in, post_form
from web import create_app


def _body(journey: Journey, system_id: int | None, *, prefix: str, submit: bool = True) -> dict[str, Any]:
    form = journey.form(1)
    body: dict[str, Any] = {
        "cloud": "education",
        "zone": "extranet",
        "flavor": form.flavor_item_id,
        "image": form.image_item_id,
        "count": 1,
        "name_prefix": prefix,
        "justification": "replaces the legacy server",
        "expires_on": (date.today() + timedelta(days=90)).isoformat(),
        "submit": submit,
    }
    if system_id is not None:
        body["legacy_system_id"] = system_id
    return body


def _quote(journey: Journey, system_id: int) -> dict[str, Any]:
    body = _body(journey, system_id, prefix="quote")
    del body["submit"]
    return body


def _submit(staff: Api, journey: Journey, system_id: int | None, prefix: str) -> int:
    response = staff.post("/requests", _body(journey, system_id, prefix=prefix))
    assert response.status_code == 201, response.get_data(as_text=True)
    return int(response.get_json()["id"])


def _request(journey: Journey, request_id: int) -> ServiceRequest:
    with journey.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None
        uow.session.expunge(request)
        return request


def _servers(journey: Journey, request_id: int) -> list[ManagedServer]:
    with journey.rt.db.unit_of_work() as uow:
        servers = list(uow.session.scalars(select(ManagedServer).where(ManagedServer.request_id == request_id)))
        for server in servers:
            uow.session.expunge(server)
        return servers


def _refused(response: Any) -> None:
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.get_json()["error"] == "classified_system"


def _three_step_chain(journey: Journey) -> None:
    """The education cloud's chain with finance as a third step (as the clouds file may say)."""
    with journey.rt.db.unit_of_work() as uow:
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == "education"))
        assert cloud is not None
        cloud.approval_policy = {"steps": ["dept_head", "operator", "finance"]}


def test_attack_system_reclassified_after_submission_is_refused_at_every_approval_step(journey: Journey) -> None:
    _three_step_chain(journey)
    app = create_app(runtime=journey.rt)
    staff, head = api_as(app, journey.rt, "zhangwei"), api_as(app, journey.rt, "lina")
    operator, finance = api_as(app, journey.rt, "operator"), api_as(app, journey.rt, "finance")
    systems = {step: import_system(journey.rt, f"edu-atk-{step}", classified=False) for step in ("a", "b", "c")}
    requests = {step: _submit(staff, journey, system_id, f"atk-{step}") for step, system_id in systems.items()}
    # b waits for the operator, c for finance, before their systems are reclassified
    assert head.post(f"/requests/{requests['b']}/approve").status_code == 200
    assert head.post(f"/requests/{requests['c']}/approve").status_code == 200
    assert operator.post(f"/requests/{requests['c']}/approve").status_code == 200
    for step in ("a", "b", "c"):
        import_system(journey.rt, f"edu-atk-{step}", classified=True)

    for step, approver, entry_point, username, position in (
        ("a", head, "approve.dept_head", "lina", 0),
        ("b", operator, "approve.operator", "operator", 1),
        ("c", finance, "approve.finance", "finance", 2),
    ):
        _refused(approver.post(f"/requests/{requests[step]}/approve", {"reason": "looks fine"}))
        [event] = refusals(journey.rt, entry_point)
        assert event.actor == username and event.target_id == str(systems[step])
        assert event.detail["request_id"] == requests[step] and event.detail["hostname"] == f"edu-atk-{step}"
        request = _request(journey, requests[step])
        assert request.state == "submitted" and request.current_step == position  # not carried further
    with journey.rt.db.unit_of_work() as uow:
        assert uow.session.scalars(select(WorkItem).where(WorkItem.kind == "provision")).all() == []
    journey.drain()
    assert cloud_servers(journey.rt, "education") == []


def test_attack_quote_for_a_classified_or_foreign_system_does_not_say_it_fits(journey: Journey) -> None:
    app = create_app(runtime=journey.rt)
    staff = api_as(app, journey.rt, "zhangwei")
    open_id = import_system(journey.rt, "edu-quote-open", classified=False)
    secret_id = import_system(journey.rt, "edu-quote-secret", classified=True)
    foreign_id = import_system(journey.rt, "hr-quote-open", classified=False, dept="ts-hrss")
    fine = staff.post("/requests/quote", _quote(journey, open_id))
    assert fine.status_code == 200 and fine.get_json()["fits"] is True
    _refused(staff.post("/requests/quote", _quote(journey, secret_id)))
    [event] = refusals(journey.rt, "api.quote")
    assert event.actor == "zhangwei" and event.target_id == str(secret_id)
    foreign = staff.post("/requests/quote", _quote(journey, foreign_id))
    assert foreign.status_code == 404  # exactly like a creation: another department's system does not exist
    assert len(refusals(journey.rt)) == 1
    # The portal's preview: the refusal is shown on the form, not a price that "fits".
    browser = logged_in(app, "zhangwei")
    form = journey.form(1)
    preview = {
        "zone": "extranet",
        "flavor": str(form.flavor_item_id),
        "image": str(form.image_item_id),
        "count": "1",
        "name_prefix": "preview",
        "justification": "replaces the legacy server",
        "expires_on": (date.today() + timedelta(days=90)).isoformat(),
        "legacy_system": str(secret_id),
        "preview": "1",
    }
    page = post_form(browser, "/portal/requests/new?cloud=education", preview)
    assert page.status_code == 409
    assert "涉密系统 edu-quote-secret 不得部署到云平台" in page.get_data(as_text=True)  # the reader's language
    [event] = refusals(journey.rt, "portal.quote")
    assert event.actor == "zhangwei" and event.target_id == str(secret_id)


def test_attack_system_reclassified_after_final_approval_boots_nothing_and_retry_is_refused(
    journey: Journey,
) -> None:
    app = create_app(runtime=journey.rt)
    staff, head, operator = (api_as(app, journey.rt, name) for name in ("zhangwei", "lina", "operator"))
    system_id = import_system(journey.rt, "edu-atk-late", classified=False)
    request_id = _submit(staff, journey, system_id, "late")
    assert head.post(f"/requests/{request_id}/approve").status_code == 200
    assert operator.post(f"/requests/{request_id}/approve").status_code == 200
    assert _request(journey, request_id).state == "approved"
    import_system(journey.rt, "edu-atk-late", classified=True)  # between the approval and the worker

    journey.drain()  # the provisioning job, as the scheduler's workers run it

    assert cloud_servers(journey.rt, "education") == []  # nothing booted
    request = _request(journey, request_id)
    assert request.state == "failed" and "classified system edu-atk-late" in (request.state_reason or "")
    [server] = _servers(journey, request_id)
    assert server.state == "error" and server.server_id is None
    assert "classified system edu-atk-late" in (server.fault or "")
    with journey.rt.db.unit_of_work() as uow:
        reservation = uow.session.scalar(
            select(QuotaReservation).where(QuotaReservation.owner == f"server:{server.id}")
        )
        assert reservation is not None and reservation.state == "released"
        failed = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "server.failed", AuditEvent.target_id == str(server.id))
        ).all()
        assert [e.detail["code"] for e in failed] == ["classified_system"]
    [event] = refusals(journey.rt, "provisioning")
    assert event.actor == SYSTEM.username and event.detail["request_id"] == request_id

    # The operator retries the failed server: refused, audited, nothing queued or booted.
    _refused(operator.post(f"/servers/{server.id}/retry"))
    [event] = refusals(journey.rt, "retry")
    assert event.actor == "operator" and event.detail["server_id"] == server.id
    [server] = _servers(journey, request_id)
    assert server.state == "error" and server.attempt == 1
    journey.drain()
    assert cloud_servers(journey.rt, "education") == []


def test_attack_resize_of_a_reclassified_systems_server_is_refused_at_request_approval_and_job(
    journey: Journey,
) -> None:
    app = create_app(runtime=journey.rt)
    staff, head, operator = (api_as(app, journey.rt, name) for name in ("zhangwei", "lina", "operator"))
    system_id = import_system(journey.rt, "edu-atk-grow", classified=False)
    request_id = _submit(staff, journey, system_id, "grow")
    for approver in (head, operator):
        assert approver.post(f"/requests/{request_id}/approve").status_code == 200
    journey.drain()
    [server] = _servers(journey, request_id)
    assert server.state == "active"
    bigger = journey.form(1, flavor="m1.medium").flavor_item_id
    resize = {"flavor": bigger, "justification": "more users"}
    # One resize approved before the reclassification (its job runs after), one still waiting.
    approved = staff.post(f"/servers/{server.id}/resize", resize)
    waiting = staff.post(f"/servers/{server.id}/resize", resize)
    assert approved.status_code == waiting.status_code == 201
    approved_id, waiting_id = approved.get_json()["id"], waiting.get_json()["id"]
    for approver in (head, operator):
        assert approver.post(f"/requests/{approved_id}/approve").status_code == 200
    import_system(journey.rt, "edu-atk-grow", classified=True)

    _refused(staff.post(f"/servers/{server.id}/resize", resize))  # at the request
    [event] = refusals(journey.rt, "api.resize")
    assert event.actor == "zhangwei" and event.detail["server_id"] == server.id
    _refused(head.post(f"/requests/{waiting_id}/approve"))  # at the approval
    [event] = refusals(journey.rt, "approve.dept_head")
    assert event.actor == "lina" and event.detail["request_id"] == waiting_id
    journey.drain()  # at the job: the cloud is not asked to resize
    request = _request(journey, approved_id)
    assert request.state == "failed" and "classified system edu-atk-grow" in (request.state_reason or "")
    [event] = refusals(journey.rt, "resize.job")
    assert event.detail["request_id"] == approved_id
    [cloud_server] = cloud_servers(journey.rt, "education")
    [after] = _servers(journey, request_id)
    assert after.flavor_item_id == server.flavor_item_id and cloud_server.flavor_name == "m1.small"
    with journey.rt.db.unit_of_work() as uow:
        held = uow.session.scalar(select(QuotaReservation).where(QuotaReservation.owner == f"resize:{approved_id}"))
        assert held is not None and held.state == "released"


def test_every_self_service_server_carries_its_systems_hostname_and_classification(journey: Journey) -> None:
    """So that the adapter's guard sees what it boots; a server replacing no system claims
    non-classified explicitly."""
    app = create_app(runtime=journey.rt)
    staff, head, operator = (api_as(app, journey.rt, name) for name in ("zhangwei", "lina", "operator"))
    system_id = import_system(journey.rt, "edu-meta-sys", classified=False)
    with_system = _submit(staff, journey, system_id, "meta")
    without = _submit(staff, journey, None, "plain")
    for request_id in (with_system, without):
        for approver in (head, operator):
            assert approver.post(f"/requests/{request_id}/approve").status_code == 200
    journey.drain()
    by_name = {s.name: s.metadata for s in cloud_servers(journey.rt, "education")}
    assert by_name["meta-01"][LEGACY_SYSTEM_METADATA_KEY] == "edu-meta-sys"
    assert by_name["meta-01"][CLASSIFICATION_METADATA_KEY] == "non_classified"
    assert by_name["plain-01"][CLASSIFICATION_METADATA_KEY] == "non_classified"
    assert LEGACY_SYSTEM_METADATA_KEY not in by_name["plain-01"]
