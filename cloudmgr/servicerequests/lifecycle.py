"""A request's and its servers' later life: cancelling, retrying a failed server, stopping, starting
or deleting a server, extending its expiry and asking for a resize (a request of its own)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from cloudmgr.audit import services as audit
from cloudmgr.backups.models import RestoreState, ServerSnapshotRecord
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.config import Settings
from cloudmgr.db import utcnow
from cloudmgr.messages import Message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.servicerequests import texts
from cloudmgr.servicerequests.deletion import decide_deletion
from cloudmgr.servicerequests.errors import (
    InvalidTransition,
    NotYourTurn,
    RequestInvalid,
)
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState
from cloudmgr.servicerequests.quoting import MAX_EXPIRY_DAYS, approval_steps
from cloudmgr.servicerequests.reading import get_request, get_server
from cloudmgr.servicerequests.states import RequestState, ServerState
from cloudmgr.servicerequests.transitions import notify, record_transition, release_all, reserve_servers
from cloudmgr.workqueue.services import enqueue

NOT_BOOTED = frozenset({ServerState.PENDING, ServerState.CANCELLED, ServerState.ERROR})
CANCELLABLE = frozenset({RequestState.DRAFT, RequestState.SUBMITTED, RequestState.APPROVED, RequestState.FAILED})


def _may_cancel_as(actor: Actor, request: ServiceRequest) -> bool:
    return (
        actor.role == Role.OPERATOR
        or request.created_by == actor.username
        or (actor.role == Role.DEPT_HEAD and actor.department_id == request.department_id)
    )


def _has_booted(request: ServiceRequest) -> bool:
    return any(s.state not in NOT_BOOTED for s in request.servers)


def may_cancel(actor: Actor, request: ServiceRequest) -> bool:
    """Whether ``actor`` may cancel ``request`` now (pages show the button): the author, the
    department head or an operator, while nothing of it has booted.  The pages offer it only
    before provisioning starts and after a failure (``CANCELLABLE``)."""
    return request.state in CANCELLABLE and not _has_booted(request) and _may_cancel_as(actor, request)


def cancel_request(session: Session, actor: Actor, request_id: int, *, reason: str) -> ServiceRequest:
    """The author, the department head or an operator withdraws a request that has not booted anything."""
    request = get_request(session, actor, request_id, for_update=True)
    if not _may_cancel_as(actor, request):
        raise NotYourTurn("only the author, the department head or an operator cancels a request")
    if _has_booted(request):
        raise InvalidTransition("servers of this request already exist: delete them instead")
    record_transition(
        session, request, RequestState.CANCELLED, actor=actor, action="cancel", reason=reason.strip() or None
    )
    release_all(session, request, Message(texts.CANCELLED))
    request.finished_at = utcnow()
    return request


def may_retry(actor: Actor, server: ManagedServer | None = None) -> bool:
    """Operators retry failed servers (``server``: this one, when it has failed)."""
    return actor.role == Role.OPERATOR and (server is None or server.state == ServerState.ERROR)


def retry_server(session: Session, actor: Actor, server_id: int) -> ManagedServer:
    """An operator retries a failed server: a new attempt with a new idempotency key and a new reservation."""
    if not may_retry(actor):
        raise NotYourTurn("operators retry failed servers")
    server = get_server(session, actor, server_id)
    if server.state != ServerState.ERROR:
        raise InvalidTransition(f"server {server.name} is {server.state}; only failed servers are retried")
    request = server.request
    # A retry boots a server again: the classified rule as at the first attempt.
    from cloudmgr.inventory.classification import ensure_server_placeable

    ensure_server_placeable(
        session,
        actor=actor,
        entry_point="retry",
        managed_server_id=server.id,
        cloud_server_id=server.server_id,
        server_name=server.name,
        context={"request_id": request.id, "server_id": server.id},
    )
    if server.active_at is not None and server.server_id:
        # The VM booted; a part of it (a data disk, the public address) failed.  The retry goes
        # on from there with the same VM and the same parts' tags: nothing is made twice.
        for volume in session.scalars(select(ManagedVolume).where(ManagedVolume.server_id == server.id)):
            if volume.state == VolumeState.FAILED:
                # Asked of the cloud before it failed: the retry looks for it by its tag first.
                volume.state = VolumeState.CREATING
        for address in session.scalars(select(ManagedAddress).where(ManagedAddress.server_id == server.id)):
            if address.state == AddressState.FAILED:
                address.state = AddressState.ALLOCATED  # as for the volumes
        server.state, server.fault = ServerState.BUILDING, None
        record_transition(
            session, request, RequestState.PROVISIONING, actor=actor, action="retry", reason=texts.retry(server.name)
        )
        enqueue(session, "provision", f"provision:{request.id}", {"request_id": request.id})
        return server
    previous_cloud_server = server.server_id
    server.attempt += 1
    server.idempotency_key = f"cm-r{request.id}-s{server.index}-a{server.attempt}"
    server.state = ServerState.PENDING
    server.server_id, server.fault, server.reservation_id = None, None, None
    reserve_servers(session, request)
    record_transition(
        session, request, RequestState.PROVISIONING, actor=actor, action="retry", reason=texts.retry(server.name)
    )
    if previous_cloud_server:
        enqueue(
            session,
            "server_action",
            f"delete-failed:{server.id}:{previous_cloud_server}",
            {"server_id": server.id, "action": "delete_cloud_server", "cloud_server_id": previous_cloud_server},
        )
    enqueue(session, "provision", f"provision:{request.id}", {"request_id": request.id})
    return server


SERVER_ACTIONS = ("stop", "start", "delete")
# Who acts on a server (stop, start, delete, extend): its department or an operator.
SERVER_ACTORS = frozenset({Role.DEPT_STAFF, Role.DEPT_HEAD, Role.OPERATOR})
SERVER_ACTION_STATES: dict[str, frozenset[ServerState]] = {
    "stop": frozenset({ServerState.ACTIVE}),
    "start": frozenset({ServerState.STOPPED}),
    "delete": frozenset({ServerState.ACTIVE, ServerState.STOPPED, ServerState.ERROR}),
}
RESIZABLE = frozenset({ServerState.ACTIVE, ServerState.STOPPED})


def may_act_on_server(actor: Actor, server: ManagedServer, action: str) -> bool:
    """Whether ``actor`` may ``action`` (stop, start, delete) ``server`` now: the page shows the
    button only then, and :func:`server_action` refuses exactly the rest."""
    return (
        actor.role in SERVER_ACTORS
        and server.state in SERVER_ACTION_STATES.get(action, frozenset())
        and not restore_under_way(server)
    )


def may_resize(actor: Actor, server: ManagedServer) -> bool:
    """Whether ``actor`` may ask for a resize of ``server`` now (a department user, a running or
    stopped server): the page offers the change forms only then; :func:`request_resize` checks it."""
    return actor.is_department and server.state in RESIZABLE and not restore_under_way(server)


def restore_under_way(server: ManagedServer) -> bool:
    """Whether the server is being rebuilt from one of its snapshots (cloudmgr.backups): until
    the rebuild is done, no stop, start, delete or resize may race it on the cloud."""
    session = object_session(server)
    if session is None:
        return False
    return (
        session.scalar(
            select(ServerSnapshotRecord.id)
            .where(
                ServerSnapshotRecord.server_row_id == server.id,
                ServerSnapshotRecord.restore_state.in_((RestoreState.QUEUED, RestoreState.REBUILDING)),
            )
            .limit(1)
        )
        is not None
    )


def _refuse_while_restoring(server: ManagedServer, action: str) -> None:
    if restore_under_way(server):
        raise InvalidTransition(
            f"server {server.name} is being restored from a snapshot: it cannot {action} until that is done"
        )


def server_action(
    session: Session, actor: Actor, server_id: int, action: str, *, confirm: str = "", volumes: str | None = None
) -> ManagedServer:
    """Stop, start or delete one of the department's servers.  Deleting takes the server's name
    typed as confirmation and, when it has data volumes, ``volumes`` = "keep" or "delete" (see
    :func:`cloudmgr.servicerequests.deletion.decide_deletion`); its public address is released."""
    if action not in SERVER_ACTIONS:
        raise RequestInvalid(f"unknown action {action!r} (known: {', '.join(SERVER_ACTIONS)})")
    server = get_server(session, actor, server_id)
    if actor.role not in SERVER_ACTORS:
        raise NotYourTurn("only the department or an operator acts on a server")
    if server.state not in SERVER_ACTION_STATES[action]:
        raise InvalidTransition(f"server {server.name} is {server.state}: it cannot {action} now")
    _refuse_while_restoring(server, action)
    if action == "delete":
        if confirm != server.name:
            raise RequestInvalid(f"type the server's name ({server.name}) to confirm its deletion")
        # The decision (with what becomes of the volumes) is audited before anything is queued.
        payload = decide_deletion(session, actor, server, volumes)
        server.state = ServerState.DELETING
        enqueue(session, "server_action", f"server:{server.id}:delete", payload)
        return server
    audit.record(
        session, actor=actor.username, action=f"server.{action}", target_type="managed_server", target_id=server.id
    )
    enqueue(session, "server_action", f"server:{server.id}:{action}", {"server_id": server.id, "action": action})
    return server


def extend_expiry(
    session: Session, actor: Actor, server_id: int, new_date: date, *, today: date | None = None
) -> ManagedServer:
    server = get_server(session, actor, server_id)
    today = today or date.today()
    if actor.role not in SERVER_ACTORS:
        raise NotYourTurn("only the department or an operator extends a server")
    if server.state in {ServerState.DELETED, ServerState.DELETING, ServerState.CANCELLED}:
        raise InvalidTransition(f"server {server.name} is {server.state}")
    if new_date <= max(server.expires_on, today):
        raise RequestInvalid("the new expiry date must be later than the current one and in the future")
    if new_date > today + timedelta(days=MAX_EXPIRY_DAYS):
        raise RequestInvalid(f"the expiry date must be within {MAX_EXPIRY_DAYS // 365} years")
    audit.record(
        session,
        actor=actor.username,
        action="server.extend",
        target_type="managed_server",
        target_id=server.id,
        detail={"from": server.expires_on.isoformat(), "to": new_date.isoformat()},
    )
    server.expires_on, server.reminded_on = new_date, None
    if server.stopped_for_expiry_at is not None and server.state == ServerState.STOPPED:
        server.stopped_for_expiry_at = None
    return server


def request_resize(
    session: Session,
    actor: Actor,
    server_id: int,
    flavor_item_id: int,
    *,
    justification: str,
    settings: Settings,
    entry_point: str = "resize",
) -> ServiceRequest:
    """A resize is a request of its own: it goes through the cloud's approval chain."""
    server = get_server(session, actor, server_id)
    if not actor.is_department:
        raise RequestInvalid("only department users request a resize")
    if server.state not in RESIZABLE:
        raise InvalidTransition(f"server {server.name} is {server.state}: it cannot be resized now")
    _refuse_while_restoring(server, "resize")
    # A resize may put the server on another host: a classified system's server must leave
    # the cloud, not grow on it.
    from cloudmgr.inventory.classification import ensure_server_placeable

    ensure_server_placeable(
        session,
        actor=actor,
        entry_point=entry_point,
        managed_server_id=server.id,
        cloud_server_id=server.server_id,
        server_name=server.name,
        context={"server_id": server.id},
    )
    flavor = session.get(CatalogItem, flavor_item_id)
    if (
        flavor is None
        or flavor.cloud_id != server.cloud_id
        or flavor.kind != ItemKind.FLAVOR.value
        or not flavor.offered
    ):
        raise RequestInvalid("choose a flavor offered on this server's cloud")
    if flavor.id == server.flavor_item_id:
        raise RequestInvalid("that is the server's current flavor")
    if not justification.strip():
        raise RequestInvalid("a justification is required")
    cost = flavor.monthly_price.quantize(Decimal("0.01"))
    request = ServiceRequest(
        kind="resize",
        department_id=server.department_id,
        cloud_id=server.cloud_id,
        zone=server.zone,
        flavor_item_id=flavor.id,
        image_item_id=None,
        count=1,
        name_prefix=server.name[:40],
        justification=justification.strip(),
        expires_on=server.expires_on,
        monthly_cost=cost,
        target_server_id=server.id,
        state=RequestState.DRAFT,
        created_by=actor.username,
    )
    session.add(request)
    session.flush()
    request.approval_steps = approval_steps(server.cloud, cost)
    request.submitted_at = utcnow()
    record_transition(
        session, request, RequestState.SUBMITTED, actor=actor, action="submit", reason=Message(texts.RESIZE)
    )
    notify(session, "submitted", request)
    return request
