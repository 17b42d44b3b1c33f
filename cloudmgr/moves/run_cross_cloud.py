"""The steps of a move into another cloud: stop the source, snapshot it, download the
snapshot, upload it to the target, carry its data volumes and security groups over
(:mod:`cloudmgr.moves.run_cross_parts`), boot the target, attach the volumes, give it a
public address, verify it, record it in the database (:mod:`cloudmgr.moves.cross_record`),
delete the source with its volumes and address, clean up.

Every step is re-entrant: before creating anything it looks for what an earlier,
interrupted attempt may have made (a snapshot or an image by its name, a volume or an
address by its tag, the target server by its idempotency key), so a move killed at any point
is resumed by running it again.  A failed move whose source is not being deleted yet can be
undone instead (:mod:`cloudmgr.moves.run_undo`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

from cloudmgr.cloud import CloudError, ServerSpec
from cloudmgr.messages import N_, Message, message
from cloudmgr.moves.cross_env import CrossCloudEnv, image_name, images_named, snapshot_name
from cloudmgr.moves.cross_record import record_target
from cloudmgr.moves.run_cross_parts import PartSteps
from cloudmgr.moves.run_undo import run_undo
from cloudmgr.moves.states import MoveState
from cloudmgr.moves.stepping import MoveView, StepContext, StepFailed, placement_check, run_step, transition
from cloudmgr.moves.transfer import (
    SNAPSHOT,
    SNAPSHOT_CHECKSUM,
    download_verified,
    file_gone,
    record_of_file,
    target_problem,
    target_record,
    upload_verified,
)

__all__ = ["image_name", "run_cross_cloud", "snapshot_name"]

#: Why a server of a system move waits (its move stays open, awaiting the system's switch-over).
ON_TARGET_WAITING = Message(N_("verified on the target; waits for the other servers of its system"))


def run_cross_cloud(ctx: StepContext, view: MoveView) -> None:
    if view.state == MoveState.REVERTING:
        run_undo(ctx, view)
        return
    run = _CrossCloudRun(ctx, view)
    for name, action in run.steps():
        if name == "record_target" and view.resources.get("system_move") and not view.resources.get("release_source"):
            # One server of a whole system's move (cloudmgr.moves.run_system): verified on the
            # target, it waits for the others before anything is recorded or deleted.
            transition(ctx.db, view.id, MoveState.AWAITING_CONFIRM, action="hold", reason=ON_TARGET_WAITING)
            return
        run_step(ctx, view, name, action)
    assert view.target_cloud is not None
    transition(
        ctx.db,
        view.id,
        MoveState.DONE,
        action="finish",
        reason=f"now {view.resources.get('target_server_id')} on {view.target_cloud.key}",
    )


class _CrossCloudRun(CrossCloudEnv):
    """One run of a cross-cloud move: each method is a step, re-entrant, returning what it
    made (stored with the step and merged into ``view.resources`` for the next ones)."""

    def __init__(self, ctx: StepContext, view: MoveView) -> None:
        super().__init__(ctx, view)
        self.image_file = self.folder / "snapshot.img"
        self.expected = view.resources.get("flavor") or {}
        self.parts = PartSteps(ctx, view)

    def steps(self) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
        parts = self.parts
        return [
            ("stop_source", self.stop_source),
            ("snapshot", self.snapshot),
            ("download", self.download),
            ("upload", self.upload),
            ("detach_volumes", parts.detach_volumes),
            ("volume_images", parts.volume_images),
            ("transfer_volumes", parts.transfer_volumes),
            ("create_volumes", parts.create_volumes),
            ("firewall", parts.firewall),
            ("boot", self.boot),
            ("attach_volumes", parts.attach_volumes),
            ("public_address", parts.public_address),
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
            self.source.wait_for_server(self.server_id, {"SHUTOFF"}, timeout=self.timeout)
        return {"source_stopped": True}

    def snapshot(self) -> dict[str, Any]:
        source, timeout = self.source, self.timeout
        name = snapshot_name(self.key)
        for image in images_named(source, name):
            try:
                ready = image if image.status == "active" else source.wait_for_image(image.id, timeout=timeout)
                return {"snapshot_image_id": ready.id, "snapshot_bytes": ready.size_bytes}
            except CloudError:
                source.delete_image(image.id)  # a snapshot that will never be usable
        made = source.create_snapshot(self.server_id, name, timeout=timeout)
        return {"snapshot_image_id": made.id, "snapshot_bytes": made.size_bytes}

    def download(self) -> dict[str, Any]:
        """The snapshot in the move's folder, its digests matching the source Glance's (issue 17)."""
        snap_id = self.resources["snapshot_image_id"]
        checksum = download_verified(self.source, snap_id, self.image_file, what=SNAPSHOT)
        return {"image_file": str(self.image_file), "downloaded_bytes": checksum["bytes"], SNAPSHOT_CHECKSUM: checksum}

    def upload(self) -> dict[str, Any]:
        """The downloaded snapshot streamed to the target, the target Glance's hash matching the file's."""
        target = self.target
        name = image_name(self.key)
        record = self.resources.get(SNAPSHOT_CHECKSUM)
        if not record and self.image_file.exists():
            record = record_of_file(self.image_file)
        for image in images_named(target, name):
            if (
                record
                and image.status == "active"
                and image.owner_project_id in (self.target_project, None)
                and target_problem(image, self.image_file, record, SNAPSHOT) is None
            ):
                return {"target_image_id": image.id, SNAPSHOT_CHECKSUM: target_record(image, record, attempts=0)}
            target.delete_image(image.id)  # an upload cut short, or a copy that does not match
        if not self.image_file.exists() or not record:
            raise file_gone(self.image_file)
        snap = self.source.get_image(self.resources["snapshot_image_id"])
        made, checked = upload_verified(
            target,
            name,
            self.image_file,
            record,
            what=SNAPSHOT,
            disk_format=snap.disk_format or "qcow2",
            project_id=self.target_project,
        )
        return {"target_image_id": made.id, SNAPSHOT_CHECKSUM: checked}

    def boot(self) -> dict[str, Any]:
        view, target = self.view, self.target
        existing = target.find_server_by_key(self.target_project, self.key)
        if existing is not None and existing.status == "ERROR":
            target.delete_server(existing.id, wait=True, timeout=self.timeout)
        flavor = next((f for f in target.list_flavors() if f.name == view.flavor_name), None)
        if flavor is None:
            raise StepFailed(
                message(
                    N_("cloud %(cloud)s has no flavor %(flavor)s"),
                    cloud=view.target_cloud.key if view.target_cloud else "",
                    flavor=view.flavor_name,
                )
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
            # The groups the firewall step made on the target (none: the project's default).
            security_groups=tuple(view.resources.get("target_security_groups") or ()),
        )
        server = target.create_server(self.target_project, spec)
        server = target.wait_for_server(server.id, {"ACTIVE"}, timeout=self.timeout)
        return {"target_server_id": server.id, "target_host": server.host}

    def verify(self) -> dict[str, Any]:
        target, expected = self.target, self.expected
        server = target.get_server(self.target_server_id)
        if server.status != "ACTIVE":
            raise StepFailed(
                message(
                    N_("the new server %(server)s is %(status)s, not ACTIVE"), server=server.name, status=server.status
                )
            )
        flavor = next(
            (f for f in target.list_flavors() if f.id == server.flavor_id or f.name == server.flavor_name), None
        )
        if flavor is None or (flavor.vcpus, flavor.ram_mb, flavor.disk_gb) != (
            expected.get("vcpus"),
            expected.get("ram_mb"),
            expected.get("disk_gb"),
        ):
            raise StepFailed(
                message(
                    N_("the new server %(server)s does not have the source's size (%(size)s)"),
                    server=server.name,
                    size=expected,
                )
            )
        if server.project_id not in (None, self.target_project):
            raise StepFailed(
                message(
                    N_("the new server %(server)s is in project %(project)s, not %(expected)s"),
                    server=server.name,
                    project=server.project_id,
                    expected=self.target_project,
                )
            )
        self.parts.verify(server)
        return {"verified": True, "addresses": {k: list(v) for k, v in server.addresses.items()}}

    def delete_source(self) -> dict[str, Any]:
        self.source.delete_server(self.server_id, wait=True, timeout=self.timeout)
        return {"source_deleted": True, **self.parts.delete_source_parts()}

    def cleanup(self) -> dict[str, Any]:
        source, target, key = self.source, self.target, self.key
        named = [(source, snapshot_name(key)), (target, image_name(key)), *self.parts.image_names()]
        deleted = []
        for provider, name in named:
            for image in images_named(provider, name):
                provider.delete_image(image.id)
                deleted.append(image.id)
        for field_name, provider in (("snapshot_image_id", source), ("target_image_id", target)):
            image_id = self.resources.get(field_name)
            if image_id and image_id not in deleted:
                provider.delete_image(image_id)  # gone already counts as deleted
        shutil.rmtree(self.folder, ignore_errors=True)
        leftovers = [i for provider, name in named for i in images_named(provider, name)]
        if leftovers:
            raise StepFailed(
                message(N_("images still present after cleanup: %(images)s"), images=", ".join(i.id for i in leftovers))
            )
        return {"deleted_images": deleted}
