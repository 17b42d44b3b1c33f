"""Starting, confirming, reverting, resuming and reading moves.

Starting a move reads the cloud first (the server, its host, the hosts' free capacity), so
those functions take the :class:`~cloudmgr.db.Database` and open their own short units of
work around the cloud calls (never a transaction held open across a cloud call: on SQLite
it would hold the write lock).  Each stores the move (who, when, why), its steps, an event
and an audit record, and queues one work item ``move`` in the same transaction; the work
happens after the commit (:mod:`cloudmgr.moves.jobs`).

Refusals are audited so the audit survives the caller's rollback: a drain the other hosts
cannot take in its own unit of work before the error is raised; a server of a classified
system (refused at the creation of every live, cold and cross-cloud move, and again in the
job right before a step places it: :func:`check_not_classified`) through
:mod:`cloudmgr.inventory.classification`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError, CloudNotFound, CloudProvider, Server
from cloudmgr.cloud.types import IDEMPOTENCY_METADATA_KEY
from cloudmgr.db import Database
from cloudmgr.moves.errors import DrainRefused, MoveCloudError, MoveInProgress, MoveInvalid, MoveNotFound
from cloudmgr.moves.metrics import MOVES_TOTAL
from cloudmgr.moves.models import Move, MoveEvent, MoveStep
from cloudmgr.moves.states import OPEN_STATES, STEPS, MoveKind, MoveState, StepState, machine
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, DepartmentCloud, NetworkZone
from cloudmgr.providers import ProviderRegistry
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.workqueue.services import enqueue

WORK_KIND = "move"
AUDIT_TARGET = "move"
MAX_REASON = 2000
#: Statuses a server can be moved from: live needs it running; cold and cross-cloud take it stopped too.
MOVABLE_STATUSES = {MoveKind.LIVE: {"ACTIVE"}, MoveKind.COLD: {"ACTIVE", "SHUTOFF"}}
CROSS_CLOUD_STATUSES = {"ACTIVE", "SHUTOFF"}


def _actor_name(actor: Actor | str) -> str:
    return actor if isinstance(actor, str) else actor.username


def work_key(move_id: int) -> str:
    return f"move:{move_id}"


# ---- shared pieces --------------------------------------------------------------------


def _clean_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise MoveInvalid("say why: a move needs a reason (it is stored and audited)")
    if len(text) > MAX_REASON:
        raise MoveInvalid(f"the reason is too long (at most {MAX_REASON} characters)")
    return text


@dataclass(frozen=True)
class _CloudRef:
    id: int
    key: str
    os_cloud: str
    region: str | None

    def provider(self, registry: ProviderRegistry) -> CloudProvider:
        return registry.for_cloud(self.key, self.os_cloud, self.region)


def _cloud_ref(session: Session, key: str) -> _CloudRef:
    cloud = session.scalar(select(Cloud).where(Cloud.key == key))
    if cloud is None:
        raise MoveInvalid(f"there is no cloud {key!r}")
    if not cloud.enabled:
        raise MoveInvalid(f"cloud {key} is disabled")
    return _CloudRef(cloud.id, cloud.key, cloud.os_cloud, cloud.region)


def _read_cloud(db: Database, key: str) -> _CloudRef:
    with db.unit_of_work() as uow:
        return _cloud_ref(uow.session, key)


def _get_server(provider: CloudProvider, cloud_key: str, server_id: str) -> Server:
    server_id = (server_id or "").strip()
    if not server_id:
        raise MoveInvalid("name the server to move (its id on the cloud)")
    try:
        return provider.get_server(server_id)
    except CloudNotFound as exc:
        raise MoveInvalid(f"there is no server {server_id} on cloud {cloud_key}") from exc
    except CloudError as exc:
        raise MoveCloudError(f"cloud {cloud_key} could not be read: {exc}") from exc


def _check_no_open_move(session: Session, cloud_id: int, server_id: str) -> None:
    open_move = session.scalar(
        select(Move).where(
            Move.cloud_id == cloud_id,
            Move.server_id == server_id,
            Move.state.in_(OPEN_STATES),
        )
    )
    if open_move is not None:
        raise MoveInProgress(f"server {server_id} is already being moved (move {open_move.id}, {open_move.state})")


def _add_steps(move: Move) -> None:
    for position, name in enumerate(STEPS[MoveKind(move.kind)], start=1):
        move.steps.append(MoveStep(position=position, name=name, state=StepState.PENDING.value, result={}))


def record_event(
    session: Session,
    move: Move,
    target: MoveState,
    *,
    actor: str,
    action: str,
    reason: str | None = None,
    detail: dict[str, object] | None = None,
) -> None:
    """Check and store one transition of ``move`` with its event and audit record."""
    previous = machine(move.kind).apply(move, target, kind=move.kind)
    session.add(
        MoveEvent(
            move_id=move.id, actor=actor, action=action, from_state=previous.value, to_state=target.value, reason=reason
        )
    )
    audit.record(
        session,
        actor=actor,
        action=f"move.{action}",
        target_type=AUDIT_TARGET,
        target_id=move.id,
        reason=reason,
        detail={"kind": move.kind, "from": previous.value, "to": target.value, **(detail or {})},
    )
    move.state_reason = reason if target in {MoveState.FAILED, MoveState.PARTIAL} else move.state_reason


def _create(session: Session, move: Move, actor: str, detail: dict[str, object]) -> Move:
    _add_steps(move)
    session.add(move)
    session.flush()
    session.add(
        MoveEvent(
            move_id=move.id, actor=actor, action="create", from_state="-", to_state=move.state, reason=move.reason
        )
    )
    audit.record(
        session,
        actor=actor,
        action="move.create",
        target_type=AUDIT_TARGET,
        target_id=move.id,
        reason=move.reason,
        detail={"kind": move.kind, **detail},
    )
    enqueue(session, WORK_KIND, work_key(move.id), {"move_id": move.id}, max_attempts=20)
    return move


def _managed_server(session: Session, cloud_id: int, server_id: str) -> ManagedServer | None:
    return session.scalar(
        select(ManagedServer).where(ManagedServer.cloud_id == cloud_id, ManagedServer.server_id == server_id)
    )


def _audit_refusal(
    db: Database, *, actor: str, action: str, target_id: str, reason: str, detail: dict[str, object]
) -> None:
    """A refusal's audit record, in its own unit of work (the caller's error rolls back)."""
    with db.unit_of_work() as uow:
        audit.record(
            uow.session,
            actor=actor,
            action=action,
            target_type="cloud_server" if action != "move.drain_refused" else "compute_host",
            target_id=target_id,
            reason=reason,
            detail=detail,
        )


# ---- live and cold migration ------------------------------------------------------------


def _hosts(provider: CloudProvider, cloud_key: str) -> dict[str, str]:
    """Compute host → status ("enabled"/"disabled") of the cloud's hypervisors."""
    try:
        return {h.host: h.status for h in provider.list_hypervisors()}
    except CloudError as exc:
        raise MoveCloudError(f"cloud {cloud_key} could not be read: {exc}") from exc


