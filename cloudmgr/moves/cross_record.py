"""The database follows a server moved into another cloud (the ``record_target`` step), and
goes back when the move is undone (``undo_record``).

Recording switches, in one unit of work, the ManagedServer and the rows of its parts (each
data volume's ManagedVolume gets the target volume's id and tag, the ManagedAddress the new
floating IP and address, both the target cloud and department) and the quota ledger: the
target's reservation (server and parts) becomes usage and the source's usage of the same is
given back.  What the rows held before and what the source gave back are stored with the
move in that same unit of work, so the undo restores exactly that, a crash in between or not.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.db import utcnow
from cloudmgr.messages import N_, message
from cloudmgr.moves.models import Move
from cloudmgr.moves.parts import address_tag, carried_volumes, server_amounts, volume_tag
from cloudmgr.moves.stepping import SYSTEM, MoveView, StepContext, StepFailed
from cloudmgr.quotas import ledger
from cloudmgr.quotas.errors import QuotaExceeded
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer, OrphanServer
from cloudmgr.servicerequests.parts import ManagedAddress, ManagedVolume

#: The ManagedServer's fields a move changes, restored by its undo.
_SERVER_FIELDS = ("cloud_id", "department_id", "zone", "server_id", "idempotency_key", "host", "addresses")
_FLAVOR_FIELD = "flavor_item_id"
_VOLUME_FIELDS = ("volume_id", "cloud_id", "department_id", "idempotency_key")
_ADDRESS_FIELDS = ("floating_ip_id", "address", "cloud_id", "department_id", "idempotency_key")


def _fields(row: object, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}


def record_target(ctx: StepContext, view: MoveView) -> dict[str, Any]:
    """The database follows the server: the managed server and its parts now are the
    target ones, the target's reservation becomes usage and the source's is given back."""
    target_server_id = view.resources["target_server_id"]
    assert view.target_cloud is not None
    with ctx.db.unit_of_work() as uow:
        session = uow.session
        move = session.get(Move, view.id, with_for_update=True)
        assert move is not None
        for orphan in session.scalars(
            select(OrphanServer).where(OrphanServer.server_id == target_server_id, OrphanServer.resolved_at.is_(None))
        ):
            orphan.resolved_at = utcnow()
        managed = session.get(ManagedServer, move.managed_server_id) if move.managed_server_id else None
        if managed is None:
            return {"managed": False}
        if managed.server_id == target_server_id:
            return {"managed": True, "managed_server_id": managed.id}
        given_back = {
            **server_amounts(view.resources),
            Resource.CORES: managed.vcpus,
            Resource.RAM_MB: managed.ram_mb,
            Resource.INSTANCES: 1,
        }
        previous = {
            "server": _fields(managed, (*_SERVER_FIELDS, _FLAVOR_FIELD)),
            "given_back": {r.value: n for r, n in given_back.items()},
            "consumed": move.reservation_id,
        }
        if move.reservation_id is not None:
            ledger.consume(session, move.reservation_id, reason=f"moved in by move {move.id}")
        ledger.give_back_usage(
            session, department_id=managed.department_id, cloud_id=managed.cloud_id, amounts=given_back
        )
        previous.update(_switch_parts(session, move, view))
        _switch_server(session, move, managed, view)
        move.resources = {**(move.resources or {}), "record_previous": previous}
        audit.record(
            session,
            actor=SYSTEM.username,
            action="server.moved",
            target_type="managed_server",
            target_id=managed.id,
            reason=f"move {move.id}",
            detail={"from": previous["server"], "to": {"cloud_id": managed.cloud_id, "server_id": target_server_id}},
        )
        return {"managed": True, "managed_server_id": managed.id}


def _switch_server(session: Session, move: Move, managed: ManagedServer, view: MoveView) -> None:
    from cloudmgr.catalog.models import CatalogItem

    assert view.target_cloud is not None
    flavor_item = session.scalar(
        select(CatalogItem).where(
            CatalogItem.cloud_id == view.target_cloud.id,
            CatalogItem.kind == "flavor",
            CatalogItem.cloud_name == view.flavor_name,
        )
    )
    managed.cloud_id = view.target_cloud.id
    managed.department_id = move.target_department_id or managed.department_id
    managed.zone = move.target_zone or managed.zone
    managed.server_id = view.resources["target_server_id"]
    managed.idempotency_key = move.idempotency_key or managed.idempotency_key
    managed.host = view.resources.get("target_host")
    addresses = dict(view.resources.get("addresses") or {})
    if view.resources.get("target_address"):
        addresses["public"] = [view.resources["target_address"]]
    managed.addresses = addresses
    if flavor_item is not None:
        managed.flavor_item_id = flavor_item.id


def _switch_parts(session: Session, move: Move, view: MoveView) -> dict[str, Any]:
    """Each part's row names what the move made on the target; returns what they named before."""
    assert view.target_cloud is not None
    key = move.idempotency_key or f"move-{move.id}"
    cloud_id, department_id = view.target_cloud.id, move.target_department_id
    volumes = []
    made = view.resources.get("target_volumes") or {}
    for volume in carried_volumes(view.resources):
        row = session.get(ManagedVolume, volume["row_id"]) if volume["row_id"] else None
        if row is None:
            continue
        volumes.append({"id": row.id, **_fields(row, _VOLUME_FIELDS)})
        row.volume_id, row.cloud_id = made[str(volume["index"])], cloud_id
        row.department_id = department_id or row.department_id
        row.idempotency_key = volume_tag(key, volume["index"])
    address = view.resources.get("address") or {}
    held = session.get(ManagedAddress, address["row_id"]) if address.get("row_id") else None
    if held is None:
        return {"volumes": volumes, "address": None}
    before = {"id": held.id, **_fields(held, _ADDRESS_FIELDS)}
    held.floating_ip_id, held.address = view.resources["target_floating_ip_id"], view.resources["target_address"]
    held.cloud_id, held.department_id = cloud_id, department_id or held.department_id
    held.idempotency_key = address_tag(key)
    return {"volumes": volumes, "address": before}


