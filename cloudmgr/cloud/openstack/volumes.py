"""Cinder's volumes (made empty, from a snapshot or from an image, and copied into an image),
volume snapshots and backups, and Nova's volume attachments.

Idempotency: a volume, snapshot or backup created with a tag carries it in its metadata
(``cloudmgr_tag``; backups have metadata from Cinder microversion 3.43) and is found again
by listing the project's volumes or the volume's snapshots and backups before anything is
created.  What is created lands in the owning project (its quota counts it), through
``_project_conn``; reads and deletions use the admin connection.

Cinder answers 400 (InvalidVolume, InvalidBackup) where the state forbids an operation
(deleting an attached volume, a backup being made); those become CloudConflict here, like
Nova's and Neutron's 409, so callers see one error for "not now".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openstack.exceptions as os_exc

from cloudmgr.cloud.checks import (
    check_idempotency_tag,
    check_volume_fits_image,
    check_volume_size,
    check_volume_source,
)
from cloudmgr.cloud.errors import CloudBadRequest, CloudConflict
from cloudmgr.cloud.openstack.connection import FirstTry, OpenStackConnection
from cloudmgr.cloud.provider import FAILED_IMAGE_STATUSES
from cloudmgr.cloud.types import (
    VOLUME_TAG_METADATA_KEY,
    Image,
    Volume,
    VolumeAttachment,
    VolumeBackup,
    VolumeSnapshot,
    VolumeType,
)

#: Volume statuses in which it is (being) attached to a server.
_ATTACHED_STATUSES = frozenset({"in-use", "attaching", "reserved", "detaching"})


def _tag(resource: Any) -> str | None:
    metadata = resource.metadata or {}
    tag = metadata.get(VOLUME_TAG_METADATA_KEY)
    return str(tag) if tag else None


def to_volume(volume: Any) -> Volume:
    attachments = tuple(
        VolumeAttachment(server_id=str(a["server_id"]), device=a.get("device") or None)
        for a in volume.attachments or ()
        if a.get("server_id")
    )
    return Volume(
        id=str(volume.id),
        name=str(volume.name or ""),
        size_gb=int(volume.size or 0),
        status=str(volume.status or "unknown"),
        volume_type=volume.volume_type or None,
        attachments=attachments,
        tag=_tag(volume),
        project_id=volume.project_id,
        snapshot_id=volume.snapshot_id or None,
    )


def to_volume_snapshot(snapshot: Any) -> VolumeSnapshot:
    return VolumeSnapshot(
        id=str(snapshot.id),
        name=str(snapshot.name or ""),
        volume_id=str(snapshot.volume_id),
        size_gb=int(snapshot.size or 0),
        status=str(snapshot.status or "unknown"),
        tag=_tag(snapshot),
        project_id=snapshot.project_id,
    )


def to_volume_backup(backup: Any) -> VolumeBackup:
    return VolumeBackup(
        id=str(backup.id),
        name=str(backup.name or ""),
        volume_id=str(backup.volume_id),
        size_gb=int(backup.size or 0),
        status=str(backup.status or "unknown"),
        is_incremental=bool(backup.is_incremental),
        tag=_tag(backup),
        project_id=backup.project_id,
    )


def _oldest(found: list[Any]) -> Any:
    return min(found, key=lambda r: (str(r.created_at or ""), str(r.id)))


def _by_name(item: Volume | VolumeSnapshot | VolumeBackup) -> tuple[str, str]:
    return (item.name, item.id)


def _refused_by_state(action: str, operation: Callable[[], Any]) -> Any:
    """Run ``operation``; Cinder's 400 for a resource in the wrong state becomes CloudConflict."""
    try:
        return operation()
    except os_exc.BadRequestException as exc:
        raise CloudConflict(
            f"{action} refused: conflicts with the resource's current state", str(exc.details or exc), status_code=400
        ) from exc


