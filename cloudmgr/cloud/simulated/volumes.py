"""The simulated Cinder: volumes of the lab's types (``fake``, the default, and ``ssd``),
attached to servers, extended, snapshotted, backed up and restored, copied into an image
(upload to image) and made from one.

Like everything in the simulator, operations complete at once: a volume is ``available``
as soon as it is created, ``in-use`` as soon as it is attached, and a backup is
``available`` (its volume back to its former status) when the call returns.  It refuses
what Cinder refuses: a size that is not a positive whole number, shrinking, deleting an
attached volume or one with snapshots, attaching a volume to a second server, an
incremental backup of a volume without a backup, deleting a backup a newer incremental
one depends on.

A volume's data is modelled by what was written into it: :meth:`SimulatedVolumes.
write_volume_data` records each write (offset and digest of the bytes) and
:meth:`SimulatedVolumes.volume_content_digest` sums them up, so a test can check that a
snapshot, a backup and a restore carry the data along.  A server that no longer exists
has no volumes attached (Nova detaches them when it deletes the server).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from cloudmgr.cloud.checks import (
    check_idempotency_tag,
    check_volume_fits_image,
    check_volume_size,
    check_volume_source,
)
from cloudmgr.cloud.errors import CloudBadRequest, CloudConflict, CloudNotFound
from cloudmgr.cloud.simulated.records import (
    find_live,
    image_record,
    iso,
    now,
    require_project,
    stable_id,
    to_image,
)
from cloudmgr.cloud.simulated.store import SimulatedStore
from cloudmgr.cloud.types import Image, Volume, VolumeAttachment, VolumeBackup, VolumeSnapshot, VolumeType

#: The lab's volume types; the first is the default.
DEFAULT_VOLUME_TYPES = (("fake", "the lab's default type"), ("ssd", ""))


def _table(state: dict[str, Any], name: str) -> dict[str, Any]:
    # Volumes came after the state format: a state file from before simply has none yet.
    table: dict[str, Any] = state.setdefault(name, {})
    return table


def _volume_types(state: dict[str, Any]) -> dict[str, Any]:
    types = _table(state, "volume_types")
    if not types:
        for type_name, description in DEFAULT_VOLUME_TYPES:
            type_id = stable_id("volume_type", type_name)
            types[type_id] = {
                "id": type_id,
                "name": type_name,
                "description": description,
                "is_default": type_name == DEFAULT_VOLUME_TYPES[0][0],
            }
    return types


def _not_found(kind: str, resource_id: str) -> CloudNotFound:
    return CloudNotFound(
        f"{kind} {resource_id} not found", f"{kind} {resource_id} could not be found.", status_code=404
    )


def _conflict(action: str, detail: str) -> CloudConflict:
    return CloudConflict(f"{action} refused: conflicts with the resource's current state", detail, status_code=400)


def _settled_volume(state: dict[str, Any], volume_id: str) -> dict[str, Any]:
    """The volume's record, without attachments to servers that no longer exist."""
    record = _table(state, "volumes").get(volume_id)
    if record is None:
        raise _not_found("volume", volume_id)
    live = [a for a in record["attachments"] if _server_exists(state, a["server_id"])]
    if len(live) != len(record["attachments"]):
        record["attachments"] = live
        if not live and record["status"] == "in-use":
            record["status"] = "available"
    return record  # type: ignore[no-any-return]


def _server_exists(state: dict[str, Any], server_id: str) -> bool:
    server = state["servers"].get(server_id)
    return server is not None and not server["deleted"]


def _to_volume(record: dict[str, Any]) -> Volume:
    return Volume(
        id=record["id"],
        name=record["name"],
        size_gb=record["size_gb"],
        status=record["status"],
        volume_type=record["volume_type"],
        attachments=tuple(VolumeAttachment(a["server_id"], a["device"]) for a in record["attachments"]),
        tag=record["tag"],
        project_id=record["project_id"],
        snapshot_id=record["snapshot_id"],
    )