def start_migration(
    db: Database,
    registry: ProviderRegistry,
    *,
    kind: MoveKind | str,
    cloud_key: str,
    server_id: str,
    actor: Actor | str,
    reason: str,
    target_host: str | None = None,
    auto_confirm: bool = False,
) -> int:
    """Queue a live or cold migration of ``server_id`` to ``target_host`` (None: the
    scheduler picks); returns the move's id."""
    kind = MoveKind(kind)
    if kind not in (MoveKind.LIVE, MoveKind.COLD):
        raise MoveInvalid(f"{kind.value} is not a migration")
    username = _actor_name(actor)
    why = _clean_reason(reason)
    target_host = (target_host or "").strip() or None
    cloud = _read_cloud(db, cloud_key)
    provider = cloud.provider(registry)
    server = _get_server(provider, cloud.key, server_id)
    if server.status not in MOVABLE_STATUSES[kind] or server.task_state is not None:
        raise MoveInvalid(
            f"server {server.name} is {server.status}"
            + (f" ({server.task_state})" if server.task_state else "")
            + f": a {kind.value} migration needs it {' or '.join(sorted(MOVABLE_STATUSES[kind]))}"
        )
    if not server.host:
        raise MoveInvalid(f"server {server.name} is on no host (the cloud does not say where it runs)")
    if target_host is not None:
        hosts = _hosts(provider, cloud.key)
        if target_host not in hosts:
            raise MoveInvalid(
                f"cloud {cloud.key} has no compute host {target_host} (hosts: {', '.join(sorted(hosts))})"
            )
        if target_host == server.host:
            raise MoveInvalid(f"server {server.name} already runs on {target_host}")
        if hosts[target_host] != "enabled":
            raise MoveInvalid(f"compute host {target_host} is {hosts[target_host]}: it takes no new servers")
    with db.unit_of_work() as uow:
        session = uow.session
        managed = _managed_server(session, cloud.id, server.id)
        check_not_classified(
            session,
            actor=username,
            entry_point=f"move.{kind.value}",
            kind=kind,
            cloud_server_id=server.id,
            managed_server_id=managed.id if managed else None,
            metadata=server.metadata,
            server_name=server.name,
        )
        _check_no_open_move(session, cloud.id, server.id)
        move = Move(
            kind=kind.value,
            state=MoveState.REQUESTED,
            cloud_id=cloud.id,
            server_id=server.id,
            server_name=server.name,
            project_id=server.project_id,
            managed_server_id=managed.id if managed else None,
            source_host=server.host,
            target_host=target_host,
            flavor_name=server.flavor_name,
            auto_confirm=auto_confirm if kind == MoveKind.COLD else False,
            reason=why,
            created_by=username,
            resources={},
        )
        _create(session, move, username, {"server": server.id, "from": server.host, "to": target_host})
        return move.id