class OpenStackVolumes(OpenStackConnection):
    # ---- volumes ----------------------------------------------------------------------

    def list_volume_types(self) -> list[VolumeType]:
        types = self._call("list volume types", lambda: list(self._admin.block_storage.types()))
        return sorted(
            (VolumeType(id=str(t.id), name=str(t.name), description=str(t.description or "")) for t in types),
            key=lambda t: (t.name, t.id),
        )

    def _project_volumes(self, project_id: str) -> list[Any]:
        found = self._admin.block_storage.volumes(details=True, all_projects=True, project_id=project_id)
        # Filtered again here: the project filter is only honoured together with all_tenants.
        return [v for v in found if v.project_id == project_id]

    def _tagged_volumes(self, project_id: str, tag: str) -> list[Any]:
        return [v for v in self._project_volumes(project_id) if _tag(v) == tag]

    def create_volume(
        self,
        project_id: str,
        name: str,
        size_gb: int,
        volume_type: str | None,
        idempotency_tag: str,
        *,
        snapshot_id: str | None = None,
        image_id: str | None = None,
        first_try: bool = False,
    ) -> Volume:
        action = f"create volume {name}"
        size = check_volume_size(size_gb, action)
        check_idempotency_tag(idempotency_tag)
        check_volume_source(snapshot_id, image_id, action)
        self._require_project(project_id)
        attrs: dict[str, Any] = {
            "name": name,
            "size": size,
            "metadata": {VOLUME_TAG_METADATA_KEY: idempotency_tag},
        }
        if volume_type:
            attrs["volume_type"] = volume_type
        if snapshot_id:
            attrs["snapshot_id"] = snapshot_id
        if image_id:
            attrs["image_id"] = image_id

        once = FirstTry(first_try)

        def lookup_or_create() -> Any:
            # Looking up first: a create that reached Cinder before the connection dropped
            # is found, not repeated.
            first = once.take()
            existing = [] if first else self._tagged_volumes(project_id, idempotency_tag)
            if existing:
                return _oldest(existing)
            if image_id:
                # Cinder answers 400 for an image it cannot find: Glance says 404.
                image = self._admin.image.get_image(image_id)
                check_volume_fits_image(size, image.size, action)
            storage = self._project_conn(project_id).block_storage
            created = storage.create_volume(**attrs)
            if first:
                return created  # Cinder answers a create with the whole volume
            # Two concurrent first calls can both create: keep the oldest, delete ours.
            tagged = self._tagged_volumes(project_id, idempotency_tag)
            keep = _oldest(tagged) if tagged else created
            if str(keep.id) != str(created.id):
                self._admin.block_storage.delete_volume(created.id, ignore_missing=True)
            return self._admin.block_storage.get_volume(keep.id)

        return to_volume(self._call(action, lookup_or_create, idempotent=False))

    def find_volume_by_tag(self, project_id: str, idempotency_tag: str) -> Volume | None:
        self._require_project(project_id)
        found = self._call(
            f"find volume tagged {idempotency_tag}", lambda: self._tagged_volumes(project_id, idempotency_tag)
        )
        return to_volume(_oldest(found)) if found else None

    def _get_volume_raw(self, volume_id: str) -> Any:
        return self._admin.block_storage.get_volume(volume_id)

    def get_volume(self, volume_id: str) -> Volume:
        return to_volume(self._call(f"get volume {volume_id}", lambda: self._get_volume_raw(volume_id)))

    def list_volumes(self, project_id: str) -> list[Volume]:
        self._require_project(project_id)
        found = self._call(f"list volumes of project {project_id}", lambda: self._project_volumes(project_id))
        return sorted((to_volume(v) for v in found), key=_by_name)

    def attach_volume(self, server_id: str, volume_id: str) -> None:
        action = f"attach volume {volume_id} to server {server_id}"

        def attach() -> None:
            volume = self._get_volume_raw(volume_id)
            attached_to = {str(a.get("server_id")) for a in volume.attachments or ()}
            if server_id in attached_to:
                return
            if attached_to:
                raise CloudConflict(
                    f"{action} refused: the volume is attached to another server", ", ".join(sorted(attached_to))
                )
            if volume.status != "available":
                # Reserved or attaching: Nova's list holds attachments still in progress, so a
                # retry while this server's first attach is under way does not ask twice.
                if any(str(a.volume_id) == volume_id for a in self._admin.compute.volume_attachments(server_id)):
                    return
                raise CloudConflict(f"{action} refused: the volume is {volume.status}, not available")
            # Attached as the server's project, like a member of the department would.
            project_id = self._server_project(server_id)
            compute = (self._project_conn(project_id) if project_id else self._admin).compute
            compute.create_volume_attachment(server_id, volume_id=volume_id)

        self._call(action, attach)

    def detach_volume(self, server_id: str, volume_id: str) -> None:
        action = f"detach volume {volume_id} from server {server_id}"

        def detach() -> None:
            if not any(str(a.volume_id) == volume_id for a in self._admin.compute.volume_attachments(server_id)):
                return
            try:
                self._admin.compute.delete_volume_attachment(server_id, volume_id)
            except os_exc.NotFoundException:
                return  # detached between the two calls

        self._call(action, detach)

    def extend_volume(self, volume_id: str, new_size_gb: int) -> None:
        action = f"extend volume {volume_id} to {new_size_gb} GB"
        new_size = check_volume_size(new_size_gb, action)

        def extend() -> None:
            volume = self._get_volume_raw(volume_id)
            if int(volume.size) == new_size:
                return
            if volume.status == "extending":
                return  # an earlier attempt of this call was accepted
            if new_size < int(volume.size):
                raise CloudBadRequest(
                    f"{action} rejected as invalid: volumes only grow", f"the volume has {volume.size} GB"
                )
            _refused_by_state(action, lambda: self._admin.block_storage.extend_volume(volume_id, new_size))

        self._call(action, extend)

    def delete_volume(self, volume_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        action = f"delete volume {volume_id}"

        def delete() -> None:
            try:
                volume = self._get_volume_raw(volume_id)
            except os_exc.NotFoundException:
                return
            if volume.attachments or volume.status in _ATTACHED_STATUSES:
                raise CloudConflict(f"{action} refused: the volume is attached to a server", f"status {volume.status}")
            if volume.status == "deleting":
                return
            _refused_by_state(action, lambda: self._admin.block_storage.delete_volume(volume_id, ignore_missing=True))

        self._call(action, delete)
        if wait:
            self.wait_volume_deleted(volume_id, timeout)

    def upload_volume_to_image(self, volume_id: str, image_name: str) -> Image:
        action = f"upload volume {volume_id} to image {image_name}"

        def lookup_or_upload() -> str:
            volume = self._get_volume_raw(volume_id)
            owner = volume.project_id
            # Looking up first: an upload Cinder accepted before the connection dropped made
            # its image (Cinder creates it before answering) and is found, not repeated.
            found = [
                i
                for i in self._admin.image.images(name=image_name, owner=owner)
                if i.name == image_name and i.status not in FAILED_IMAGE_STATUSES
            ]
            if found:
                return str(_oldest(found).id)
            if volume.attachments or volume.status != "available":
                raise CloudConflict(f"{action} refused: the volume is {volume.status}, not available")
            storage = (self._project_conn(owner) if owner else self._admin).block_storage
            answer = _refused_by_state(
                action,
                lambda: storage.upload_volume_to_image(
                    volume_id, image_name, force=False, disk_format="raw", container_format="bare"
                ),
            )
            return str(answer["image_id"])

        return self.get_image(self._call(action, lookup_or_upload, idempotent=False))

    # ---- snapshots --------------------------------------------------------------------

    def create_volume_snapshot(
        self, volume_id: str, name: str, idempotency_tag: str, *, force: bool = True
    ) -> VolumeSnapshot:
        action = f"snapshot volume {volume_id}"
        check_idempotency_tag(idempotency_tag)

        def tagged() -> list[Any]:
            found = self._admin.block_storage.snapshots(details=True, all_projects=True, volume_id=volume_id)
            return [s for s in found if str(s.volume_id) == volume_id and _tag(s) == idempotency_tag]

        def lookup_or_create() -> Any:
            existing = tagged()
            if existing:
                return _oldest(existing)
            volume = self._get_volume_raw(volume_id)
            attached = bool(volume.attachments) or volume.status in _ATTACHED_STATUSES
            if attached and not force:
                raise CloudConflict(f"{action} refused: the volume is attached and force is off")
            storage = (self._project_conn(volume.project_id) if volume.project_id else self._admin).block_storage
            created = _refused_by_state(
                action,
                lambda: storage.create_snapshot(
                    volume_id=volume_id,
                    name=name,
                    metadata={VOLUME_TAG_METADATA_KEY: idempotency_tag},
                    force=attached,
                ),
            )
            return self._admin.block_storage.get_snapshot(created.id)

        return to_volume_snapshot(self._call(action, lookup_or_create, idempotent=False))

    def get_volume_snapshot(self, snapshot_id: str) -> VolumeSnapshot:
        return to_volume_snapshot(
            self._call(
                f"get volume snapshot {snapshot_id}", lambda: self._admin.block_storage.get_snapshot(snapshot_id)
            )
        )

    def list_volume_snapshots(self, project_id: str) -> list[VolumeSnapshot]:
        self._require_project(project_id)

        def fetch() -> list[Any]:
            found = self._admin.block_storage.snapshots(details=True, all_projects=True, project_id=project_id)
            return [s for s in found if s.project_id == project_id]

        return sorted((to_volume_snapshot(s) for s in self._call("list volume snapshots", fetch)), key=_by_name)

    def delete_volume_snapshot(self, snapshot_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        action = f"delete volume snapshot {snapshot_id}"

        def delete() -> None:
            try:
                snapshot = self._admin.block_storage.get_snapshot(snapshot_id)
            except os_exc.NotFoundException:
                return
            if snapshot.status == "deleting":
                return
            _refused_by_state(
                action, lambda: self._admin.block_storage.delete_snapshot(snapshot_id, ignore_missing=True)
            )

        self._call(action, delete)
        if wait:
            self.wait_volume_snapshot_deleted(snapshot_id, timeout)

    # ---- backups ----------------------------------------------------------------------

    def create_volume_backup(
        self, volume_id: str, name: str, idempotency_tag: str, *, incremental: bool = False
    ) -> VolumeBackup:
        action = f"back up volume {volume_id}"
        check_idempotency_tag(idempotency_tag)

        def tagged() -> list[Any]:
            found = self._admin.block_storage.backups(details=True, all_projects=True, volume_id=volume_id)
            return [b for b in found if str(b.volume_id) == volume_id and _tag(b) == idempotency_tag]

        def lookup_or_create() -> Any:
            existing = tagged()
            if existing:
                return _oldest(existing)
            volume = self._get_volume_raw(volume_id)
            attached = bool(volume.attachments) or volume.status in _ATTACHED_STATUSES
            storage = (self._project_conn(volume.project_id) if volume.project_id else self._admin).block_storage
            created = storage.create_backup(
                volume_id=volume_id,
                name=name,
                is_incremental=incremental,
                # Cinder backs up an attached volume only when forced (crash-consistent).
                force=attached,
                metadata={VOLUME_TAG_METADATA_KEY: idempotency_tag},
            )
            return self._admin.block_storage.get_backup(created.id)

        return to_volume_backup(self._call(action, lookup_or_create, idempotent=False))

    def get_volume_backup(self, backup_id: str) -> VolumeBackup:
        return to_volume_backup(
            self._call(f"get volume backup {backup_id}", lambda: self._admin.block_storage.get_backup(backup_id))
        )

    def list_volume_backups(self, project_id: str) -> list[VolumeBackup]:
        self._require_project(project_id)

        def fetch() -> list[Any]:
            found = self._admin.block_storage.backups(details=True, all_projects=True, project_id=project_id)
            return [b for b in found if b.project_id == project_id]

        return sorted((to_volume_backup(b) for b in self._call("list volume backups", fetch)), key=_by_name)

    def restore_volume_backup(self, backup_id: str, *, volume_id: str | None = None, name: str | None = None) -> Volume:
        action = f"restore volume backup {backup_id}"
        if volume_id is not None and name is not None:
            raise CloudBadRequest(f"{action} rejected as invalid", "restore into a volume or into a new one, not both")
        backup = self._call(f"get volume backup {backup_id}", lambda: self._admin.block_storage.get_backup(backup_id))
        storage = (self._project_conn(backup.project_id) if backup.project_id else self._admin).block_storage
        target_name = None if volume_id else (name or f"{backup.name or backup_id}-restored")

        def restore() -> str:
            restored = _refused_by_state(
                action, lambda: storage.restore_backup(backup_id, volume=volume_id, name=target_name)
            )
            return str(restored.volume_id)

        target = self._call(action, restore, idempotent=False)
        return self.get_volume(target)

    def delete_volume_backup(self, backup_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        action = f"delete volume backup {backup_id}"

        def delete() -> None:
            try:
                backup = self._admin.block_storage.get_backup(backup_id)
            except os_exc.NotFoundException:
                return
            if backup.status == "deleting":
                return
            # An incremental backup builds on the volume's backups made before it; Cinder's
            # own check (has_dependent_backups) is not always up to date, so look ourselves.
            later_incremental = [
                b
                for b in self._admin.block_storage.backups(details=True, all_projects=True, volume_id=backup.volume_id)
                if b.is_incremental
                and str(b.id) != backup_id
                and str(b.created_at or "") >= str(backup.created_at or "")
            ]
            if backup.has_dependent_backups or later_incremental:
                raise CloudConflict(
                    f"{action} refused: an incremental backup depends on it",
                    ", ".join(str(b.id) for b in later_incremental),
                )
            _refused_by_state(action, lambda: self._admin.block_storage.delete_backup(backup_id, ignore_missing=True))

        self._call(action, delete)
        if wait:
            self.wait_volume_backup_deleted(backup_id, timeout)
