"""What every way of starting a move shares: the move's record (its steps, events, audit
and work item), the clouds it names, and the classified rule.

Starting a move reads the cloud first (the server, its host, the hosts' free capacity), so
the starting functions (:mod:`cloudmgr.moves.migrations`, :mod:`cloudmgr.moves.drains`,
:mod:`cloudmgr.moves.cross_cloud`) take the :class:`~cloudmgr.db.Database` and open their
own short units of work around the cloud calls (never a transaction held open across a
cloud call: on SQLite it would hold the write lock).  Each stores the move (who, when, why),
its steps, an event and an audit record, and queues one work item ``move`` in the same
transaction (:func:`create_move`); the work happens after the commit (:mod:`cloudmgr.moves.jobs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError, CloudNotFound, CloudProvider, Server
from cloudmgr.db import Database
from cloudmgr.errors import PermissionDenied
from cloudmgr.messages import N_, Message, message
from cloudmgr.moves.errors import MoveCloudError, MoveInProgress, MoveInvalid
from cloudmgr.moves.metrics import MOVES_TOTAL
from cloudmgr.moves.models import Move, MoveEvent, MoveStep
from cloudmgr.moves.states import MESSAGES_KEY, OPEN_STATES, STEPS, MoveKind, MoveState, StepState, machine
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Role
from cloudmgr.providers import ProviderRegistry
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.workqueue.services import enqueue

WORK_KIND = "move"
AUDIT_TARGET = "move"
MAX_REASON = 2000


def may_move_servers(actor: Actor) -> bool:
    """Operators move servers (migrate, drain, move between clouds) and act on moves."""
    return actor.role == Role.OPERATOR


def require_may_move_servers(actor: Actor) -> None:
    if not may_move_servers(actor):
        raise PermissionDenied(Message(N_("only operators move servers")))


def work_key(move_id: int) -> str:
    return f"move:{move_id}"


def queue_run(session: Session, move_id: int) -> None:
    """The move's one work item: the runner carries the move on from where it is."""
    enqueue(session, WORK_KIND, work_key(move_id), {"move_id": move_id}, max_attempts=20)


def clean_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise MoveInvalid(Message(N_("say why: a move needs a reason (it is stored and audited)")))
    if len(text) > MAX_REASON:
        raise MoveInvalid(message(N_("the reason is too long (at most %(max)s characters)"), max=MAX_REASON))
    return text


@dataclass(frozen=True)
class CloudRef:
    """A cloud as the move needs it outside any unit of work (to reach its provider)."""

    id: int
    key: str
    os_cloud: str
    region: str | None

    def provider(self, registry: ProviderRegistry) -> CloudProvider:
        return registry.for_cloud(self.key, self.os_cloud, self.region)


def cloud_ref(session: Session, key: str) -> CloudRef:
    cloud = session.scalar(select(Cloud).where(Cloud.key == key))
    if cloud is None:
        raise MoveInvalid(message(N_("there is no cloud %(cloud)s"), cloud=repr(key)))
    if not cloud.enabled:
        raise MoveInvalid(message(N_("cloud %(cloud)s is disabled"), cloud=key))
    return CloudRef(cloud.id, cloud.key, cloud.os_cloud, cloud.region)


def read_cloud(db: Database, key: str) -> CloudRef:
    with db.unit_of_work() as uow:
        return cloud_ref(uow.session, key)


def get_server(provider: CloudProvider, cloud_key: str, server_id: str) -> Server:
    server_id = (server_id or "").strip()
    if not server_id:
        raise MoveInvalid(Message(N_("name the server to move (its id on the cloud)")))
    try:
        return provider.get_server(server_id)
    except CloudNotFound as exc:
        raise MoveInvalid(
            message(N_("there is no server %(server)s on cloud %(cloud)s"), server=server_id, cloud=cloud_key)
        ) from exc
    except CloudError as exc:
        raise MoveCloudError(
            message(N_("cloud %(cloud)s could not be read: %(error)s"), cloud=cloud_key, error=str(exc))
        ) from exc


def check_no_open_move(session: Session, cloud_id: int, server_id: str) -> None:
    open_move = session.scalar(
        select(Move).where(
            Move.cloud_id == cloud_id,
            Move.server_id == server_id,
            Move.state.in_(OPEN_STATES),
        )
    )
    if open_move is not None:
        raise MoveInProgress(
            message(N_("server %(server)s is already being moved (move %(move)s)"), server=server_id, move=open_move.id)
        )


def add_steps(move: Move) -> None:
    for position, name in enumerate(STEPS[MoveKind(move.kind)], start=1):
        move.steps.append(MoveStep(position=position, name=name, state=StepState.PENDING.value, result={}))