# ---- host drain -----------------------------------------------------------------------


@dataclass(frozen=True)
class DrainServer:
    id: str
    name: str
    status: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    planned_host: str | None


@dataclass
class DrainPlan:
    """Where each server of ``host`` would go, and what the other hosts lack."""

    host: str
    servers: list[DrainServer] = field(default_factory=list)
    other_hosts: list[str] = field(default_factory=list)
    free: dict[str, int] = field(default_factory=dict)  # the other hosts' free VCPU / MEMORY_MB / DISK_GB
    need: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # servers of projects cloudmgr does not manage, left alone (only_managed)

    @property
    def unplaced(self) -> list[DrainServer]:
        return [s for s in self.servers if s.planned_host is None]

    @property
    def shortfall(self) -> dict[str, int]:
        return {rc: self.need[rc] - self.free.get(rc, 0) for rc in self.need if self.need[rc] > self.free.get(rc, 0)}

    def refusal(self) -> str | None:
        unplaced = self.unplaced
        if not unplaced:
            return None
        units = {"VCPU": "vCPU", "MEMORY_MB": "MB RAM", "DISK_GB": "GB disk"}
        names = ", ".join(f"{s.name} ({s.vcpus} vCPU, {s.ram_mb} MB)" for s in unplaced[:10])
        more = f" and {len(unplaced) - 10} more" if len(unplaced) > 10 else ""
        if not self.other_hosts:
            return f"host {self.host} cannot be drained: there is no other enabled compute host to take its servers"
        shortfall = self.shortfall
        if shortfall:
            lack = ", ".join(f"{n} {units[rc]}" for rc, n in shortfall.items())
            return (
                f"host {self.host} cannot be drained: the other hosts ({', '.join(self.other_hosts)}) lack {lack} "
                f"for its {len(self.servers)} servers; servers with no room: {names}{more}"
            )
        return (
            f"host {self.host} cannot be drained: the other hosts have enough free capacity in all, but no single "
            f"host has room for: {names}{more}"
        )


_RESOURCE_CLASSES = ("VCPU", "MEMORY_MB", "DISK_GB")