def _to_snapshot(record: dict[str, Any]) -> VolumeSnapshot:
    return VolumeSnapshot(
        id=record["id"],
        name=record["name"],
        volume_id=record["volume_id"],
        size_gb=record["size_gb"],
        status=record["status"],
        tag=record["tag"],
        project_id=record["project_id"],
    )


def _to_backup(record: dict[str, Any]) -> VolumeBackup:
    return VolumeBackup(
        id=record["id"],
        name=record["name"],
        volume_id=record["volume_id"],
        size_gb=record["size_gb"],
        status=record["status"],
        is_incremental=record["is_incremental"],
        tag=record["tag"],
        project_id=record["project_id"],
    )


#: How the simulator writes a volume's data into an image (upload to image): what was
#: written into the volume, so a volume made from the image holds the same.
_VOLUME_IMAGE_HEADER = b"cloudmgr simulated volume image\n"


def _image_of_content(content: dict[str, str]) -> bytes:
    return _VOLUME_IMAGE_HEADER + json.dumps(content, sort_keys=True).encode()


def _content_of_image(data: bytes) -> dict[str, str]:
    """A volume made from an image holds the image's bytes from its start: a volume's data
    when the image was made from a volume, else the image's bytes themselves."""
    if data.startswith(_VOLUME_IMAGE_HEADER):
        return {str(k): str(v) for k, v in json.loads(data[len(_VOLUME_IMAGE_HEADER) :]).items()}
    return {"0": hashlib.sha256(data).hexdigest()} if data else {}