def undo_record(ctx: StepContext, view: MoveView) -> dict[str, Any]:
    """The database back to the source: the rows as they were, the ledger switched back (the
    target's usage given back, the source's taken again).  A move never recorded only gives
    the target's reservation back."""
    with ctx.db.unit_of_work() as uow:
        session = uow.session
        move = session.get(Move, view.id, with_for_update=True)
        assert move is not None
        previous = (move.resources or {}).get("record_previous")
        managed = session.get(ManagedServer, move.managed_server_id) if move.managed_server_id else None
        target_server_id = (move.resources or {}).get("target_server_id")
        if managed is None or previous is None or managed.server_id != target_server_id:
            if move.reservation_id is not None:
                ledger.release(session, move.reservation_id, reason=f"move {move.id} undone")
            return {"records_back": False}
        given_back = {Resource(r): int(n) for r, n in previous["given_back"].items()}
        try:
            back = ledger.reserve(
                session,
                department_id=previous["server"]["department_id"],
                cloud_id=previous["server"]["cloud_id"],
                amounts=given_back,
                owner=f"move-undo:{move.id}",
            )
        except QuotaExceeded as exc:
            raise StepFailed(
                message(N_("the source's quota no longer has room for the server: %(error)s"), error=str(exc))
            ) from exc
        ledger.consume(session, back.id, reason=f"move {move.id} undone")
        if previous["consumed"] is not None:
            ledger.give_back_usage(
                session,
                department_id=managed.department_id,
                cloud_id=managed.cloud_id,
                amounts=server_amounts(move.resources or {}),
            )
        for name, value in previous["server"].items():
            setattr(managed, name, value)
        rows: list[tuple[ManagedVolume | ManagedAddress | None, dict[str, Any], tuple[str, ...]]] = [
            (session.get(ManagedVolume, before["id"]), before, _VOLUME_FIELDS) for before in previous["volumes"]
        ]
        if previous["address"]:
            rows.append((session.get(ManagedAddress, previous["address"]["id"]), previous["address"], _ADDRESS_FIELDS))
        for row, before, names in rows:
            for name in names if row is not None else ():
                setattr(row, name, before[name])
        audit.record(
            session,
            actor=SYSTEM.username,
            action="server.move_undone",
            target_type="managed_server",
            target_id=managed.id,
            reason=f"move {move.id}",
            detail={"back_to": {"cloud_id": managed.cloud_id, "server_id": managed.server_id}},
        )
        return {"records_back": True}