def plan_drain(provider: CloudProvider, host: str, *, project_ids: set[str] | None = None) -> DrainPlan:
    """Place every server of ``host`` on the other enabled hosts' free capacity (Placement),
    largest first on the host with the most free RAM (as Nova's RAM weigher would)."""
    hypervisors = provider.list_hypervisors()
    by_name = {h.name: h for h in hypervisors}
    if host not in {h.host for h in hypervisors}:
        raise MoveInvalid(
            f"there is no compute host {host} on this cloud (hosts: {', '.join(sorted(h.host for h in hypervisors))})"
        )
    flavors = {f.id: f for f in provider.list_flavors()}
    flavors_by_name = {f.name: f for f in provider.list_flavors()}
    free: dict[str, dict[str, int]] = {}
    for rp in provider.list_resource_providers():
        hypervisor = by_name.get(rp.name)
        other = hypervisor.host if hypervisor else rp.name
        if other == host or (hypervisor is not None and (hypervisor.status != "enabled" or hypervisor.state != "up")):
            continue
        free[other] = {rc: max(rp.free(rc), 0) for rc in _RESOURCE_CLASSES}
    plan = DrainPlan(host=host, other_hosts=sorted(free))
    plan.free = {rc: sum(f[rc] for f in free.values()) for rc in _RESOURCE_CLASSES}
    servers = provider.list_servers_on_host(host)
    if project_ids is not None:
        plan.skipped = sum(1 for s in servers if s.project_id not in project_ids)
        servers = [s for s in servers if s.project_id in project_ids]
    sized = []
    for server in servers:
        flavor = flavors.get(server.flavor_id or "") or flavors_by_name.get(server.flavor_name or "")
        need = (flavor.vcpus, flavor.ram_mb, flavor.disk_gb) if flavor else (0, 0, 0)
        sized.append((server, need))
    plan.need = {
        "VCPU": sum(n[0] for _, n in sized),
        "MEMORY_MB": sum(n[1] for _, n in sized),
        "DISK_GB": sum(n[2] for _, n in sized),
    }
    room = {h: dict(f) for h, f in free.items()}
    for server, (vcpus, ram_mb, disk_gb) in sorted(sized, key=lambda item: (item[1][1], item[1][0]), reverse=True):
        want = {"VCPU": vcpus, "MEMORY_MB": ram_mb, "DISK_GB": disk_gb}
        fits = [h for h, r in room.items() if all(r[rc] >= want[rc] for rc in _RESOURCE_CLASSES)]
        chosen = max(fits, key=lambda h: (room[h]["MEMORY_MB"], h)) if fits else None
        if chosen is not None:
            for rc in _RESOURCE_CLASSES:
                room[chosen][rc] -= want[rc]
        plan.servers.append(DrainServer(server.id, server.name, server.status, vcpus, ram_mb, disk_gb, chosen))
    plan.servers.sort(key=lambda s: s.name)
    return plan


def managed_project_ids(session: Session, cloud: _CloudRef | Cloud) -> set[str]:
    """The department projects cloudmgr manages on ``cloud``'s OpenStack (every cloud of
    the file reached through the same clouds.yaml entry and region)."""
    os_cloud, region = cloud.os_cloud, cloud.region
    return {
        link.project_id
        for link in session.scalars(
            select(DepartmentCloud).join(Cloud, Cloud.id == DepartmentCloud.cloud_id).where(Cloud.os_cloud == os_cloud)
        )
        if link.project_id and link.cloud.region == region
    }


