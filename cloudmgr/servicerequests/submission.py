"""A department user's new request, as a draft or submitted at once, and the submission of a draft:
its servers are written and their quota held in the same unit of work."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from cloudmgr.config import Settings
from cloudmgr.db import utcnow
from cloudmgr.firewall import services as firewall
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.servicerequests.errors import (
    InvalidTransition,
    NotYourTurn,
    RequestInvalid,
)
from cloudmgr.servicerequests.models import ManagedServer, RequestEvent, ServiceRequest
from cloudmgr.servicerequests.placement import check_legacy_system
from cloudmgr.servicerequests.quoting import RequestForm, approval_steps, validated
from cloudmgr.servicerequests.reading import get_request
from cloudmgr.servicerequests.states import REQUEST_MACHINE, RequestState, ServerState
from cloudmgr.servicerequests.transitions import notify, record_transition, reserve_servers


def create_request(
    session: Session,
    actor: Actor,
    form: RequestForm,
    *,
    submit: bool,
    settings: Settings,
    today: date | None = None,
    entry_point: str = "request",
) -> ServiceRequest:
    """A department user's new request, as a draft or submitted at once.  ``entry_point``
    ("portal.request", "api.request") names the path in the classified rule's audit."""
    if actor.role not in {Role.DEPT_STAFF, Role.DEPT_HEAD}:
        raise RequestInvalid("only department users request VMs")
    valid = validated(session, actor, form, today or date.today())
    cloud, flavor, image, key = valid.cloud, valid.flavor, valid.image, valid.key
    check_legacy_system(session, actor, form.legacy_system_id, entry_point)
    assert actor.department_id is not None
    cost = valid.monthly_cost(form.count)
    request = ServiceRequest(
        kind="create",
        department_id=actor.department_id,
        cloud_id=cloud.id,
        zone=form.zone,
        flavor_item_id=flavor.id,
        image_item_id=image.id,
        count=form.count,
        name_prefix=form.name_prefix,
        application_system=(form.application_system or "").strip() or None,
        legacy_system_id=form.legacy_system_id,
        justification=form.justification.strip(),
        expires_on=form.expires_on,
        monthly_cost=cost,
        # The key is copied now: the user may delete it later, provisioning uses this copy.
        ssh_key_name=key.name if key else None,
        ssh_public_key=key.public_key if key else None,
        ssh_key_fingerprint=key.fingerprint if key else None,
        user_data=form.user_data or None,
        data_disks=[disk.as_stored() for disk in valid.disks],
        public_address=valid.address is not None,
        state=RequestState.DRAFT,
        created_by=actor.username,
    )
    session.add(request)
    session.flush()
    # The firewall chosen (or the members-only default) is kept with the draft, in this unit of
    # work: a refused rule refused the request above, before anything was written.
    firewall.set_request_firewall(
        session, request.id, request.department, form.zone, valid.firewall.template_ids, valid.firewall.rules
    )
    session.add(
        RequestEvent(request_id=request.id, actor=actor.username, action="create", from_state="draft", to_state="draft")
    )
    if submit:
        submit_request(session, actor, request.id, settings=settings, entry_point=entry_point)
    return request


def _may_submit_as(actor: Actor, request: ServiceRequest) -> bool:
    return request.created_by == actor.username or actor.role == Role.DEPT_HEAD


def may_submit(actor: Actor, request: ServiceRequest) -> bool:
    """Whether ``actor`` may submit ``request`` now: a draft, by its author or the department head."""
    return request.state == RequestState.DRAFT and _may_submit_as(actor, request)


def submit_request(
    session: Session, actor: Actor, request_id: int, *, settings: Settings, entry_point: str = "request"
) -> ServiceRequest:
    request = get_request(session, actor, request_id, for_update=True)
    if not _may_submit_as(actor, request):
        raise NotYourTurn("only the author or the department head submits a draft")
    if request.state != RequestState.DRAFT:
        # SUBMITTED -> SUBMITTED is an approval step, not a second submission (a double click):
        # submitting again would add the servers twice.
        raise InvalidTransition(f"request {request.id} is {request.state}: only a draft can be submitted")
    REQUEST_MACHINE.check(request.state, RequestState.SUBMITTED)
    # A draft's system may have been reclassified since: check again at submission.
    check_legacy_system(session, actor, request.legacy_system_id, entry_point, request_id=request.id)
    flavor = request.flavor
    for index in range(1, request.count + 1):
        session.add(
            ManagedServer(
                request_id=request.id,
                index=index,
                department_id=request.department_id,
                cloud_id=request.cloud_id,
                zone=request.zone,
                name=f"{request.name_prefix}-{index:02d}",
                flavor_item_id=flavor.id,
                vcpus=flavor.vcpus,
                ram_mb=flavor.ram_mb,
                idempotency_key=f"cm-r{request.id}-s{index}-a1",
                state=ServerState.PENDING,
                expires_on=request.expires_on,
            )
        )
    session.flush()
    session.refresh(request, ["servers"])
    # The firewall the request holds now (a draft's templates may have been changed by an
    # operator since it was saved): a world-open rule on a closed zone is refused here too.
    plan = firewall.request_plan(session, request.id, request.department, request.zone)
    reserve_servers(session, request, plan)  # raises QuotaExceeded: the whole submission rolls back
    # A port opened to the whole internet needs an operator's yes even where the cloud's policy
    # leaves operators out: the same chain the quote showed (quoting.approval_steps).
    request.approval_steps = approval_steps(request.cloud, request.monthly_cost, plan.approval_reasons)
    request.current_step = 0
    request.submitted_at = utcnow()
    record_transition(session, request, RequestState.SUBMITTED, actor=actor, action="submit")
    notify(session, "submitted", request)
    return request
