"""The steps of a move into another cloud: stop the source, snapshot it, download the
snapshot, upload it to the target, boot the target, verify it, record it in the database,
delete the source, clean up.

Every step is re-entrant: before creating anything it looks for what an earlier,
interrupted attempt may have made (a snapshot or an image by its name, the target server by
its idempotency key), so a move killed at any point is resumed by running it again.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from cloudmgr.audit import services as audit
from cloudmgr.cloud import CloudError, CloudProvider, Image, ServerSpec
from cloudmgr.db import utcnow
from cloudmgr.moves.models import Move
from cloudmgr.moves.states import MoveState
from cloudmgr.moves.stepping import SYSTEM, MoveView, StepContext, StepFailed, placement_check, run_step, transition
from cloudmgr.quotas import ledger
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer, OrphanServer


def snapshot_name(key: str) -> str:
    """The source snapshot's name: the move's idempotency key makes it unique on the cloud
    (several cloudmgr databases may share one OpenStack)."""
    return f"cloudmgr-{key}-snapshot"


def image_name(key: str) -> str:
    return f"cloudmgr-{key}-image"


def _images_named(provider: CloudProvider, name: str) -> list[Image]:
    return [i for i in provider.list_images() if i.name == name]


def run_cross_cloud(ctx: StepContext, view: MoveView) -> None:
    run = _CrossCloudRun(ctx, view)
    for name, action in run.steps():
        run_step(ctx, view, name, action)
    assert view.target_cloud is not None
    transition(
        ctx.db,
        view.id,
        MoveState.DONE,
        action="finish",
        reason=f"now {view.resources.get('target_server_id')} on {view.target_cloud.key}",
    )


class _CrossCloudRun:
    """One run of a cross-cloud move: each method is a step, re-entrant, returning what it
    made (stored with the step and merged into ``view.resources`` for the next ones)."""

    def __init__(self, ctx: StepContext, view: MoveView) -> None:
        assert view.target_cloud is not None and view.target_project_id is not None
        self.ctx = ctx
        self.view = view
        self.source = view.cloud.provider(ctx.registry)
        self.target = view.target_cloud.provider(ctx.registry)
        self.target_project = view.target_project_id
        self.server_id = view.server_id or ""
        self.folder = ctx.work_dir / str(view.id)
        self.image_file = self.folder / "snapshot.img"
        self.expected = view.resources.get("flavor") or {}
        self.key = view.idempotency_key or f"move-{view.id}"

    def steps(self) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
        return [
            ("stop_source", self.stop_source),
            ("snapshot", self.snapshot),
            ("download", self.download),
            ("upload", self.upload),
            ("boot", self.boot),
            ("verify", self.verify),
            ("record_target", lambda: record_target(self.ctx, self.view)),
            ("delete_source", self.delete_source),
            ("cleanup", self.cleanup),
        ]

    def stop_source(self) -> dict[str, Any]:
        # Before anything is touched: the system may have been reclassified since the move was created.
        placement_check(self.ctx, self.view, "move.cross_cloud.start")
        server = self.source.get_server(self.server_id)
        if server.status != "SHUTOFF":
            self.source.stop_server(self.server_id)
            self.source.wait_for_server(self.server_id, {"SHUTOFF"}, timeout=self.ctx.timeout)
        return {"source_stopped": True}

    def snapshot(self) -> dict[str, Any]:
        source, timeout = self.source, self.ctx.timeout
        name = snapshot_name(self.key)
        for image in _images_named(source, name):
            try:
                ready = image if image.status == "active" else source.wait_for_image(image.id, timeout=timeout)
                return {"snapshot_image_id": ready.id, "snapshot_bytes": ready.size_bytes}
            except CloudError:
                source.delete_image(image.id)  # a snapshot that will never be usable
        made = source.create_snapshot(self.server_id, name, timeout=timeout)
        return {"snapshot_image_id": made.id, "snapshot_bytes": made.size_bytes}

    def download(self) -> dict[str, Any]:
        image_file = self.image_file
        snap_id = self.view.resources["snapshot_image_id"]
        size = self.view.resources.get("snapshot_bytes")
        if image_file.exists() and (size is None or image_file.stat().st_size == size):
            return {"image_file": str(image_file), "downloaded_bytes": image_file.stat().st_size}
        self.folder.mkdir(parents=True, exist_ok=True)
        written = self.source.download_image(snap_id, image_file)
        if size is not None and written != size:
            image_file.unlink(missing_ok=True)
            raise StepFailed(f"downloaded {written} bytes of snapshot {snap_id}, expected {size}")
        return {"image_file": str(image_file), "downloaded_bytes": written}

    def upload(self) -> dict[str, Any]:
        target = self.target
        name = image_name(self.key)
        for image in _images_named(target, name):
            if image.status == "active" and image.owner_project_id in (self.target_project, None):
                return {"target_image_id": image.id}
            target.delete_image(image.id)  # an upload cut short
        if not self.image_file.exists():
            raise StepFailed(f"the downloaded snapshot {self.image_file} is gone: resume from the download step")
        snap = self.source.get_image(self.view.resources["snapshot_image_id"])
        made = target.upload_image(
            name, self.image_file, disk_format=snap.disk_format or "qcow2", project_id=self.target_project
        )
        return {"target_image_id": made.id}

    def boot(self) -> dict[str, Any]:
        view, target = self.view, self.target
        existing = target.find_server_by_key(self.target_project, self.key)
        if existing is not None and existing.status == "ERROR":
            target.delete_server(existing.id, wait=True, timeout=self.ctx.timeout)
        flavor = next((f for f in target.list_flavors() if f.name == view.flavor_name), None)
        if flavor is None:
            raise StepFailed(
                f"cloud {view.target_cloud.key if view.target_cloud else ''} has no flavor {view.flavor_name}"
            )
        # Again right before the boot, and the target carries the classification of its
        # system as it is now (the source's metadata may predate a reclassification), so the
        # adapter's guard sees it too.
        placement = placement_check(self.ctx, view, "move.cross_cloud.boot")
        metadata = {
            **(view.resources.get("metadata") or {}),
            **placement,
            "cloudmgr_move": str(view.id),
            "cloudmgr_department": view.target_department_key or "",
        }
        if view.managed_server_id is not None:
            metadata["cloudmgr_server"] = str(view.managed_server_id)
        spec = ServerSpec(
            name=view.server_name or f"moved-{view.id}",
            flavor_id=flavor.id,
            image_id=view.resources["target_image_id"],
            network_id=view.resources.get("network_id"),
            idempotency_key=self.key,
            metadata=metadata,
        )
        server = target.create_server(self.target_project, spec)
        server = target.wait_for_server(server.id, {"ACTIVE"}, timeout=self.ctx.timeout)
        return {"target_server_id": server.id, "target_host": server.host}

    def verify(self) -> dict[str, Any]:
        target, expected = self.target, self.expected
        server = target.get_server(self.view.resources["target_server_id"])
        if server.status != "ACTIVE":
            raise StepFailed(f"the new server {server.name} is {server.status}, not ACTIVE")
        flavor = next(
            (f for f in target.list_flavors() if f.id == server.flavor_id or f.name == server.flavor_name), None
        )
        if flavor is None or (flavor.vcpus, flavor.ram_mb, flavor.disk_gb) != (
            expected.get("vcpus"),
            expected.get("ram_mb"),
            expected.get("disk_gb"),
        ):
            raise StepFailed(f"the new server {server.name} does not have the source's size ({expected})")
        if server.project_id not in (None, self.target_project):
            raise StepFailed(
                f"the new server {server.name} is in project {server.project_id}, not {self.target_project}"
            )
        return {"verified": True, "addresses": {k: list(v) for k, v in server.addresses.items()}}

    def delete_source(self) -> dict[str, Any]:
        self.source.delete_server(self.server_id, wait=True, timeout=self.ctx.timeout)
        return {"source_deleted": True}

    def cleanup(self) -> dict[str, Any]:
        source, target, key = self.source, self.target, self.key
        deleted = []
        for provider, name in ((source, snapshot_name(key)), (target, image_name(key))):
            for image in _images_named(provider, name):
                provider.delete_image(image.id)
                deleted.append(image.id)
        for field_name, provider in (("snapshot_image_id", source), ("target_image_id", target)):
            image_id = self.view.resources.get(field_name)
            if image_id and image_id not in deleted:
                provider.delete_image(image_id)  # gone already counts as deleted
        shutil.rmtree(self.folder, ignore_errors=True)
        leftovers = _images_named(source, snapshot_name(key)) + _images_named(target, image_name(key))
        if leftovers:
            raise StepFailed(f"images still present after cleanup: {', '.join(i.id for i in leftovers)}")
        return {"deleted_images": deleted}


def record_target(ctx: StepContext, view: MoveView) -> dict[str, Any]:
    """The database follows the server: the managed server now is the target one, the
    target's reservation becomes usage and the source's usage is given back."""
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
        source_department, source_cloud = managed.department_id, managed.cloud_id
        if move.reservation_id is not None:
            ledger.consume(session, move.reservation_id, reason=f"moved in by move {move.id}")
        ledger.give_back_usage(
            session,
            department_id=source_department,
            cloud_id=source_cloud,
            amounts={Resource.CORES: managed.vcpus, Resource.RAM_MB: managed.ram_mb, Resource.INSTANCES: 1},
        )
        from cloudmgr.catalog.models import CatalogItem

        flavor_item = session.scalar(
            select(CatalogItem).where(
                CatalogItem.cloud_id == view.target_cloud.id,
                CatalogItem.kind == "flavor",
                CatalogItem.cloud_name == view.flavor_name,
            )
        )
        previous = {"cloud_id": managed.cloud_id, "server_id": managed.server_id, "department_id": source_department}
        managed.cloud_id = view.target_cloud.id
        managed.department_id = move.target_department_id or managed.department_id
        managed.zone = move.target_zone or managed.zone
        managed.server_id = target_server_id
        managed.idempotency_key = move.idempotency_key or managed.idempotency_key
        managed.host = view.resources.get("target_host")
        managed.addresses = dict(view.resources.get("addresses") or {})
        if flavor_item is not None:
            managed.flavor_item_id = flavor_item.id
        audit.record(
            session,
            actor=SYSTEM.username,
            action="server.moved",
            target_type="managed_server",
            target_id=managed.id,
            reason=f"move {move.id}",
            detail={"from": previous, "to": {"cloud_id": managed.cloud_id, "server_id": target_server_id}},
        )
        return {"managed": True, "managed_server_id": managed.id}