def start_drain(
    db: Database,
    registry: ProviderRegistry,
    *,
    cloud_key: str,
    host: str,
    actor: Actor | str,
    reason: str,
    disable_host: bool = True,
    keep_disabled: bool = False,
    only_managed: bool = False,
) -> int:
    """Queue a drain of ``host``: every server on it live-migrated elsewhere (stopped ones
    cold-migrated and confirmed).  Refused, and audited, when the other hosts' free
    capacity cannot take them.  ``only_managed`` leaves servers of projects cloudmgr does
    not manage where they are (they are counted in the plan)."""
    username = _actor_name(actor)
    why = _clean_reason(reason)
    host = (host or "").strip()
    if not host:
        raise MoveInvalid("name the compute host to drain")
    with db.unit_of_work() as uow:
        cloud = _cloud_ref(uow.session, cloud_key)
        project_ids = managed_project_ids(uow.session, cloud) if only_managed else None
        open_drain = uow.session.scalar(
            select(Move).where(
                Move.kind == MoveKind.DRAIN.value,
                Move.cloud_id == cloud.id,
                Move.source_host == host,
                Move.state.in_(OPEN_STATES),
            )
        )
        if open_drain is not None:
            raise MoveInProgress(f"host {host} is already being drained (move {open_drain.id})")
    provider = cloud.provider(registry)
    try:
        plan = plan_drain(provider, host, project_ids=project_ids)
    except CloudError as exc:
        raise MoveCloudError(f"cloud {cloud.key} could not be read: {exc}") from exc
    refusal = plan.refusal()
    if refusal is not None:
        _audit_refusal(
            db,
            actor=username,
            action="move.drain_refused",
            target_id=host,
            reason=refusal,
            detail={"cloud": cloud.key, "shortfall": plan.shortfall, "unplaced": [s.name for s in plan.unplaced]},
        )
        MOVES_TOTAL.labels(kind=MoveKind.DRAIN.value, outcome="refused").inc()
        raise DrainRefused(refusal)
    with db.unit_of_work() as uow:
        move = Move(
            kind=MoveKind.DRAIN.value,
            state=MoveState.REQUESTED,
            cloud_id=cloud.id,
            source_host=host,
            disable_host=disable_host,
            only_managed=only_managed,
            reason=why,
            created_by=username,
            resources={
                "keep_disabled": keep_disabled,
                "plan": [{"id": s.id, "name": s.name, "status": s.status, "to": s.planned_host} for s in plan.servers],
                "skipped_unmanaged": plan.skipped,
            },
        )
        _create(uow.session, move, username, {"host": host, "servers": len(plan.servers)})
        return move.id


# ---- cross-cloud move -----------------------------------------------------------------


def check_not_classified(
    session: Session,
    *,
    actor: str,
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
            f"{refused} Server {name} is not moved: it must leave the cloud (back to the e-government "
            "intranet), not move within or between clouds.",
            system_id=refused.system_id,
            hostname=refused.hostname,
            entry_point=entry_point,
        ) from refused


