"""Deleting a server with its parts (issue 16).

The decision (:func:`decide_deletion`, in the caller's unit of work with the audit event that
records who chose what) says what becomes of the server's data volumes: kept (detached, left
available on the department's project and still counted in its ledger) or deleted.  A server
with data volumes is not deleted without that answer.  Its public address is always released.

The work (:func:`delete_server_and_parts`, run by the ``server_action`` work item) goes step by
step, each step recorded in a short unit of work of its own and safe to run again: the cloud
calls treat what is already gone as done, and a part found by its tag is the one made before.
A worker dying anywhere leaves the item to be taken over; the rerun continues where the rows
say it stopped.

The ledger follows each part as it is settled, in the step's unit of work: the address and a
deleted volume give back what they count (``quota_counted``, cleared as it is given back, so
never twice); a kept volume stays used; the VM's cores, memory and instance go at the end.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError, CloudNotFound, CloudUnavailable
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.db import Database
from cloudmgr.messages import Message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import DepartmentCloud
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests import texts
from cloudmgr.servicerequests.errors import ChoiceProblem, FieldProblem, InvalidTransition, RequestInvalid
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState, disk_name
from cloudmgr.servicerequests.states import RequestState, ServerState
from cloudmgr.servicerequests.transitions import record_transition
from cloudmgr.workqueue.services import GiveUp, RetryLater

SYSTEM = Actor.system("server_action")


class VolumeChoice(enum.StrEnum):
    """What becomes of a deleted server's data volumes."""

    KEEP = "keep"  # detached, left available on the department's project
    DELETE = "delete"


VOLUME_CHOICES = tuple(VolumeChoice)

# A change cloudmgr.storage queued and has not finished: the deletion waits for it.
CHANGING_VOLUME = frozenset({VolumeState.ATTACHING, VolumeState.DETACHING, VolumeState.EXTENDING, VolumeState.DELETING})


def server_volumes(session: Session, server_id: int) -> list[ManagedVolume]:
    """The server's data volumes a deletion decides about (those not already deleted)."""
    return list(
        session.scalars(
            select(ManagedVolume)
            .where(ManagedVolume.server_id == server_id, ManagedVolume.state != VolumeState.DELETED)
            .order_by(ManagedVolume.index)
        )
    )


def server_address(session: Session, server_id: int) -> ManagedAddress | None:
    return session.scalar(select(ManagedAddress).where(ManagedAddress.server_id == server_id))


@dataclass(frozen=True)
class VolumeToDecide:
    name: str
    size_gb: int
    volume_type: str | None


@dataclass(frozen=True)
class DeletionPreview:
    """What deleting the server decides about (the delete form shows it): its data volumes,
    kept or deleted as the user answers, and the public address that is released."""

    volumes: tuple[VolumeToDecide, ...]
    address: str | None

    @property
    def needs_choice(self) -> bool:
        return bool(self.volumes)


def deletion_preview(session: Session, server: ManagedServer) -> DeletionPreview:
    address = server_address(session, server.id)
    return DeletionPreview(
        volumes=tuple(
            VolumeToDecide(v.name or disk_name(server.name, v.index), v.size_gb, v.volume_type)
            for v in server_volumes(session, server.id)
        ),
        address=address.address if address is not None and address.state != AddressState.RELEASED else None,
    )


def decide_deletion(session: Session, actor: Actor, server: ManagedServer, volumes: str | None) -> dict[str, Any]:
    """Check the answer for the server's volumes and record the decision (audit ``server.delete``:
    who, when, the choice, the volumes and the address); returns the work item's payload.

    ``volumes`` is "keep" or "delete"; required when the server has data volumes (RequestInvalid
    naming the field ``volumes`` otherwise), ignored when it has none.  Any other value is refused."""
    rows = server_volumes(session, server.id)
    address = server_address(session, server.id)
    busy = [f"data disk {v.index}" for v in rows if v.state in CHANGING_VOLUME]
    if address is not None and (
        address.state == AddressState.RELEASING
        or (server.state != ServerState.ERROR and address.state in {AddressState.PENDING, AddressState.ALLOCATED})
    ):
        busy.append("public address")
    if busy:
        raise InvalidTransition(
            f"a change to the {', '.join(busy)} of {server.name} is under way: delete the server once it is done"
        )
    choice: VolumeChoice | None = None
    answer = (volumes or "").strip()
    if answer and answer not in VOLUME_CHOICES:
        problem = FieldProblem("volumes", ChoiceProblem.VOLUMES_CHOICE, {"count": len(rows)})
        raise RequestInvalid(problem.message, (problem,))
    if rows:
        if not answer:
            problem = FieldProblem("volumes", ChoiceProblem.VOLUMES_CHOICE, {"count": len(rows)})
            raise RequestInvalid(problem.message, (problem,))
        choice = VolumeChoice(answer)
    audit.record(
        session,
        actor=actor.username,
        action="server.delete",
        target_type="managed_server",
        target_id=server.id,
        detail={
            "volumes": choice.value if choice else None,
            "volume_ids": [v.volume_id for v in rows],
            "address": address.address if address and address.state != AddressState.RELEASED else None,
        },
    )
    return {
        "server_id": server.id,
        "action": "delete",
        "volumes": choice.value if choice else None,
        "volume_rows": [v.id for v in rows],
    }


