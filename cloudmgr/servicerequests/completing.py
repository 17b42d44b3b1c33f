"""Making the parts of a batch of ACTIVE servers (issue 16), phase by phase: every data volume
of the batch is created, then waited for, then attached, then waited in use; then every public
address is allocated, then associated.  Made one server after another, each volume and each
attachment was waited for in turn (Cinder needs a second or so for each): 10 servers took
two and a half times as long as the same calls made with openstacksdk by phase
(benchmarks/usable_vms.py).  By phase, the waits overlap.

Each step is recorded as it is done, so a run taken over (or an operator's retry) goes on from
the step it stopped at and finds by tag what an earlier run made: never a second volume or
address.  A part that fails fails its own server (naming the part) and no other: the rest of
the batch goes on."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from cloudmgr.cloud import CloudError, CloudUnavailable
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.cloud.types import FloatingIp
from cloudmgr.db import Database
from cloudmgr.messages import Message
from cloudmgr.servicerequests import texts
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState
from cloudmgr.servicerequests.provisioning import (
    AddressPart,
    ProvisioningTarget,
    VolumePart,
    claim_rows,
    fail_part,
    record_addresses,
    record_ready,
    record_volumes,
    server_parts,
)
from cloudmgr.workqueue.services import RetryLater

_Result = TypeVar("_Result")

PUBLIC_ADDRESS = Message(texts.PUBLIC_ADDRESS)

#: What a volume may be in once made: attached already when an earlier run got that far.
_MADE = frozenset({"available", "in-use"})


@dataclass(frozen=True)
class ActiveServer:
    """A server of the batch that reached ACTIVE: its row's id and its id on the cloud."""

    row_id: int
    cloud_id: str


@dataclass
class _Batch:
    db: Database
    provider: CloudProvider
    target: ProvisioningTarget
    keep_alive: Callable[[], None]
    failed: set[int] = field(default_factory=set)

    def attempt(self, server: ActiveServer, part: Message, call: Callable[[], _Result], **row: int) -> _Result | None:
        """``call`` for one server's part; None when the server failed before or fails now (its
        fault names the part).  An unreachable cloud stops the whole batch: it is retried."""
        if server.row_id in self.failed:
            return None
        try:
            return call()
        except CloudUnavailable as exc:
            raise RetryLater(f"cloud {self.target.cloud_key} unreachable: {exc}") from exc
        except _Refused as refused:
            fail_part(self.db, server.row_id, self.target.cloud_key, part, refused.problem, **row)
            self.failed.add(server.row_id)
            return None
        except CloudError as exc:
            fail_part(self.db, server.row_id, self.target.cloud_key, part, exc, **row)
            self.failed.add(server.row_id)
            return None


@dataclass(frozen=True)
class _Disk:
    server: ActiveServer
    part: VolumePart

    @property
    def label(self) -> Message:
        return texts.data_disk(self.part.index)


def complete_parts(
    db: Database,
    provider: CloudProvider,
    target: ProvisioningTarget,
    servers: Sequence[ActiveServer],
    keep_alive: Callable[[], None],
) -> None:
    """Make what each of ``servers`` still lacks (``keep_alive`` renews the work item's lease
    between phases), then mark ready every server that has all its parts."""
    assert target.project_id is not None
    batch = _Batch(db, provider, target, keep_alive)
    disks: list[_Disk] = []
    addresses: list[tuple[ActiveServer, AddressPart]] = []
    for server in servers:
        volumes, address = server_parts(db, server.row_id)
        disks.extend(_Disk(server, volume) for volume in volumes)
        if address is not None:
            addresses.append((server, address))
    if disks:
        _make_volumes(batch, target.project_id, disks)
    if addresses:
        _make_addresses(batch, target.project_id, addresses)
    record_ready(db, [server.row_id for server in servers if server.row_id not in batch.failed])


def claim_first_tries(db: Database, model: type[ManagedVolume] | type[ManagedAddress], ids: list[int]) -> set[int]:
    """The PENDING parts of ``ids`` marked asked of the cloud (CREATING, ALLOCATED) before
    they are asked, in one transaction: for those returned no earlier call can have reached
    the cloud, so theirs skips the look-up by tag (see CloudProvider.create_server)."""
    if not ids:
        return set()
    if model is ManagedVolume:
        pending, asked = VolumeState.PENDING.value, VolumeState.CREATING.value
    else:
        pending, asked = AddressState.PENDING.value, AddressState.ALLOCATED.value
    with db.unit_of_work() as uow:
        return claim_rows(uow.session, model, ids, pending, asked)