def _oldest(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    return min(records, key=lambda r: (r["created_at"], r["id"])) if records else None


def _device_for(state: dict[str, Any], server_id: str) -> str:
    # The server's root disk is vda; attached volumes take the next letters.
    used = {
        a["device"] for v in _table(state, "volumes").values() for a in v["attachments"] if a["server_id"] == server_id
    }
    letter = next(c for c in "bcdefghijklmnopqrstuvwxyz" if f"/dev/vd{c}" not in used)
    return f"/dev/vd{letter}"


class SimulatedVolumes(SimulatedStore):
    # ---- volumes ----------------------------------------------------------------------

    def list_volume_types(self) -> list[VolumeType]:
        with self._transaction() as state:
            types = _volume_types(state).values()
            return sorted(
                (VolumeType(t["id"], t["name"], t["description"]) for t in types), key=lambda t: (t.name, t.id)
            )

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
        with self._transaction() as state:
            require_project(state, project_id)
            existing = None
            if not first_try:
                existing = _oldest(
                    [
                        v
                        for v in _table(state, "volumes").values()
                        if v["project_id"] == project_id and v["tag"] == idempotency_tag
                    ]
                )
            if existing is not None:
                return _to_volume(_settled_volume(state, existing["id"]))
            types = list(_volume_types(state).values())
            if volume_type is None:
                chosen = next(t for t in types if t["is_default"])
            else:
                matches = [t for t in types if volume_type in (t["name"], t["id"])]
                if not matches:
                    raise _not_found("volume type", volume_type)
                chosen = matches[0]
            content = self._initial_content(state, size, action, snapshot_id=snapshot_id, image_id=image_id)
            record = {
                "id": str(uuid.uuid4()),
                "name": name,
                "size_gb": size,
                "status": "available",
                "volume_type": chosen["name"],
                "attachments": [],
                "tag": idempotency_tag,
                "project_id": project_id,
                "snapshot_id": snapshot_id,
                "content": content,
                "created_at": iso(now()),
            }
            _table(state, "volumes")[record["id"]] = record
            return _to_volume(record)

    def _initial_content(
        self, state: dict[str, Any], size: int, action: str, *, snapshot_id: str | None, image_id: str | None
    ) -> dict[str, str]:
        """What a new volume holds: nothing, its snapshot's data or its image's bytes."""
        if image_id is not None:
            image = state["images"].get(image_id)
            if image is None:
                raise _not_found("image", image_id)
            check_volume_fits_image(size, image["size_bytes"], action)
            return _content_of_image(self._read_blob(image_id))
        if snapshot_id is None:
            return {}
        snapshot = _table(state, "volume_snapshots").get(snapshot_id)
        if snapshot is None:
            raise _not_found("snapshot", snapshot_id)
        if snapshot["status"] != "available":
            raise _conflict(action, f"snapshot {snapshot_id} is {snapshot['status']}")
        if size < snapshot["size_gb"]:
            raise CloudBadRequest(
                f"{action} rejected as invalid",
                f"Volume size '{size}'GB cannot be smaller than the snapshot size {snapshot['size_gb']}GB.",
                status_code=400,
            )
        return dict(snapshot["content"])

    def upload_volume_to_image(self, volume_id: str, image_name: str) -> Image:
        action = f"upload volume {volume_id} to image {image_name}"
        with self._transaction() as state:
            volume = _settled_volume(state, volume_id)
            owner = volume["project_id"]
            found = [i for i in state["images"].values() if i["name"] == image_name and i["owner"] == owner]
            if found:
                return to_image(min(found, key=lambda i: (i["created_at"], i["id"])))
            if volume["attachments"] or volume["status"] != "available":
                raise _conflict(action, f"volume {volume_id} is {volume['status']}, not available")
            data = _image_of_content(volume["content"])
            image_id = str(uuid.uuid4())
            self._write_blob(image_id, data)
            image = image_record(image_id, image_name, data, "raw", owner, "private", iso(now()))
            state["images"][image_id] = image
            return to_image(image)

    def find_volume_by_tag(self, project_id: str, idempotency_tag: str) -> Volume | None:
        with self._transaction() as state:
            require_project(state, project_id)
            found = _oldest(
                [
                    v
                    for v in _table(state, "volumes").values()
                    if v["project_id"] == project_id and v["tag"] == idempotency_tag
                ]
            )
            return None if found is None else _to_volume(_settled_volume(state, found["id"]))

    def get_volume(self, volume_id: str) -> Volume:
        with self._transaction() as state:
            return _to_volume(_settled_volume(state, volume_id))

    def list_volumes(self, project_id: str) -> list[Volume]:
        with self._transaction() as state:
            require_project(state, project_id)
            ids = [v["id"] for v in _table(state, "volumes").values() if v["project_id"] == project_id]
            return sorted((_to_volume(_settled_volume(state, i)) for i in ids), key=lambda v: (v.name, v.id))

    def attach_volume(self, server_id: str, volume_id: str) -> None:
        action = f"attach volume {volume_id} to server {server_id}"
        with self._transaction() as state:
            find_live(state, server_id)
            record = _settled_volume(state, volume_id)
            servers = {a["server_id"] for a in record["attachments"]}
            if server_id in servers:
                return
            if servers:
                raise _conflict(action, f"volume {volume_id} is attached to server {', '.join(sorted(servers))}")
            if record["status"] != "available":
                raise _conflict(action, f"volume {volume_id} is {record['status']}, not available")
            record["attachments"] = [{"server_id": server_id, "device": _device_for(state, server_id)}]
            record["status"] = "in-use"

    def detach_volume(self, server_id: str, volume_id: str) -> None:
        with self._transaction() as state:
            record = _settled_volume(state, volume_id)
            remaining = [a for a in record["attachments"] if a["server_id"] != server_id]
            if len(remaining) == len(record["attachments"]):
                return
            record["attachments"] = remaining
            if not remaining:
                record["status"] = "available"

    def extend_volume(self, volume_id: str, new_size_gb: int) -> None:
        action = f"extend volume {volume_id} to {new_size_gb} GB"
        new_size = check_volume_size(new_size_gb, action)
        with self._transaction() as state:
            record = _settled_volume(state, volume_id)
            if new_size == record["size_gb"]:
                return
            if new_size < record["size_gb"]:
                raise CloudBadRequest(
                    f"{action} rejected as invalid: volumes only grow", f"the volume has {record['size_gb']} GB"
                )
            if record["status"] not in ("available", "in-use"):
                raise _conflict(action, f"volume {volume_id} is {record['status']}")
            record["size_gb"] = new_size

    def delete_volume(self, volume_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        action = f"delete volume {volume_id}"
        with self._transaction() as state:
            try:
                record = _settled_volume(state, volume_id)
            except CloudNotFound:
                return
            if record["attachments"]:
                raise _conflict(action, f"volume {volume_id} is attached to a server")
            if any(s["volume_id"] == volume_id for s in _table(state, "volume_snapshots").values()):
                raise _conflict(action, f"volume {volume_id} still has dependent snapshots")
            if record["status"] not in ("available", "error"):
                raise _conflict(action, f"volume {volume_id} is {record['status']}")
            del _table(state, "volumes")[volume_id]

    # ---- the simulated data -----------------------------------------------------------

    def write_volume_data(self, volume_id: str, offset: int, data: bytes) -> None:
        """Record that ``data`` was written at ``offset`` (what a guest would do)."""
        with self._transaction() as state:
            record = _settled_volume(state, volume_id)
            if offset < 0 or offset + len(data) > record["size_gb"] * 1024**3:
                raise ValueError(f"a write at {offset} of {len(data)} bytes is outside the volume")
            record["content"][str(offset)] = hashlib.sha256(data).hexdigest()

    def volume_content_digest(self, volume_id: str) -> str:
        """A digest of everything written into the volume (equal digests, equal data)."""
        with self._transaction() as state:
            content = _settled_volume(state, volume_id)["content"]
            return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    # ---- snapshots --------------------------------------------------------------------

    def create_volume_snapshot(
        self, volume_id: str, name: str, idempotency_tag: str, *, force: bool = True
    ) -> VolumeSnapshot:
        action = f"snapshot volume {volume_id}"
        check_idempotency_tag(idempotency_tag)
        with self._transaction() as state:
            snapshots = _table(state, "volume_snapshots")
            existing = _oldest(
                [s for s in snapshots.values() if s["volume_id"] == volume_id and s["tag"] == idempotency_tag]
            )
            if existing is not None:
                return _to_snapshot(existing)
            volume = _settled_volume(state, volume_id)
            if volume["attachments"] and not force:
                raise _conflict(action, f"volume {volume_id} is attached and force is off")
            if volume["status"] not in ("available", "in-use"):
                raise _conflict(action, f"volume {volume_id} is {volume['status']}")
            record = {
                "id": str(uuid.uuid4()),
                "name": name,
                "volume_id": volume_id,
                "size_gb": volume["size_gb"],
                "status": "available",
                "tag": idempotency_tag,
                "project_id": volume["project_id"],
                "content": dict(volume["content"]),
                "created_at": iso(now()),
            }
            snapshots[record["id"]] = record
            return _to_snapshot(record)

    def get_volume_snapshot(self, snapshot_id: str) -> VolumeSnapshot:
        with self._transaction() as state:
            record = _table(state, "volume_snapshots").get(snapshot_id)
            if record is None:
                raise _not_found("snapshot", snapshot_id)
            return _to_snapshot(record)

    def list_volume_snapshots(self, project_id: str) -> list[VolumeSnapshot]:
        with self._transaction() as state:
            require_project(state, project_id)
            found = [s for s in _table(state, "volume_snapshots").values() if s["project_id"] == project_id]
            return sorted((_to_snapshot(s) for s in found), key=lambda s: (s.name, s.id))

    def delete_volume_snapshot(self, snapshot_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        with self._transaction() as state:
            _table(state, "volume_snapshots").pop(snapshot_id, None)

    # ---- backups ----------------------------------------------------------------------

    def create_volume_backup(
        self, volume_id: str, name: str, idempotency_tag: str, *, incremental: bool = False
    ) -> VolumeBackup:
        action = f"back up volume {volume_id}"
        check_idempotency_tag(idempotency_tag)
        with self._transaction() as state:
            backups = _table(state, "volume_backups")
            existing = _oldest(
                [b for b in backups.values() if b["volume_id"] == volume_id and b["tag"] == idempotency_tag]
            )
            if existing is not None:
                return _to_backup(existing)
            volume = _settled_volume(state, volume_id)
            if volume["status"] not in ("available", "in-use"):
                raise _conflict(action, f"volume {volume_id} is {volume['status']}")
            earlier = [b for b in backups.values() if b["volume_id"] == volume_id and b["status"] == "available"]
            if incremental and not earlier:
                raise CloudBadRequest(
                    f"{action} rejected as invalid",
                    "No backups available to do an incremental backup.",
                    status_code=400,
                )
            # An incremental backup builds on the volume's latest one, which then cannot go first.
            latest = max(earlier, key=lambda b: (b["created_at"], b["id"])) if earlier else None
            record = {
                "id": str(uuid.uuid4()),
                "name": name,
                "volume_id": volume_id,
                "size_gb": volume["size_gb"],
                "status": "available",
                "is_incremental": incremental,
                "parent_id": latest["id"] if incremental and latest is not None else None,
                "tag": idempotency_tag,
                "project_id": volume["project_id"],
                "content": dict(volume["content"]),
                "created_at": iso(now()),
            }
            backups[record["id"]] = record
            return _to_backup(record)

    def get_volume_backup(self, backup_id: str) -> VolumeBackup:
        with self._transaction() as state:
            record = _table(state, "volume_backups").get(backup_id)
            if record is None:
                raise _not_found("backup", backup_id)
            return _to_backup(record)

    def list_volume_backups(self, project_id: str) -> list[VolumeBackup]:
        with self._transaction() as state:
            require_project(state, project_id)
            found = [b for b in _table(state, "volume_backups").values() if b["project_id"] == project_id]
            return sorted((_to_backup(b) for b in found), key=lambda b: (b.name, b.id))

    def restore_volume_backup(self, backup_id: str, *, volume_id: str | None = None, name: str | None = None) -> Volume:
        action = f"restore volume backup {backup_id}"
        if volume_id is not None and name is not None:
            raise CloudBadRequest(f"{action} rejected as invalid", "restore into a volume or into a new one, not both")
        with self._transaction() as state:
            backup = _table(state, "volume_backups").get(backup_id)
            if backup is None:
                raise _not_found("backup", backup_id)
            if backup["status"] != "available":
                raise _conflict(action, f"backup {backup_id} is {backup['status']}")
            if volume_id is not None:
                target = _settled_volume(state, volume_id)
                if target["status"] != "available":
                    raise _conflict(action, f"volume {volume_id} is {target['status']}")
                if target["size_gb"] < backup["size_gb"]:
                    raise CloudBadRequest(
                        f"{action} rejected as invalid",
                        f"volume {volume_id} has {target['size_gb']} GB, the backup {backup['size_gb']} GB",
                        status_code=400,
                    )
                target["content"] = dict(backup["content"])
                return _to_volume(target)
            volumes = _table(state, "volumes")
            source = volumes.get(backup["volume_id"])
            record = {
                "id": str(uuid.uuid4()),
                "name": name or f"{backup['name'] or backup_id}-restored",
                "size_gb": backup["size_gb"],
                "status": "available",
                "volume_type": source["volume_type"]
                if source
                else next(t for t in _volume_types(state).values() if t["is_default"])["name"],
                "attachments": [],
                "tag": None,
                "project_id": backup["project_id"],
                "snapshot_id": None,
                "content": dict(backup["content"]),
                "created_at": iso(now()),
            }
            volumes[record["id"]] = record
            return _to_volume(record)

    def delete_volume_backup(self, backup_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        action = f"delete volume backup {backup_id}"
        with self._transaction() as state:
            backups = _table(state, "volume_backups")
            if backup_id not in backups:
                return
            if any(b.get("parent_id") == backup_id for b in backups.values()):
                raise _conflict(action, "Incremental backups exist for this backup.")
            del backups[backup_id]
