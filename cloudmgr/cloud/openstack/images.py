"""Glance's images: server snapshots (waited for until usable), uploads and downloads."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

from openstack import exceptions as sdk_exceptions
from openstack.compute.v2 import server as sdk_server

from cloudmgr.cloud.checks import check_idempotency_tag
from cloudmgr.cloud.digests import CHUNK_BYTES, StreamDigest
from cloudmgr.cloud.errors import CloudError, CloudNotFound, CloudTimeout
from cloudmgr.cloud.openstack.connection import OpenStackConnection
from cloudmgr.cloud.openstack.convert import image_tag, to_image
from cloudmgr.cloud.provider import FAILED_IMAGE_STATUSES
from cloudmgr.cloud.types import IMAGE_TAG_PROPERTY, Image, ImageDownload


class OpenStackImages(OpenStackConnection):
    def list_images(self) -> list[Image]:
        images = self._call("list images", lambda: list(self._admin.image.images()))
        return [to_image(i) for i in images]

    def create_snapshot(
        self, server_id: str, image_name: str, *, timeout: float = 600.0, idempotency_tag: str | None = None
    ) -> Image:
        if idempotency_tag is not None:
            check_idempotency_tag(idempotency_tag)
        server = self.get_server(server_id)
        if idempotency_tag is not None and server.project_id:
            # Issue 16: a retried snapshot finds the image an earlier call made.
            existing = self.find_image_by_tag(server.project_id, idempotency_tag)
            if existing is not None and existing.status not in FAILED_IMAGE_STATUSES:
                return (
                    existing if existing.status == "active" else self._wait_for_image(existing.id, server_id, timeout)
                )
            if existing is not None:
                self.delete_image(existing.id)
        # Snapshot inside the server's project so the image belongs to the department.
        conn = self._project_conn(server.project_id) if server.project_id else self._admin
        # Nova's createImage metadata become the image's properties: the tag finds it again.
        metadata = {IMAGE_TAG_PROPERTY: idempotency_tag} if idempotency_tag is not None else None
        image_id = self._call(
            f"snapshot server {server.name}",
            lambda: sdk_server.Server.existing(id=server_id).create_image(conn.compute, image_name, metadata),
            idempotent=False,
        )
        return self._wait_for_image(image_id, server_id, timeout)

    def find_image_by_tag(self, project_id: str, idempotency_tag: str) -> Image | None:
        def fetch() -> list[Any]:
            # Glance filters by owner; the tag is one of the image's own properties.
            return [i for i in self._admin.image.images(owner=project_id) if image_tag(i) == idempotency_tag]

        found = self._call(f"find image by tag {idempotency_tag}", fetch)
        if not found:
            return None
        return to_image(min(found, key=lambda i: (str(i.created_at or ""), str(i.id))))

    def _wait_for_image(self, image_id: str, server_id: str, timeout: float) -> Image:
        """Poll the snapshot image until it is active.

        Nova keeps a task on the server until the hypervisor has uploaded the image, so a
        server with no task left and an image still without data means the upload will
        never come (it failed, or the hypervisor driver uploads nothing): say so at once
        rather than wait for the timeout.
        """
        deadline = time.monotonic() + timeout
        polls_since_nova_finished = 0
        while True:
            try:
                image = to_image(self._call(f"get image {image_id}", lambda: self._admin.image.get_image(image_id)))
            except CloudNotFound as exc:
                raise CloudError(f"snapshot of server {server_id} failed: its image was removed", exc.detail) from exc
            if image.status == "active":
                return image
            if image.status in FAILED_IMAGE_STATUSES:
                raise CloudError(f"snapshot of server {server_id} failed: image {image_id} is {image.status}")
            server = self.get_server(server_id)
            if server.task_state is None:
                polls_since_nova_finished += 1
                # A few polls of grace: Glance may lag behind Nova by a moment.
                if polls_since_nova_finished >= 3:
                    # The image will never become usable; Nova removes it on the failures
                    # it notices, so do the same here rather than leave an empty image.
                    self.delete_image(image_id)
                    raise CloudError(
                        f"snapshot of server {server.name} failed: Nova finished but image {image_id} "
                        "received no data (the empty image was deleted)",
                        f"image status {image.status}; server fault: {server.fault_message or '-'}",
                    )
            if time.monotonic() >= deadline:
                raise CloudTimeout(
                    f"snapshot image {image_id} of server {server_id} not active within {timeout:.0f}s",
                    f"image status {image.status}, server task {server.task_state or '-'}",
                )
            time.sleep(self.poll_interval)

    def upload_image(
        self,
        name: str,
        data: bytes | Path,
        disk_format: str = "qcow2",
        container_format: str = "bare",
        *,
        project_id: str | None = None,
    ) -> Image:
        conn = self._project_conn(project_id) if project_id else self._admin

        def upload() -> Any:
            # A file is opened here and closed here: given a filename, openstacksdk opens it and
            # leaves it to the garbage collector.
            # openstacksdk reads a file object though its annotation says bytes.
            stream: Any = open(data, "rb") if isinstance(data, Path) else io.BytesIO(bytes(data))  # noqa: SIM115
            with stream as source:
                # A file object is sent as the request body a block at a time (requests and
                # http.client read it; openstacksdk hashes nothing first with
                # validate_checksum False, its default); Glance computes os_hash_value as
                # it stores the data, which the caller compares with its own digest.
                size = os.fstat(source.fileno()).st_size if isinstance(data, Path) else len(data)
                return conn.image.create_image(
                    name,
                    size=size,
                    disk_format=disk_format,
                    container_format=container_format,
                    allow_duplicates=True,
                    disable_vendor_agent=False,
                    wait=True,
                    data=source,
                )

        created = self._call(f"upload image {name}", upload, idempotent=False)
        return to_image(self._call(f"get image {name}", lambda: self._admin.image.get_image(created.id)))

    def get_image(self, image_id: str) -> Image:
        return to_image(self._call(f"get image {image_id}", lambda: self._admin.image.get_image(image_id)))

    def download_image(self, image_id: str, dest_path: Path) -> ImageDownload:
        dest_path = Path(dest_path)
        partial = dest_path.with_name(dest_path.name + ".part")
        # The algorithm Glance hashed the image with, so the same pass digests it that way too.
        glance_algo = self.get_image(image_id).hash_algo

        def download() -> ImageDownload:
            # Streamed a chunk at a time (openstacksdk's output= would verify Glance's hash
            # itself but give us no digest back; without output= it returns the open
            # response and checks nothing), into a side file first so a broken download
            # never looks like a complete one.
            digest = StreamDigest(glance_algo)
            response = self._admin.image.download_image(image_id, stream=True)
            try:
                sdk_exceptions.raise_from_response(response)  # an error page is not image data
                with open(partial, "wb") as out:
                    for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                        out.write(chunk)
                        digest.update(chunk)
            finally:
                response.close()
            return digest.result()

        try:
            result = self._call(f"download image {image_id}", download)
            os.replace(partial, dest_path)
        finally:
            partial.unlink(missing_ok=True)
        return result

    def delete_image(self, image_id: str) -> None:
        self._call(f"delete image {image_id}", lambda: self._admin.image.delete_image(image_id, ignore_missing=True))
