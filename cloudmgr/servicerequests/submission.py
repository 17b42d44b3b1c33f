"""A department user's new request, as a draft or submitted at once, and the submission of a draft:
its servers are written and their quota held in the same unit of work."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from cloudmgr.config import Settings
from cloudmgr.db import utcnow
from cloudmgr.firewall import services as firewall
from cloudmgr.keys import services as keys
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.servicerequests.errors import (
    InvalidTransition,
    NotYourTurn,
    RequestInvalid,
)
from cloudmgr.servicerequests.models import ManagedServer, RequestEvent, ServiceRequest
from cloudmgr.servicerequests.placement import check_legacy_system
from cloudmgr.servicerequests.quoting import DataDisk, RequestForm, ValidRequest, approval_steps, validated
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
    request = ServiceRequest(kind="create", department_id=actor.department_id, state=RequestState.DRAFT)
    valid = _write_draft(session, actor, request, form, today=today, entry_point=entry_point)
    request.created_by = actor.username
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


def _write_draft(
    session: Session, actor: Actor, request: ServiceRequest, form: RequestForm, *, today: date | None, entry_point: str
) -> ValidRequest:
    """Check ``form`` by the request rules (:func:`validated`: the department's clouds, the
    catalog, the classified rule on the legacy system …) and write it into the draft ``request``.
    Raises before anything is written."""
    valid = validated(session, actor, form, today or date.today())
    check_legacy_system(session, actor, form.legacy_system_id, entry_point, request_id=request.id)
    cloud, flavor, image, key = valid.cloud, valid.flavor, valid.image, valid.key
    request.cloud_id = cloud.id
    request.zone = form.zone
    request.flavor_item_id = flavor.id
    request.image_item_id = image.id
    request.count = form.count
    request.name_prefix = form.name_prefix
    request.application_system = (form.application_system or "").strip() or None
    request.legacy_system_id = form.legacy_system_id
    request.justification = form.justification.strip()
    request.expires_on = form.expires_on
    request.monthly_cost = valid.monthly_cost(form.count)
    # The key is copied now: the user may delete it later, provisioning uses this copy.
    request.ssh_key_name = key.name if key else None
    request.ssh_public_key = key.public_key if key else None
    request.ssh_key_fingerprint = key.fingerprint if key else None
    request.user_data = form.user_data or None
    request.data_disks = [disk.as_stored() for disk in valid.disks]
    request.public_address = valid.address is not None
    return valid


def may_edit(actor: Actor, request: ServiceRequest) -> bool:
    """Whether ``actor`` may change ``request`` now: a draft of a new server, by its author alone
    (a department head approves what colleagues ask for, not write it for them)."""
    return request.state == RequestState.DRAFT and request.kind == "create" and request.created_by == actor.username


def update_draft(
    session: Session,
    actor: Actor,
    request_id: int,
    form: RequestForm,
    *,
    submit: bool,
    settings: Settings,
    today: date | None = None,
    entry_point: str = "request",
) -> ServiceRequest:
    """The author changes a draft: checked by the same rules as a new request (the department's
    clouds, the catalog, the classified rule, the firewall on its zone …), then saved in place, and
    submitted at once when ``submit`` (the quota is held at submission, as for a new request)."""
    request = get_request(session, actor, request_id, for_update=True)  # another department's: not found
    if request.created_by != actor.username:
        raise NotYourTurn("only the author changes a draft")
    if request.state != RequestState.DRAFT or request.kind != "create":
        raise InvalidTransition(f"request {request.id} is {request.state}: only a draft can be changed")
    valid = _write_draft(session, actor, request, form, today=today, entry_point=entry_point)
    firewall.set_request_firewall(
        session, request.id, request.department, form.zone, valid.firewall.template_ids, valid.firewall.rules
    )
    session.add(
        RequestEvent(request_id=request.id, actor=actor.username, action="edit", from_state="draft", to_state="draft")
    )
    session.flush()
    if submit:
        submit_request(session, actor, request.id, settings=settings, entry_point=entry_point)
    return request


def draft_form(session: Session, actor: Actor, request: ServiceRequest) -> RequestForm:
    """A draft as the form it was written from, to change it: its SSH key is the actor's key of the
    same fingerprint (none if it is gone), its firewall the templates and rules it keeps."""
    key_id = None
    if request.ssh_key_fingerprint:
        key_id = next(
            (k.id for k in keys.list_keys(session, actor) if k.fingerprint == request.ssh_key_fingerprint), None
        )
    chosen = firewall.request_firewall(session, request.id, request.department, request.zone)
    return RequestForm(
        cloud_key=request.cloud.key,
        zone=request.zone,
        flavor_item_id=request.flavor_item_id,
        image_item_id=request.image_item_id or 0,
        count=request.count,
        name_prefix=request.name_prefix,
        justification=request.justification,
        expires_on=request.expires_on,
        application_system=request.application_system,
        legacy_system_id=request.legacy_system_id,
        ssh_key_id=key_id,
        user_data=request.user_data,
        data_disks=tuple(
            DataDisk(int(disk["size_gb"]), volume_type_item_id=disk.get("volume_type_item_id"))
            for disk in request.data_disks or ()
        ),
        public_address=request.public_address,
        firewall_templates=tuple(t.id for t in chosen.templates),
        firewall_rules=tuple(chosen.own_rules),
    )


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
