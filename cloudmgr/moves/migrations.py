"""Starting a live or cold migration of one server to another host of its cloud."""

from __future__ import annotations

from cloudmgr.cloud import CloudError, CloudProvider, Server
from cloudmgr.db import Database
from cloudmgr.messages import N_, message
from cloudmgr.moves.errors import MoveCloudError, MoveInvalid
from cloudmgr.moves.models import Move
from cloudmgr.moves.records import (
    check_no_open_move,
    check_not_classified,
    clean_reason,
    create_move,
    get_server,
    managed_server,
    read_cloud,
    require_may_move_servers,
)
from cloudmgr.moves.states import MoveKind, MoveState
from cloudmgr.organisation.actor import Actor
from cloudmgr.providers import ProviderRegistry

#: Statuses a server can be moved from: live needs it running; cold takes it stopped too.
MOVABLE_STATUSES = {MoveKind.LIVE: {"ACTIVE"}, MoveKind.COLD: {"ACTIVE", "SHUTOFF"}}


def _hosts(provider: CloudProvider, cloud_key: str) -> dict[str, str]:
    """Compute host → status ("enabled"/"disabled") of the cloud's hypervisors."""
    try:
        return {h.host: h.status for h in provider.list_hypervisors()}
    except CloudError as exc:
        raise MoveCloudError(
            message(N_("cloud %(cloud)s could not be read: %(error)s"), cloud=cloud_key, error=str(exc))
        ) from exc


def _check_target_host(provider: CloudProvider, cloud_key: str, server: Server, target_host: str) -> None:
    hosts = _hosts(provider, cloud_key)
    if target_host not in hosts:
        raise MoveInvalid(
            message(
                N_("cloud %(cloud)s has no compute host %(host)s (hosts: %(hosts)s)"),
                cloud=cloud_key,
                host=target_host,
                hosts=", ".join(sorted(hosts)),
            )
        )
    if target_host == server.host:
        raise MoveInvalid(
            message(N_("server %(server)s already runs on %(host)s"), server=server.name, host=target_host)
        )
    if hosts[target_host] != "enabled":
        raise MoveInvalid(message(N_("compute host %(host)s is disabled: it takes no new servers"), host=target_host))


def _check_movable(server: Server, kind: MoveKind) -> None:
    if server.status not in MOVABLE_STATUSES[kind] or server.task_state is not None:
        raise MoveInvalid(
            message(
                N_("server %(server)s is %(status)s: this migration needs it %(needed)s"),
                server=server.name,
                status=server.status + (f" ({server.task_state})" if server.task_state else ""),
                needed=" / ".join(sorted(MOVABLE_STATUSES[kind])),
            )
        )
    if not server.host:
        raise MoveInvalid(
            message(N_("server %(server)s is on no host (the cloud does not say where it runs)"), server=server.name)
        )


def start_migration(
    db: Database,
    registry: ProviderRegistry,
    *,
    kind: MoveKind | str,
    cloud_key: str,
    server_id: str,
    actor: Actor,
    reason: str,
    target_host: str | None = None,
    auto_confirm: bool = False,
) -> int:
    """Queue a live or cold migration of ``server_id`` to ``target_host`` (None: the
    scheduler picks); returns the move's id."""
    require_may_move_servers(actor)
    kind = MoveKind(kind)
    if kind not in (MoveKind.LIVE, MoveKind.COLD):
        raise MoveInvalid(message(N_("%(kind)s is not a migration"), kind=kind.value))
    why = clean_reason(reason)
    target_host = (target_host or "").strip() or None
    cloud = read_cloud(db, cloud_key)
    provider = cloud.provider(registry)
    server = get_server(provider, cloud.key, server_id)
    _check_movable(server, kind)
    if target_host is not None:
        _check_target_host(provider, cloud.key, server, target_host)
    with db.unit_of_work() as uow:
        session = uow.session
        managed = managed_server(session, cloud.id, server.id)
        check_not_classified(
            session,
            actor=actor,
            entry_point=f"move.{kind.value}",
            kind=kind,
            cloud_server_id=server.id,
            managed_server_id=managed.id if managed else None,
            metadata=server.metadata,
            server_name=server.name,
        )
        check_no_open_move(session, cloud.id, server.id)
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
            created_by=actor.username,
            resources={},
        )
        create_move(session, move, actor, {"server": server.id, "from": server.host, "to": target_host})
        return move.id