def start_cross_cloud_move(
    db: Database,
    registry: ProviderRegistry,
    *,
    cloud_key: str,
    server_id: str,
    target_cloud_key: str,
    actor: Actor | str,
    reason: str,
    target_department_key: str | None = None,
    target_zone: str | None = None,
) -> int:
    """Queue a move of ``server_id`` into another cloud (or another department's project):
    snapshot → download → upload → boot → verify → delete the source → clean up.

    A server cloudmgr provisioned (a ManagedServer) moves with its quota: the target
    department's ledger is reserved now and consumed when the target is verified, and the
    source's usage is given back then.  A server cloudmgr did not provision is not in any
    ledger; the quota reconcile job reads its usage from the clouds.
    """
    username = _actor_name(actor)
    why = _clean_reason(reason)
    with db.unit_of_work() as uow:
        session = uow.session
        source = _cloud_ref(session, cloud_key)
        target = _cloud_ref(session, target_cloud_key)
    source_provider, target_provider = source.provider(registry), target.provider(registry)
    server = _get_server(source_provider, source.key, server_id)
    if server.status not in CROSS_CLOUD_STATUSES or server.task_state is not None:
        raise MoveInvalid(f"server {server.name} is {server.status}: a cross-cloud move needs it ACTIVE or SHUTOFF")
    try:
        source_flavors = source_provider.list_flavors()
        target_flavors = {f.name: f for f in target_provider.list_flavors()}
    except CloudError as exc:
        raise MoveCloudError(f"the clouds could not be read: {exc}") from exc
    flavor = next(
        (
            f
            for f in source_flavors
            if f.id == server.flavor_id or (server.flavor_name and f.name == server.flavor_name)
        ),
        None,
    )
    if flavor is None:
        raise MoveInvalid(f"the flavor of server {server.name} is unknown on cloud {source.key}")
    if flavor.name not in target_flavors:
        raise MoveInvalid(f"cloud {target.key} has no flavor {flavor.name}: the server cannot keep its size there")
    with db.unit_of_work() as uow:
        session = uow.session
        managed = _managed_server(session, source.id, server.id)
        check_not_classified(
            session,
            actor=username,
            entry_point="move.cross_cloud",
            kind=MoveKind.CROSS_CLOUD,
            cloud_server_id=server.id,
            managed_server_id=managed.id if managed else None,
            metadata=server.metadata,
            server_name=server.name,
        )
        _check_no_open_move(session, source.id, server.id)
        if managed is not None:
            source_department_id: int | None = managed.department_id
        else:
            link = session.scalar(
                select(DepartmentCloud).where(
                    DepartmentCloud.cloud_id == source.id, DepartmentCloud.project_id == server.project_id
                )
            )
            source_department_id = link.department_id if link else None
        if target_department_key:
            department = session.scalar(select(Department).where(Department.key == target_department_key))
            if department is None:
                raise MoveInvalid(f"there is no department {target_department_key!r}")
        else:
            if source_department_id is None:
                raise MoveInvalid(
                    f"server {server.name} is in a project no department owns: name the target department"
                )
            department = session.get(Department, source_department_id)
            assert department is not None
        target_link = session.scalar(
            select(DepartmentCloud).where(
                DepartmentCloud.department_id == department.id, DepartmentCloud.cloud_id == target.id
            )
        )
        if target_link is None or not target_link.project_id:
            raise MoveInvalid(
                f"department {department.key} has no project on cloud {target.key} "
                "(it may not use that cloud, or the clouds were not synced yet)"
            )
        if target_link.project_id == server.project_id:
            raise MoveInvalid(f"server {server.name} is already in {department.key}'s project on {target.key}")
        zone_name = (target_zone or (managed.zone if managed else "") or "extranet").strip()
        zone = session.scalar(
            select(NetworkZone).where(NetworkZone.cloud_id == target.id, NetworkZone.zone == zone_name)
        )
        if zone is None or not zone.network_id:
            raise MoveInvalid(f"cloud {target.key} has no {zone_name} zone with a known network (run clouds sync)")
        reservation_id = None
        if managed is not None:
            reservation = ledger.reserve(
                session,
                department_id=department.id,
                cloud_id=target.id,
                amounts={Resource.CORES: flavor.vcpus, Resource.RAM_MB: flavor.ram_mb, Resource.INSTANCES: 1},
                owner=f"move:{server.id}",
            )
            reservation_id = reservation.id
        metadata = {k: v for k, v in server.metadata.items() if k != IDEMPOTENCY_METADATA_KEY}
        move = Move(
            kind=MoveKind.CROSS_CLOUD.value,
            state=MoveState.REQUESTED,
            cloud_id=source.id,
            server_id=server.id,
            server_name=server.name,
            project_id=server.project_id,
            managed_server_id=managed.id if managed else None,
            source_host=server.host,
            target_cloud_id=target.id,
            target_department_id=department.id,
            target_zone=zone_name,
            target_project_id=target_link.project_id,
            flavor_name=flavor.name,
            idempotency_key=f"move-{uuid.uuid4().hex}",
            reservation_id=reservation_id,
            reason=why,
            created_by=username,
            resources={
                "source_status": server.status,
                "source_department_id": source_department_id,
                "flavor": {"vcpus": flavor.vcpus, "ram_mb": flavor.ram_mb, "disk_gb": flavor.disk_gb},
                "network_id": zone.network_id,
                "metadata": metadata,
            },
        )
        _create(
            session,
            move,
            username,
            {"server": server.id, "from": source.key, "to": target.key, "department": department.key},
        )
        return move.id


# ---- operator actions on a move ---------------------------------------------------------


def _locked(session: Session, move_id: int) -> Move:
    move = session.get(Move, move_id, with_for_update=True)
    if move is None:
        raise MoveNotFound(f"there is no move {move_id}")
    return move


