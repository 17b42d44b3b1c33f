"""Undoing a failed cross-cloud move before its source is deleted (an operator's revert):
the records go back to the source (``undo_record``), what the move made on the target is
removed (``undo_target``: the public address released, the server deleted, its volumes
detached and deleted, the security groups the move made, the images), and the source is as
it was (``undo_source``: its data volumes attached again, started if it ran, its images and
the move's files gone).

Like the move's own steps, each is recorded and re-entrant: it finds what is left by the
move's tags and names, so an undo killed anywhere is carried on by running it again.
"""

from __future__ import annotations

import shutil
from typing import Any

from cloudmgr.cloud import CloudConflict
from cloudmgr.messages import N_, message
from cloudmgr.moves.cross_env import CrossCloudEnv, image_name, images_named, snapshot_name
from cloudmgr.moves.cross_record import undo_record
from cloudmgr.moves.parts import address_tag, carried_image_name, carried_volumes, volume_image_name, volume_tag
from cloudmgr.moves.run_cross_parts import needed_groups
from cloudmgr.moves.states import MoveState
from cloudmgr.moves.stepping import MoveView, StepContext, run_step, transition


def run_undo(ctx: StepContext, view: MoveView) -> None:
    undo = _Undo(ctx, view)
    run_step(ctx, view, "undo_record", lambda: undo_record(ctx, view))
    run_step(ctx, view, "undo_target", undo.undo_target)
    run_step(ctx, view, "undo_source", undo.undo_source)
    transition(
        ctx.db,
        view.id,
        MoveState.REVERTED,
        action="reverted",
        reason=message(N_("back on %(cloud)s: what was made on the target is removed"), cloud=view.cloud.key),
    )


class _Undo(CrossCloudEnv):
    def undo_target(self) -> dict[str, Any]:
        target, project = self.target, self.target_project
        released = []
        for fip in target.list_floating_ips(project):
            if fip.idempotency_tag == address_tag(self.key):
                target.release_floating_ip(fip.id)
                released.append(fip.id)
        server = target.find_server_by_key(project, self.key)
        if server is not None:
            target.delete_server(server.id, wait=True, timeout=self.timeout)
        deleted_volumes = []
        for volume in carried_volumes(self.resources):
            made = target.find_volume_by_tag(project, volume_tag(self.key, volume["index"]))
            if made is None:
                continue
            for attachment in made.attachments:  # Nova detached it with the server; a leftover
                target.detach_volume(attachment.server_id, made.id)
            target.wait_volume(made.id, {"available", "error"}, timeout=self.data_timeout(volume["size_gb"]))
            target.delete_volume(made.id, wait=True, timeout=self.timeout)
            deleted_volumes.append(made.id)
        return {
            "released_addresses": released,
            "deleted_server": server.id if server is not None else None,
            "deleted_volumes": deleted_volumes,
            "deleted_security_groups": self._delete_groups(),
            "deleted_images": self._delete_images(target=True),
        }

    def _delete_groups(self) -> list[str]:
        """The groups the move made on the target project (those of the server and those their
        rules name, that were not there before its firewall step), unless in use now."""
        before = self.resources.get("target_groups_before")
        if before is None:
            return []  # the firewall step never got to make anything
        renames: dict[str, str] = dict(self.resources.get("group_renames") or {})
        wanted = list(self.resources.get("security_groups") or [])
        source_groups = self.source.list_security_groups(self.source_project)
        moved = {renames.get(g.name, g.name) for g in needed_groups(source_groups, wanted)}
        present = {g.name for g in self.target.list_security_groups(self.target_project)}
        deleted = []
        for name in sorted((present - set(before)) & moved):
            try:
                self.target.delete_security_group(self.target_project, name)
            except CloudConflict:
                continue  # another server uses it now: it is not the move's to remove
            deleted.append(name)
        return deleted

    def _delete_images(self, *, target: bool) -> list[str]:
        provider = self.target if target else self.source
        volumes = carried_volumes(self.resources)
        if target:
            names = [image_name(self.key), *(carried_image_name(self.key, v["index"]) for v in volumes)]
        else:
            names = [snapshot_name(self.key), *(volume_image_name(self.key, v["index"]) for v in volumes)]
        deleted = []
        for name in names:
            for image in images_named(provider, name):
                provider.delete_image(image.id)
                deleted.append(image.id)
        return deleted

    def undo_source(self) -> dict[str, Any]:
        source = self.source
        attached = []
        for volume in carried_volumes(self.resources):
            volume_id = volume["source_id"]
            # An upload to an image may still be under way: the volume is back once it is done.
            found = source.wait_volume(volume_id, {"available", "in-use"}, timeout=self.data_timeout(volume["size_gb"]))
            if not any(a.server_id == self.server_id for a in found.attachments):
                source.attach_volume(self.server_id, volume_id)
            source.wait_volume(volume_id, {"in-use"}, timeout=self.timeout)
            attached.append(volume_id)
        started = False
        if self.resources.get("source_status") == "ACTIVE":
            server = source.get_server(self.server_id)
            if server.status != "ACTIVE":
                source.start_server(self.server_id)
                source.wait_for_server(self.server_id, {"ACTIVE"}, timeout=self.timeout)
            started = True
        deleted = self._delete_images(target=False)
        shutil.rmtree(self.folder, ignore_errors=True)
        return {"volumes_attached_again": attached, "source_started": started, "deleted_images": deleted}
