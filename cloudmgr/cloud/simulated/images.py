"""The simulated Glance: images with (fake) data, server snapshots, uploads, downloads."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from cloudmgr.cloud.checks import check_idempotency_tag
from cloudmgr.cloud.digests import file_digest
from cloudmgr.cloud.errors import CloudNotFound
from cloudmgr.cloud.simulated.records import (
    ADMIN_PROJECT_ID,
    fake_image_data,
    find_live,
    image_record,
    iso,
    now,
    require_project,
    require_status,
    root_disk,
    to_image,
)
from cloudmgr.cloud.simulated.store import SimulatedStore, atomic_write
from cloudmgr.cloud.types import Image, ImageDownload


class SimulatedImages(SimulatedStore):
    def list_images(self) -> list[Image]:
        with self._transaction() as state:
            return [to_image(i) for i in state["images"].values()]

    def create_snapshot(
        self, server_id: str, image_name: str, *, timeout: float = 600.0, idempotency_tag: str | None = None
    ) -> Image:
        if idempotency_tag is not None:
            check_idempotency_tag(idempotency_tag)
        with self._transaction() as state:
            record = find_live(state, server_id)
            if idempotency_tag is not None:
                existing = _tagged(state, record["project_id"], idempotency_tag)
                if existing is not None:
                    return to_image(existing)
            require_status(record, "createImage", ("ACTIVE", "SHUTOFF"))
            flavor = state["flavors"][record["flavor_id"]]
            image_id = str(uuid.uuid4())
            data = fake_image_data(f"snapshot of {record['name']} ({record['id']})")
            self._write_blob(image_id, data)
            image = image_record(
                image_id,
                image_name,
                data,
                "qcow2",
                record["project_id"],
                "private",
                iso(now()),
                min_disk=flavor["disk_gb"],
            )
            # What a rebuild from it brings back (the simulator's stand-in for the disk's data).
            image["root_disk"] = root_disk(record)
            if idempotency_tag is not None:
                image["tag"] = idempotency_tag
            state["images"][image_id] = image
            return to_image(image)

    def find_image_by_tag(self, project_id: str, idempotency_tag: str) -> Image | None:
        with self._transaction() as state:
            found = _tagged(state, project_id, idempotency_tag)
            return None if found is None else to_image(found)

    def upload_image(
        self,
        name: str,
        data: bytes | Path,
        disk_format: str = "qcow2",
        container_format: str = "bare",
        *,
        project_id: str | None = None,
    ) -> Image:
        content = Path(data).read_bytes() if isinstance(data, Path) else bytes(data)
        with self._transaction() as state:
            if project_id is not None:
                require_project(state, project_id)
            image_id = str(uuid.uuid4())
            self._write_blob(image_id, content)
            # Glance's default visibility for a new image is "shared".
            image = image_record(
                image_id, name, content, disk_format, project_id or ADMIN_PROJECT_ID, "shared", iso(now())
            )
            state["images"][image_id] = image
            return to_image(image)

    def get_image(self, image_id: str) -> Image:
        with self._transaction() as state:
            record = state["images"].get(image_id)
            if record is None:
                raise CloudNotFound(f"get image {image_id} failed: not found", status_code=404)
            return to_image(record)

    def download_image(self, image_id: str, dest_path: Path) -> ImageDownload:
        with self._transaction() as state:
            record = state["images"].get(image_id)
            if record is None:
                raise CloudNotFound(f"download image {image_id} failed: not found", status_code=404)
            data = self._read_blob(image_id)
        atomic_write(Path(dest_path), data)
        # Digested as the real download is, a chunk at a time, from what was written.
        return file_digest(Path(dest_path), record.get("os_hash_algo"))

    def delete_image(self, image_id: str) -> None:
        with self._transaction() as state:
            if state["images"].pop(image_id, None) is not None:
                self._delete_blob(image_id)


def _tagged(state: dict[str, Any], project_id: str, tag: str) -> dict[str, Any] | None:
    """The project's (oldest) image made with idempotency tag ``tag``."""
    found = [i for i in state["images"].values() if i["owner"] == project_id and i.get("tag") == tag]
    return min(found, key=lambda i: (i["created_at"], i["id"])) if found else None