# --- the work ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeStep:
    row_id: int
    index: int
    volume_id: str | None
    idempotency_key: str
    state: VolumeState


@dataclass(frozen=True)
class AddressStep:
    row_id: int
    floating_ip_id: str | None
    idempotency_key: str
    state: AddressState


@dataclass(frozen=True)
class DeletionPlan:
    server_id: int
    cloud_server_id: str | None
    project_id: str | None
    keep: bool
    volumes: tuple[VolumeStep, ...]
    address: AddressStep | None


def deletion_plan(db: Database, payload: Mapping[str, Any]) -> DeletionPlan | None:
    """What is left to do for the decision in ``payload`` (None: the server is deleted already)."""
    with db.unit_of_work() as uow:
        session = uow.session
        server = session.get(ManagedServer, int(payload["server_id"]))
        if server is None:
            raise GiveUp("no such server")
        if server.state == ServerState.DELETED:
            return None
        rows: list[ManagedVolume]
        if "volume_rows" in payload:
            # The volumes the user decided about (a kept one no longer names the server).
            ids = [int(i) for i in payload["volume_rows"]]
            rows = list(session.scalars(select(ManagedVolume).where(ManagedVolume.id.in_(ids)))) if ids else []
        else:
            rows = server_volumes(session, server.id)
        link = session.scalar(
            select(DepartmentCloud).where(
                DepartmentCloud.department_id == server.department_id, DepartmentCloud.cloud_id == server.cloud_id
            )
        )
        address = server_address(session, server.id)
        # An item queued without an answer (from before volumes were asked for) keeps them:
        # nothing is deleted that nobody chose to delete.
        keep = payload.get("volumes") != VolumeChoice.DELETE.value
        return DeletionPlan(
            server_id=server.id,
            cloud_server_id=server.server_id,
            project_id=link.project_id if link else None,
            keep=keep,
            volumes=tuple(
                VolumeStep(v.id, v.index, v.volume_id, v.idempotency_key, v.state)
                for v in sorted(rows, key=lambda v: v.index)
            ),
            address=(
                AddressStep(address.id, address.floating_ip_id, address.idempotency_key, address.state)
                if address is not None
                else None
            ),
        )


def delete_server_and_parts(db: Database, provider: CloudProvider, payload: Mapping[str, Any]) -> None:
    """The public address released, each volume detached and kept or deleted, then the VM
    deleted and the ledger given back: each step recorded as done, each safe to run again."""
    plan = deletion_plan(db, payload)
    if plan is None:
        return
    part = "public address"
    try:
        if plan.address is not None and plan.address.state != AddressState.RELEASED:
            _release_address(db, provider, plan, plan.address)
        for volume in plan.volumes:
            part = f"data disk {volume.index}"
            _settle_volume(db, provider, plan, volume)
        part = "server"
        if plan.cloud_server_id:
            provider.delete_server(plan.cloud_server_id, wait=True)
    except CloudUnavailable as exc:
        raise RetryLater(str(exc)) from exc
    except CloudError as exc:
        raise GiveUp(f"delete failed at the {part}: {exc}") from exc
    finish_deletion(db, plan.server_id)


def _release_address(db: Database, provider: CloudProvider, plan: DeletionPlan, address: AddressStep) -> None:
    floating_ip_id = address.floating_ip_id
    if floating_ip_id is None and plan.project_id:
        # Allocated by its tag and the worker died before recording it: found by the tag.
        floating_ip_id = next(
            (f.id for f in provider.list_floating_ips(plan.project_id) if f.idempotency_tag == address.idempotency_key),
            None,
        )
    if floating_ip_id is not None:
        with contextlib.suppress(CloudNotFound):  # released already
            provider.disassociate_floating_ip(floating_ip_id)
        provider.release_floating_ip(floating_ip_id)
    with db.unit_of_work() as uow:
        session = uow.session
        row = session.get(ManagedAddress, address.row_id, with_for_update=True)
        server = session.get(ManagedServer, plan.server_id, with_for_update=True)
        if row is None or server is None or row.state == AddressState.RELEASED:
            return
        row.state, row.fault = AddressState.RELEASED, None
        if _counted(row.quota_counted, row_request_id=None, server=server):
            ledger.give_back_usage(
                session,
                department_id=server.department_id,
                cloud_id=server.cloud_id,
                amounts={Resource.FLOATING_IPS: 1},
            )
        row.quota_counted = False
        if server.addresses and "public" in server.addresses:
            server.addresses = {k: v for k, v in server.addresses.items() if k != "public"}
        audit.record(
            session,
            actor=SYSTEM.username,
            action="address.released",
            target_type="managed_server",
            target_id=server.id,
            detail={"floating_ip_id": floating_ip_id, "address": row.address},
        )


