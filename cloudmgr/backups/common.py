"""What the snapshots and backups services share (issue 16): who acts, the states a copy
needs, the work item kinds, and the few steps every kind of copy takes (finding a volume behind
the department wall, tagging, queueing a backup).  Internal: pages and the API reach it through
:mod:`cloudmgr.backups.services`."""

from __future__ import annotations

import secrets
from datetime import timedelta, timezone

from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.backups.errors import CopyConflict, CopyKind, CopyProblem, NotYourVolume, VolumeNotFound, VolumeNotReady
from cloudmgr.backups.models import CopyState, ServerSnapshotRecord, VolumeBackupRecord, VolumeSnapshotRecord
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.parts import ManagedVolume, VolumeState
from cloudmgr.servicerequests.states import ServerState
from cloudmgr.workqueue.services import enqueue

#: The province's time, in which schedules are written (China has no daylight saving).
LOCAL_TIME = timezone(timedelta(hours=8), "UTC+8")
KEEP_MAX = 30
#: Who acts on volumes; everyone else who sees the department (auditors, finance) only reads.
VOLUME_ACTORS = frozenset({Role.DEPT_STAFF, Role.DEPT_HEAD, Role.OPERATOR})
#: A volume with data on the cloud: what can be snapshotted or backed up.
COPYABLE_STATES = frozenset({VolumeState.ATTACHED, VolumeState.AVAILABLE})

#: A server with a root disk on the cloud that Nova snapshots and rebuilds.
SERVER_COPYABLE_STATES = frozenset({ServerState.ACTIVE, ServerState.STOPPED})
SNAPSHOT_NAME_MAX = 64

# Work item kinds (cloudmgr.scheduler.jobs maps them to cloudmgr.backups.jobs' handlers).
SNAPSHOT_WORK = "backups.snapshot"
BACKUP_WORK = "backups.backup"
RESTORE_WORK = "backups.restore"
DELETE_WORK = "backups.delete"  # any copy: a backup, a volume snapshot or a server snapshot
SERVER_SNAPSHOT_WORK = "backups.server_snapshot"
SERVER_RESTORE_WORK = "backups.server_restore"
WORK_KINDS = frozenset(
    {SNAPSHOT_WORK, BACKUP_WORK, RESTORE_WORK, DELETE_WORK, SERVER_SNAPSHOT_WORK, SERVER_RESTORE_WORK}
)


def find_volume(session: Session, actor: Actor, volume_row_id: int, *, lock: bool = False) -> ManagedVolume:
    volume = session.get(ManagedVolume, volume_row_id, with_for_update=lock or None)
    if volume is None or volume.state == VolumeState.DELETED or not actor.can_see_department(volume.department_id):
        raise VolumeNotFound(message(N_("no volume %(id)s"), id=volume_row_id))
    return volume


def must_act(actor: Actor) -> None:
    if actor.role not in VOLUME_ACTORS:
        raise NotYourVolume(Message(N_("only the department or an operator acts on a volume's snapshots and backups")))


def must_be_copyable(volume: ManagedVolume) -> None:
    if volume.state not in COPYABLE_STATES or not volume.volume_id:
        raise VolumeNotReady(message(N_("volume %(id)s is not ready: it has nothing to copy yet"), id=volume.id))


def new_tag(prefix: str) -> str:
    return f"cm-{prefix}-{secrets.token_hex(8)}"


def must_be_deletable(record: VolumeSnapshotRecord | VolumeBackupRecord | ServerSnapshotRecord, kind: CopyKind) -> None:
    if record.state == CopyState.PENDING:
        raise CopyConflict(CopyProblem.COPY_BUSY, kind=kind.value, copy=record.id, state=record.state.value)


def queue_backup(
    session: Session, actor: Actor, volume: ManagedVolume, tag: str, schedule_id: int | None
) -> VolumeBackupRecord:
    reservation = ledger.reserve(
        session,
        department_id=volume.department_id,
        cloud_id=volume.cloud_id,
        amounts={Resource.BACKUPS: 1},
        owner=f"backup:{tag}",
    )
    record = VolumeBackupRecord(
        volume_row_id=volume.id,
        department_id=volume.department_id,
        cloud_id=volume.cloud_id,
        tag=tag,
        size_gb=volume.size_gb,
        state=CopyState.PENDING,
        schedule_id=schedule_id,
        reservation_id=reservation.id,
        requested_by=actor.username,
    )
    session.add(record)
    session.flush()
    enqueue(session, BACKUP_WORK, f"backup:{record.id}", {"backup_record_id": record.id})
    audit.record(
        session,
        actor=actor.username,
        action="volume.backup",
        target_type="managed_volume",
        target_id=volume.id,
        detail={"backup_record": record.id, "tag": tag, "schedule": schedule_id},
    )
    return record