def _json_safe(value: object) -> object:
    """A message's parameters as JSON keeps them: a value of another type as its text."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def keep_message(move: Move, text: str, reason: Message) -> None:
    """Remember that ``text`` (stored on the move, an event or a step) is ``reason`` in English."""
    resources = dict(move.resources or {})
    resources[MESSAGES_KEY] = {**resources.get(MESSAGES_KEY, {}), text: _json_safe(reason.as_dict())}
    move.resources = resources


def record_event(
    session: Session,
    move: Move,
    target: MoveState,
    *,
    actor: Actor,
    action: str,
    reason: str | Message | None = None,
    detail: dict[str, object] | None = None,
) -> None:
    """Check and store one transition of ``move`` with its event and audit record.

    A ``reason`` the system writes is a Message: the event and the move keep its English text
    and the move its message (:func:`keep_message`), shown in the reader's language."""
    previous = machine(move.kind).apply(move, target, kind=move.kind)
    translatable = reason if isinstance(reason, Message) else None
    if reason is not None:
        reason = str(reason)[:MAX_REASON]
        if translatable is not None:
            keep_message(move, reason, translatable)
    session.add(
        MoveEvent(
            move_id=move.id,
            actor=actor.username,
            action=action,
            from_state=previous.value,
            to_state=target.value,
            reason=reason,
        )
    )
    audit.record(
        session,
        actor=actor.username,
        action=f"move.{action}",
        target_type=AUDIT_TARGET,
        target_id=move.id,
        reason=translatable if translatable is not None and str(translatable) == reason else reason,
        detail={"kind": move.kind, "from": previous.value, "to": target.value, **(detail or {})},
    )
    move.state_reason = reason if target in {MoveState.FAILED, MoveState.PARTIAL} else move.state_reason


def create_move(session: Session, move: Move, actor: Actor, detail: dict[str, object], *, queue: bool = True) -> Move:
    """Store ``move`` with its steps, event and audit record, and (``queue``) its work item;
    a whole system's per-server moves are run by the system's item instead."""
    add_steps(move)
    session.add(move)
    session.flush()
    session.add(
        MoveEvent(
            move_id=move.id,
            actor=actor.username,
            action="create",
            from_state="-",
            to_state=move.state,
            reason=move.reason,
        )
    )
    audit.record(
        session,
        actor=actor.username,
        action="move.create",
        target_type=AUDIT_TARGET,
        target_id=move.id,
        reason=move.reason,
        detail={"kind": move.kind, **detail},
    )
    if queue:
        queue_run(session, move.id)
    return move


def managed_server(session: Session, cloud_id: int, server_id: str) -> ManagedServer | None:
    return session.scalar(
        select(ManagedServer).where(ManagedServer.cloud_id == cloud_id, ManagedServer.server_id == server_id)
    )


def audit_refusal(
    db: Database, *, actor: Actor, action: str, target_id: str, reason: str, detail: dict[str, object]
) -> None:
    """A refusal's audit record, in its own unit of work (the caller's error rolls back)."""
    with db.unit_of_work() as uow:
        audit.record(
            uow.session,
            actor=actor.username,
            action=action,
            target_type="cloud_server" if action != "move.drain_refused" else "compute_host",
            target_id=target_id,
            reason=reason,
            detail=detail,
        )


def check_not_classified(
    session: Session,
    *,
    actor: Actor,
    entry_point: str,
    kind: MoveKind,
    cloud_server_id: str | None,
    managed_server_id: int | None = None,
    metadata: Mapping[str, str] | None = None,
    server_name: str = "",
    move_id: int | None = None,
) -> None:
    """The classified rule for a move: a server tied to a classified legacy system (found
    every way: its request's system, a system whose server it is, its metadata) is not moved,
    neither into another cloud nor to another host of its own: it must leave the cloud.

    Refused with 409 ``classified_system``, audited under ``entry_point`` (the audit
    survives the caller's rollback: see :mod:`cloudmgr.inventory.classification`).
    """
    from cloudmgr.inventory.classification import ClassifiedPlacementRefused, ensure_server_placeable

    context: dict[str, object] = {"kind": kind.value, "cloud_server_id": cloud_server_id}
    if move_id is not None:
        context["move_id"] = move_id
    try:
        ensure_server_placeable(
            session,
            actor=actor,
            entry_point=entry_point,
            cloud_server_id=cloud_server_id,
            managed_server_id=managed_server_id,
            metadata=metadata,
            server_name=server_name,
            context=context,
        )
    except ClassifiedPlacementRefused as refused:
        MOVES_TOTAL.labels(kind=kind.value, outcome="refused").inc()
        name = server_name or cloud_server_id or "?"
        raise ClassifiedPlacementRefused(
            message(
                N_(
                    "%(refusal)s Server %(server)s is not moved: it must leave the cloud (back to the "
                    "e-government intranet), not move within or between clouds."
                ),
                refusal=refused.translatable or str(refused),
                server=name,
            ),
            system_id=refused.system_id,
            hostname=refused.hostname,
            entry_point=entry_point,
        ) from refused