def _settle_volume(db: Database, provider: CloudProvider, plan: DeletionPlan, volume: VolumeStep) -> None:
    if volume.state == VolumeState.DELETED:
        return
    volume_id = volume.volume_id
    if volume_id is None and plan.project_id:
        made = provider.find_volume_by_tag(plan.project_id, volume.idempotency_key)
        volume_id = made.id if made is not None else None
    if volume_id is None:
        # Never made on the cloud (the server failed before): nothing to keep or delete.
        _record_volume(db, plan, volume.row_id, None, VolumeState.DELETED)
        return
    try:
        if plan.cloud_server_id:
            provider.detach_volume(plan.cloud_server_id, volume_id)
        provider.wait_volume(volume_id, {"available", "error"})
        if not plan.keep:
            provider.delete_volume(volume_id, wait=True)
    except CloudNotFound:
        # Gone from the cloud (deleted outside cloudmgr, or by an earlier run).
        _record_volume(db, plan, volume.row_id, volume_id, VolumeState.DELETED)
        return
    _record_volume(db, plan, volume.row_id, volume_id, VolumeState.AVAILABLE if plan.keep else VolumeState.DELETED)


def _record_volume(db: Database, plan: DeletionPlan, row_id: int, volume_id: str | None, state: VolumeState) -> None:
    with db.unit_of_work() as uow:
        session = uow.session
        row = session.get(ManagedVolume, row_id, with_for_update=True)
        server = session.get(ManagedServer, plan.server_id)
        if row is None or server is None or (row.state == state and row.server_id is None):
            return
        # Kept or deleted, the volume is no server's any more; the department stays its owner, and
        # it keeps the name it had after the server.
        row.name = row.name or disk_name(server.name, row.index)
        row.state, row.fault, row.server_id = state, None, None
        if volume_id is not None:
            row.volume_id = volume_id
        if state == VolumeState.DELETED:
            if _counted(row.quota_counted, row_request_id=row.request_id, server=server):
                ledger.give_back_usage(
                    session,
                    department_id=row.department_id,
                    cloud_id=row.cloud_id,
                    amounts={Resource.VOLUMES: 1, Resource.GIGABYTES: row.size_gb},
                )
            row.quota_counted = False
        audit.record(
            session,
            actor=SYSTEM.username,
            action="volume.kept" if state == VolumeState.AVAILABLE else "volume.deleted",
            target_type="managed_server",
            target_id=plan.server_id,
            detail={"volume_id": volume_id, "index": row.index, "size_gb": row.size_gb},
        )


def _counted(quota_counted: bool, *, row_request_id: int | None, server: ManagedServer) -> bool:
    """Whether a part of ``server`` is in the ledger's used: its flag says so, except for the
    request's own parts of a server that never became ACTIVE (its reservation, which held them,
    was released, never consumed)."""
    if not quota_counted:
        return False
    own_part = row_request_id is None or row_request_id == server.request_id
    return server.active_at is not None or not own_part


def finish_deletion(db: Database, server_id: int) -> None:
    """The server is gone: DELETED, and the ledger gives back its cores, memory and instance
    (once; its parts gave back theirs as they were settled)."""
    with db.unit_of_work() as uow:
        session = uow.session
        server = session.get(ManagedServer, server_id, with_for_update=True)
        assert server is not None
        if server.state == ServerState.DELETED:
            return
        server.state = ServerState.DELETED
        ledger.give_back_usage(
            session,
            department_id=server.department_id,
            cloud_id=server.cloud_id,
            amounts={Resource.CORES: server.vcpus, Resource.RAM_MB: server.ram_mb, Resource.INSTANCES: 1},
        )
        retire_if_done(session, server.request_id)
        audit.record(
            session,
            actor=SYSTEM.username,
            action="server.delete.done",
            target_type="managed_server",
            target_id=server.id,
        )


def retire_if_done(session: Session, request_id: int) -> None:
    """A request whose every server is gone (deleted, cancelled or failed) is retired."""
    request = session.get(ServiceRequest, request_id)
    if request is None:
        return
    if request.state in {
        RequestState.ACTIVE,
        RequestState.PARTIALLY_ACTIVE,
        RequestState.FAILED,
    } and all(s.state in {ServerState.DELETED, ServerState.CANCELLED, ServerState.ERROR} for s in request.servers):
        record_transition(
            session,
            request,
            RequestState.RETIRED,
            actor=SYSTEM,
            action="retire",
            reason=Message(texts.EVERY_SERVER_DELETED),
        )