def _make_volumes(batch: _Batch, project_id: str, disks: list[_Disk]) -> None:
    provider = batch.provider
    pending = [d.part.id for d in disks if d.part.state == VolumeState.PENDING]
    first_tries = claim_first_tries(batch.db, ManagedVolume, pending)
    made: dict[int, str] = {}  # the part's row id -> the cloud's volume id
    answered: list[tuple[int, str]] = []
    with _recorded(partial(record_volumes, batch.db, answered, state=VolumeState.CREATING)):
        for disk in disks:
            part = disk.part
            if part.state == VolumeState.CREATING and part.volume_id:
                made[part.id] = part.volume_id  # the cloud answered an earlier run
                continue
            create = partial(
                provider.create_volume,
                project_id,
                part.name,
                part.size_gb,
                part.volume_type,
                part.idempotency_key,
                first_try=part.id in first_tries,
            )
            volume = batch.attempt(disk.server, disk.label, create, volume_row_id=part.id)
            if volume is not None:
                made[part.id] = volume.id
                answered.append((part.id, volume.id))
    batch.keep_alive()
    for disk in disks:
        if disk.part.id in made:
            ready = partial(provider.wait_volume, made[disk.part.id], _MADE)
            batch.attempt(disk.server, disk.label, ready, volume_row_id=disk.part.id)
    for disk in disks:
        if disk.part.id in made:
            attach = partial(provider.attach_volume, disk.server.cloud_id, made[disk.part.id])
            batch.attempt(disk.server, disk.label, attach, volume_row_id=disk.part.id)
    batch.keep_alive()
    attached: list[tuple[int, str]] = []
    with _recorded(partial(record_volumes, batch.db, attached, state=VolumeState.ATTACHED)):
        for disk in disks:
            if disk.part.id not in made:
                continue
            in_use = partial(provider.wait_volume, made[disk.part.id], {"in-use"})
            if batch.attempt(disk.server, disk.label, in_use, volume_row_id=disk.part.id) is not None:
                attached.append((disk.part.id, made[disk.part.id]))
    batch.keep_alive()


def _make_addresses(batch: _Batch, project_id: str, addresses: list[tuple[ActiveServer, AddressPart]]) -> None:
    provider, target = batch.provider, batch.target
    pending = [a.id for _, a in addresses if a.state == AddressState.PENDING]
    first_tries = claim_first_tries(batch.db, ManagedAddress, pending)
    to_associate: list[tuple[ActiveServer, AddressPart, str]] = []
    answered: list[tuple[int, FloatingIp]] = []
    with _recorded(partial(record_addresses, batch.db, answered, state=AddressState.ALLOCATED)):
        for server, address in addresses:
            if address.state == AddressState.ALLOCATED and address.floating_ip_id:
                to_associate.append((server, address, address.floating_ip_id))  # answered to an earlier run
                continue
            if not target.external_network:
                no_network = partial(_refuse, texts.no_external_network(target.cloud_key))
                batch.attempt(server, PUBLIC_ADDRESS, no_network, address_row_id=address.id)
                continue
            allocate = partial(
                provider.allocate_floating_ip,
                project_id,
                target.external_network,
                address.idempotency_key,
                first_try=address.id in first_tries,
            )
            floating_ip = batch.attempt(server, PUBLIC_ADDRESS, allocate, address_row_id=address.id)
            if floating_ip is not None:
                answered.append((address.id, floating_ip))
                to_associate.append((server, address, floating_ip.id))
    batch.keep_alive()
    associated: list[tuple[int, FloatingIp]] = []
    with _recorded(partial(record_addresses, batch.db, associated, state=AddressState.ASSOCIATED)):
        for server, address, floating_ip_id in to_associate:
            associate = partial(provider.associate_floating_ip, floating_ip_id, server.cloud_id)
            floating_ip = batch.attempt(server, PUBLIC_ADDRESS, associate, address_row_id=address.id)
            if floating_ip is not None:
                associated.append((address.id, floating_ip))
    batch.keep_alive()


class _Refused(CloudError):
    """A part cloudmgr does not ask of the cloud: its fault is our own sentence."""

    def __init__(self, problem: Message) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _refuse(problem: Message) -> None:
    raise _Refused(problem)


@contextmanager
def _recorded(record: Callable[[], None]) -> Iterator[None]:
    """A phase's answers are recorded in one transaction at its end, and also when it stops
    early (an unreachable cloud), so the next run need not look them up again."""
    try:
        yield
    finally:
        record()
