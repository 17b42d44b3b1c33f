"""The work of an operator's action on an orphaned volume or address (adopt, delete), run by
the ``orphan_action`` work item (:func:`cloudmgr.servicerequests.jobs.handle_orphan_action`):
read the cloud, act, record, between short units of work (no cloud call inside one)."""

from __future__ import annotations

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError, CloudUnavailable
from cloudmgr.cloud.errors import CloudNotFound
from cloudmgr.cloud.types import FloatingIp, Volume
from cloudmgr.db import Database
from cloudmgr.messages import N_, Message, message
from cloudmgr.providers import ProviderRegistry
from cloudmgr.quotas import ledger
from cloudmgr.servicerequests.orphans import OrphanKind, OrphanResolution, OrphanResource, adopt, resolve
from cloudmgr.stored_messages import stored_text
from cloudmgr.workqueue.services import GiveUp, RetryLater

ACTOR = "system:orphan_action"


def _note_fault(db: Database, orphan_id: int, fault: str | Message) -> None:
    """The action did not happen: the operator sees why and may act again (a held quota goes back)."""
    with db.unit_of_work() as uow:
        orphan = uow.session.get(OrphanResource, orphan_id, with_for_update=True)
        if orphan is None:
            return
        if orphan.reservation_id is not None:
            ledger.release(uow.session, orphan.reservation_id, reason=f"orphan action failed: {fault}")
            orphan.reservation_id, orphan.department_id = None, None
        orphan.pending_action, orphan.fault = None, stored_text(orphan, fault)
        audit.record(
            uow.session,
            actor=ACTOR,
            action=f"{orphan.kind}.orphan.failed",
            target_type="orphan_resource",
            target_id=orphan.id,
            reason=fault,
        )


def run_orphan_action(db: Database, registry: ProviderRegistry, orphan_id: int) -> None:
    """Do the adopt or delete the operator queued; a rerun after it was done changes nothing."""
    with db.unit_of_work() as uow:
        orphan = uow.session.get(OrphanResource, orphan_id)
        if orphan is None:
            raise GiveUp(f"no orphan {orphan_id}")
        if not orphan.is_open or orphan.pending_action is None:
            return  # done already (a rerun), or the reconcile job saw it go
        kind, action, resource_id, project_id = (
            orphan.kind,
            orphan.pending_action,
            orphan.resource_id,
            orphan.project_id,
        )
        cloud = orphan.cloud
        cloud_key, os_cloud, region = cloud.key, cloud.os_cloud, cloud.region
    provider = registry.for_cloud(cloud_key, os_cloud, region)
    volume: Volume | None = None
    address: FloatingIp | None = None
    try:
        if kind == OrphanKind.VOLUME:
            try:
                volume = provider.get_volume(resource_id)
            except CloudNotFound:
                volume = None
        else:
            address = next((a for a in provider.list_floating_ips(project_id or "") if a.id == resource_id), None)
        if volume is None and address is None:
            with db.unit_of_work() as uow:
                orphan = uow.session.get(OrphanResource, orphan_id, with_for_update=True)
                if orphan is not None and orphan.is_open:
                    resolve(uow.session, orphan, OrphanResolution.GONE)
            return
        if action == "delete":
            if volume is not None:
                if volume.attachments:
                    attached = message(
                        N_("volume %(volume)s is attached to server %(server)s"),
                        volume=volume.name,
                        server=volume.attachments[0].server_id,
                    )
                    _note_fault(db, orphan_id, attached)
                    return
                provider.delete_volume(resource_id)
            else:
                provider.release_floating_ip(resource_id)
    except CloudUnavailable as exc:
        raise RetryLater(str(exc)) from exc
    except CloudError as exc:  # a conflict (busy, has snapshots), a refusal: the operator sees it
        _note_fault(db, orphan_id, str(exc))
        return
    with db.unit_of_work() as uow:
        orphan = uow.session.get(OrphanResource, orphan_id, with_for_update=True)
        if orphan is None or not orphan.is_open:
            return
        if action == "delete":
            resolve(uow.session, orphan, OrphanResolution.DELETED)
        else:
            adopt(uow.session, orphan, volume=volume, address=address)
        audit.record(
            uow.session,
            actor=ACTOR,
            action=f"{kind}.orphan.{action}.done",
            target_type="orphan_resource",
            target_id=orphan_id,
        )