def confirm(session: Session, move_id: int, *, actor: Actor | str, reason: str | None = None) -> Move:
    """Keep a cold migration waiting in VERIFY_RESIZE on its new host."""
    move = _locked(session, move_id)
    if move.kind != MoveKind.COLD.value:
        raise MoveInvalid(f"move {move_id} is a {move.kind} move: only cold migrations wait for a confirmation")
    record_event(session, move, MoveState.CONFIRMING, actor=_actor_name(actor), action="confirm", reason=reason or None)
    enqueue(session, WORK_KIND, work_key(move.id), {"move_id": move.id}, max_attempts=20)
    return move


def revert(session: Session, move_id: int, *, actor: Actor | str, reason: str | None = None) -> Move:
    """Send a cold migration waiting in VERIFY_RESIZE back to its source host."""
    move = _locked(session, move_id)
    if move.kind != MoveKind.COLD.value:
        raise MoveInvalid(f"move {move_id} is a {move.kind} move: only cold migrations can be reverted")
    record_event(session, move, MoveState.REVERTING, actor=_actor_name(actor), action="revert", reason=reason or None)
    if not any(s.name == "revert" for s in move.steps):
        move.steps.append(
            MoveStep(position=len(move.steps) + 1, name="revert", state=StepState.PENDING.value, result={})
        )
    enqueue(session, WORK_KIND, work_key(move.id), {"move_id": move.id}, max_attempts=20)
    return move


def resume(session: Session, move_id: int, *, actor: Actor | str, reason: str | None = None) -> Move:
    """Carry a failed (or partial) move on from the step that failed; a move still open
    just gets its work item queued again (a worker that died left it)."""
    move = _locked(session, move_id)
    username = _actor_name(actor)
    if move.state in (MoveState.FAILED, MoveState.PARTIAL):
        record_event(session, move, MoveState.RUNNING, actor=username, action="resume", reason=reason or None)
        _reserve_again(session, move)
        move.finished_at = None
        for step in move.steps:
            # A drain looks at its host afresh: every step runs again (each is re-entrant).
            if step.state == StepState.FAILED.value or move.kind == MoveKind.DRAIN.value:
                step.state = StepState.PENDING.value
    elif MoveState(move.state) not in OPEN_STATES or move.state == MoveState.AWAITING_CONFIRM:
        raise MoveInvalid(f"move {move_id} is {move.state}: there is nothing to resume")
    enqueue(session, WORK_KIND, work_key(move.id), {"move_id": move.id}, max_attempts=20)
    return move


def _reserve_again(session: Session, move: Move) -> None:
    """A cross-cloud move refused by the classified rule in its job gave its target
    reservation back; resumed (the system was reclassified as non-classified), it takes it
    again before the target is booted, so the switch of the quota stays exact."""
    if (
        move.kind != MoveKind.CROSS_CLOUD.value
        or move.reservation_id is not None
        or move.managed_server_id is None
        or move.target_cloud_id is None
        or move.target_department_id is None
        or any(s.name == "record_target" and s.state == StepState.DONE.value for s in move.steps)
    ):
        return
    flavor = (move.resources or {}).get("flavor") or {}
    move.reservation_id = ledger.reserve(
        session,
        department_id=move.target_department_id,
        cloud_id=move.target_cloud_id,
        amounts={
            Resource.CORES: int(flavor.get("vcpus", 0)),
            Resource.RAM_MB: int(flavor.get("ram_mb", 0)),
            Resource.INSTANCES: 1,
        },
        owner=f"move:{move.server_id}",
    ).id


# ---- reading --------------------------------------------------------------------------


def get_move(session: Session, move_id: int) -> Move:
    move = session.get(
        Move, move_id, options=[selectinload(Move.steps), selectinload(Move.events), selectinload(Move.children)]
    )
    if move is None:
        raise MoveNotFound(f"there is no move {move_id}")
    return move


def list_moves(
    session: Session,
    *,
    state: str | None = None,
    kind: str | None = None,
    include_children: bool = False,
    limit: int = 200,
) -> Sequence[Move]:
    query = select(Move).options(selectinload(Move.steps), selectinload(Move.cloud)).order_by(Move.id.desc())
    if state:
        query = query.where(Move.state == state)
    if kind:
        query = query.where(Move.kind == kind)
    if not include_children:
        query = query.where(Move.parent_id.is_(None))
    return session.scalars(query.limit(limit)).all()
