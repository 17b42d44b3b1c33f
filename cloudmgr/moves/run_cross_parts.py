"""The steps of a cross-cloud move that carry the server's parts (issue 16; what they are:
:mod:`cloudmgr.moves.parts`).

Data volumes leave the source the way the server's disk does, through images: detached from
the stopped source (Cinder copies only a detached volume), copied into an image on the
source (upload to image), that image downloaded into the move's folder and uploaded to the
target, a volume of the same size and type made from it in the target project, attached to
the new server once it runs.  The source volumes stay (detached) until the source is deleted,
so an undo puts them back.  The security groups are made on the target project with the same
rules before the boot, and the new server boots in them.  A server that had a public address
gets a new one from the target cloud's external network; the source's is released with the
source.  Each step finds by name or tag what an earlier attempt made.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cloudmgr.cloud import CloudProvider, Server
from cloudmgr.cloud.types import REMOTE_GROUP_SELF, SecurityGroup, SecurityRule
from cloudmgr.messages import N_, Message, message
from cloudmgr.moves.cross_env import CrossCloudEnv, images_named
from cloudmgr.moves.parts import (
    DEFAULT_GROUP,
    address_tag,
    carried_image_name,
    carried_volumes,
    volume_image_name,
    volume_tag,
)
from cloudmgr.moves.stepping import StepFailed, remember
from cloudmgr.moves.transfer import (
    VOLUME_CHECKSUMS,
    download_verified,
    no_source_image,
    target_problem,
    target_record,
    upload_verified,
    volume_label,
)


def _indexed(result: dict[str, Any] | None, index: int) -> Any:
    return (result or {}).get(str(index))


class PartSteps(CrossCloudEnv):
    """The part-carrying steps of one run (each re-entrant, returning what it made)."""

    @property
    def volumes(self) -> list[dict[str, Any]]:
        return carried_volumes(self.resources)

    # ---- data volumes -----------------------------------------------------------------

    def detach_volumes(self) -> dict[str, Any]:
        """The source is stopped: its data volumes come off it, kept as they are."""
        for volume in self.volumes:
            self.source.detach_volume(self.server_id, volume["source_id"])
        for volume in self.volumes:
            self.source.wait_volume(volume["source_id"], {"available"}, timeout=self.timeout)
        return {"volumes_detached": [v["source_id"] for v in self.volumes]}

    def volume_images(self) -> dict[str, Any]:
        """Each source volume copied into an image of the source cloud (by its name)."""
        made: dict[str, dict[str, Any]] = {}
        for volume in self.volumes:
            index, volume_id = volume["index"], volume["source_id"]
            image = self.source.upload_volume_to_image(volume_id, volume_image_name(self.key, index))
            timeout = self.data_timeout(volume["size_gb"])
            image = self.source.wait_for_image(image.id, timeout=timeout)
            self.source.wait_volume(volume_id, {"available"}, timeout=timeout)
            made[str(index)] = {"id": image.id, "bytes": image.size_bytes}
        return {"volume_images": made}

    def transfer_volumes(self) -> dict[str, Any]:
        """Each volume's image downloaded into the move's folder and uploaded to the target,
        as the server's snapshot is, both checked by checksum (issue 17); the file goes once
        its upload is done."""
        carried: dict[str, str] = {}
        checksums: dict[str, Any] = {}
        known = dict(self.resources.get(VOLUME_CHECKSUMS) or {})
        for volume in self.volumes:
            index = volume["index"]
            name = carried_image_name(self.key, index)
            what = volume_label(index)
            path = self.folder / f"volume{index}.img"
            record = known.get(str(index))
            found = [i for i in images_named(self.target, name) if i.status == "active"]
            if found and record and target_problem(found[0], path, record, what) is None:
                carried[str(index)] = found[0].id
                checksums[str(index)] = record if record.get("target") else target_record(found[0], record, attempts=0)
                continue
            for image in images_named(self.target, name):
                self.target.delete_image(image.id)  # an upload cut short, or a copy not known good
            source_image = _indexed(self.resources.get("volume_images"), index)
            if source_image is None:
                raise no_source_image(index)
            record = download_verified(self.source, source_image["id"], path, what=what)
            # Kept at once: a crash after the upload finds the copy by it.
            remember(self.ctx, self.view, {VOLUME_CHECKSUMS: {**known, **checksums, str(index): record}})
            made, checksums[str(index)] = upload_verified(
                self.target, name, path, record, what=what, disk_format="raw", project_id=self.target_project
            )
            carried[str(index)] = made.id
            path.unlink(missing_ok=True)
        return {"carried_images": carried, VOLUME_CHECKSUMS: checksums}

    def create_volumes(self) -> dict[str, Any]:
        """Each volume made from its image in the target project: same size, same type."""
        made: dict[str, str] = {}
        for volume in self.volumes:
            index = volume["index"]
            tag = volume_tag(self.key, index)
            existing = self.target.find_volume_by_tag(self.target_project, tag)
            if existing is not None and existing.status.startswith("error"):
                self.target.delete_volume(existing.id, wait=True, timeout=self.timeout)  # made again below
            image_id = _indexed(self.resources.get("carried_images"), index)
            created = self.target.create_volume(
                self.target_project, volume["name"], volume["size_gb"], volume["volume_type"], tag, image_id=image_id
            )
            made[str(index)] = created.id
        for volume in self.volumes:
            volume_id = made[str(volume["index"])]
            self.target.wait_volume(volume_id, {"available", "in-use"}, timeout=self.data_timeout(volume["size_gb"]))
        return {"target_volumes": made}

    def attach_volumes(self) -> dict[str, Any]:
        """The new volumes on the new server, in the source's order."""
        attached = []
        for volume in self.volumes:
            volume_id = _indexed(self.resources.get("target_volumes"), volume["index"])
            self.target.attach_volume(self.target_server_id, volume_id)
            self.target.wait_volume(volume_id, {"in-use"}, timeout=self.timeout)
            attached.append(volume_id)
        return {"volumes_attached": attached}

    # ---- the firewall ----------------------------------------------------------------

    def firewall(self) -> dict[str, Any]:
        """The server's security groups made on the target project with the same rules (the
        groups their rules name too), so the new server boots in them."""
        wanted = list(self.resources.get("security_groups") or [])
        renames: dict[str, str] = dict(self.resources.get("group_renames") or {})
        if not [n for n in wanted if n != DEFAULT_GROUP]:
            return {"target_security_groups": [], "created_security_groups": []}
        if self.resources.get("target_groups_before") is None:
            # Stored before anything is made: an undo removes only the groups the move made.
            before = sorted(g.name for g in self.target.list_security_groups(self.target_project))
            remember(self.ctx, self.view, {"target_groups_before": before})
        source_groups = self.source.list_security_groups(self.source_project)
        needed = needed_groups(source_groups, wanted)
        target_groups = {g.name: g for g in self.target.list_security_groups(self.target_project)}
        # First the groups the target lacks, without the rules that name other groups...
        for group in needed:
            name = renames.get(group.name, group.name)
            if name not in target_groups:
                plain = [r for r in group.rules if r.remote_group in (None, REMOTE_GROUP_SELF)]
                target_groups[name] = self.target.ensure_security_group(
                    self.target_project, name, group.description, plain
                )
        # ...then every group with all its rules, the groups they name by their target ids.
        ids = {
            g.id: target_groups[renames.get(g.name, g.name)].id
            for g in source_groups
            if renames.get(g.name, g.name) in target_groups
        }
        for group in needed:
            rules = [_mapped(rule, ids) for rule in group.rules]
            self.target.ensure_security_group(
                self.target_project, renames.get(group.name, group.name), group.description, rules
            )
        before_names = set(self.resources.get("target_groups_before") or [])
        made = sorted({renames.get(g.name, g.name) for g in needed} - before_names)
        return {
            "target_security_groups": [renames.get(n, n) for n in wanted],
            "created_security_groups": made,
        }

    # ---- the public address ------------------------------------------------------------

    def public_address(self) -> dict[str, Any]:
        """A new public address from the target cloud's external network, on the new server."""
        if not self.resources.get("address"):
            return {"target_floating_ip_id": None}
        network = self.resources.get("external_network")
        if not network:
            raise StepFailed(Message(N_("the target cloud has no external network for public addresses")))
        allocated = self.target.allocate_floating_ip(self.target_project, network, address_tag(self.key))
        associated = self.target.associate_floating_ip(allocated.id, self.target_server_id)
        return {"target_floating_ip_id": associated.id, "target_address": associated.address}

    # ---- what the server's own steps ask of the parts ------------------------------------

    def verify(self, server: Server) -> None:
        """StepFailed unless every volume is on the new server and the address points at it."""
        for volume in self.volumes:
            volume_id = _indexed(self.resources.get("target_volumes"), volume["index"])
            found = self.target.get_volume(volume_id)
            if [a.server_id for a in found.attachments] != [server.id]:
                raise StepFailed(
                    message(
                        N_("volume %(volume)s (%(id)s) is not attached to the new server %(server)s"),
                        volume=found.name,
                        id=volume_id,
                        server=server.name,
                    )
                )
        fip_id = self.resources.get("target_floating_ip_id")
        if fip_id:
            fip = next((f for f in self.target.list_floating_ips(self.target_project) if f.id == fip_id), None)
            if fip is None or fip.server_id != server.id:
                raise StepFailed(
                    message(
                        N_("the new public address %(address)s does not point at the new server %(server)s"),
                        address=fip_id,
                        server=server.name,
                    )
                )

    def delete_source_parts(self) -> dict[str, Any]:
        """After the source server: its data volumes deleted, its public address released."""
        for volume in self.volumes:
            self.source.delete_volume(volume["source_id"], wait=True, timeout=self.timeout)
        address = self.resources.get("address")
        if address:
            self.source.release_floating_ip(address["source_id"])
        return {
            "source_volumes_deleted": [v["source_id"] for v in self.volumes],
            "source_address_released": address["source_id"] if address else None,
        }

    def image_names(self) -> list[tuple[CloudProvider, str]]:
        """The volumes' images on both clouds, by name (the cleanup and the undo delete them)."""
        return [
            pair
            for volume in self.volumes
            for pair in (
                (self.source, volume_image_name(self.key, volume["index"])),
                (self.target, carried_image_name(self.key, volume["index"])),
            )
        ]


def needed_groups(source_groups: list[SecurityGroup], wanted: list[str]) -> list[SecurityGroup]:
    """The server's groups and every group their rules name, the default group left out."""
    by_id = {g.id: g for g in source_groups}
    by_name = {g.name: g for g in source_groups}
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise StepFailed(
            message(N_("security groups %(groups)s are gone from the source project"), groups=", ".join(missing))
        )
    needed: dict[str, SecurityGroup] = {}
    todo = [by_name[n] for n in wanted]
    while todo:
        group = todo.pop()
        if group.name == DEFAULT_GROUP or group.name in needed:
            continue
        needed[group.name] = group
        todo.extend(by_id[r.remote_group] for r in group.rules if r.remote_group in by_id)
    return sorted(needed.values(), key=lambda g: g.name)


def _mapped(rule: SecurityRule, ids: dict[str, str]) -> SecurityRule:
    if rule.remote_group in (None, REMOTE_GROUP_SELF):
        return rule
    if rule.remote_group not in ids:
        raise StepFailed(
            message(
                N_("a rule names security group %(group)s, which is not in the source project"),
                group=rule.remote_group,
            )
        )
    return dataclasses.replace(rule, remote_group=ids[rule.remote_group])
