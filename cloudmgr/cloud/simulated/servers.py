"""The simulated Nova's servers: idempotent boots placed on hosts with room, reads, listings
paged like Nova's (newest first, a marker is a cursor), deletion (deleted servers kept a
while for ``changes_since``), stop/start and the simulator's reset-state."""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from cloudmgr.cloud.checks import encode_user_data
from cloudmgr.cloud.errors import CloudBadRequest
from cloudmgr.cloud.simulated.capacity import pick_host
from cloudmgr.cloud.simulated.keypairs import project_keypairs
from cloudmgr.cloud.simulated.quotas import check_quota
from cloudmgr.cloud.simulated.records import (
    NO_VALID_HOST_FAULT,
    find_by_key,
    find_live,
    iso,
    live_servers,
    now,
    parse,
    require_project,
    require_status,
    root_disk,
    to_server,
    touch,
)
from cloudmgr.cloud.simulated.security_groups import boot_security_groups
from cloudmgr.cloud.simulated.store import SimulatedStore
from cloudmgr.cloud.types import IDEMPOTENCY_METADATA_KEY, Server, ServerPage, ServerSpec

#: Deleted servers kept for ``changes_since`` listings (Nova keeps them until archived).
MAX_TOMBSTONES = 1000


class SimulatedServers(SimulatedStore):
    def find_server_by_key(self, project_id: str, key: str) -> Server | None:
        with self._transaction() as state:
            found = find_by_key(state, project_id, key)
            return None if found is None else to_server(found, state["flavors"])

    def create_server(self, project_id: str, spec: ServerSpec, *, first_try: bool = False) -> Server:
        key = spec.idempotency_key
        action = f"create server {spec.name}"
        if not key or len(key) > 255:
            raise CloudBadRequest("an idempotency key of 1 to 255 characters is required", key)
        if not spec.name.strip():
            raise CloudBadRequest(f"{action} rejected as invalid", "A server name is required.")
        user_data = encode_user_data(spec.user_data, action)
        with self._transaction() as state:
            require_project(state, project_id)
            existing = None if first_try else find_by_key(state, project_id, key)
            if existing is not None:
                return to_server(existing, state["flavors"])
            flavor, network = _boot_flavor_and_network(state, spec, action)
            if spec.key_name is not None and spec.key_name not in project_keypairs(state, project_id):
                raise CloudBadRequest(f"{action} rejected as invalid", "Invalid key_name provided.")
            security_groups = boot_security_groups(state, project_id, spec.security_groups, action)
            check_quota(
                state, project_id, action, 1, flavor["vcpus"], flavor["ram_mb"], 1 if network is not None else 0
            )
            host = pick_host(state, flavor)
            created_at = iso(now())
            addresses: dict[str, list[str]] = {}
            if network is not None and host is not None:
                subnet = ipaddress.ip_network(network["cidrs"][0])
                addresses[network["name"]] = [str(subnet.network_address + network["next_address"])]
                network["next_address"] += 1
            record = {
                "id": str(uuid.uuid4()),
                "name": spec.name,
                "status": "ACTIVE" if host else "ERROR",
                "project_id": project_id,
                "flavor_id": spec.flavor_id,
                "image_id": spec.image_id,
                "network_id": spec.network_id,
                "host": host,
                "metadata": {**spec.metadata, IDEMPOTENCY_METADATA_KEY: key},
                "addresses": addresses,
                "fault_message": None if host else NO_VALID_HOST_FAULT,
                "created_at": created_at,
                "updated_at": created_at,
                "deleted": False,
                "pending": None,
                "key_name": spec.key_name,
                "user_data": user_data,
                "security_groups": security_groups,
            }
            state["servers"][record["id"]] = record
            return to_server(record, state["flavors"])

    def get_server(self, server_id: str) -> Server:
        with self._transaction() as state:
            return to_server(find_live(state, server_id), state["flavors"])

    def list_servers(
        self,
        project_id: str | None = None,
        limit: int = 100,
        marker: str | None = None,
        changes_since: datetime | None = None,
    ) -> ServerPage:
        if limit < 1:
            raise CloudBadRequest("the page size must be at least 1", str(limit))
        if changes_since is not None and changes_since.tzinfo is None:
            changes_since = changes_since.replace(tzinfo=UTC)
        with self._transaction() as state:
            servers = state["servers"]

            def listed(record: dict[str, Any]) -> bool:
                if project_id is not None and record["project_id"] != project_id:
                    return False
                if changes_since is None:
                    return not record["deleted"]
                updated = parse(record["updated_at"])
                return updated is not None and updated >= changes_since

            def order(record: dict[str, Any]) -> tuple[str, str]:
                return (record["created_at"], record["id"])

            candidates = sorted((s for s in servers.values() if listed(s)), key=order, reverse=True)
            if marker is not None:
                # Like Nova, the marker is a position in the sort order, so it still works
                # when the marker's server was deleted between two pages.
                marker_record = servers.get(marker)
                if marker_record is None:
                    raise CloudBadRequest("list servers rejected as invalid", f"marker [{marker}] not found")
                cursor = order(marker_record)
                candidates = [s for s in candidates if order(s) < cursor]
            page = candidates[:limit]
            next_marker = page[-1]["id"] if len(candidates) > limit else None
            return ServerPage(servers=tuple(to_server(s, state["flavors"]) for s in page), next_marker=next_marker)

    def get_servers(
        self, project_id: str, server_ids: Collection[str], *, changes_since: datetime | None = None
    ) -> dict[str, Server]:
        wanted = set(server_ids)
        if not wanted:
            return {}
        if changes_since is not None and changes_since.tzinfo is None:
            changes_since = changes_since.replace(tzinfo=UTC)
        with self._transaction() as state:
            found: dict[str, Server] = {}
            for server_id in wanted:
                record = state["servers"].get(server_id)
                if record is None or record["project_id"] != project_id:
                    continue
                if changes_since is None:
                    if record["deleted"]:
                        continue
                else:
                    updated = parse(record["updated_at"])
                    if updated is None or updated < changes_since:
                        continue
                found[server_id] = to_server(record, state["flavors"])
            return found

    def delete_server(self, server_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        with self._transaction() as state:
            record = state["servers"].get(server_id)
            if record is None or record["deleted"]:
                return
            touch(record, status="DELETED", deleted=True, host=None, pending=None)
            tombstones = sorted(
                (s for s in state["servers"].values() if s["deleted"]), key=lambda s: s["updated_at"], reverse=True
            )
            for old in tombstones[MAX_TOMBSTONES:]:
                del state["servers"][old["id"]]

    def stop_server(self, server_id: str) -> None:
        with self._transaction() as state:
            record = find_live(state, server_id)
            if record["status"] == "SHUTOFF":
                return
            require_status(record, "stop", ("ACTIVE",))
            touch(record, status="SHUTOFF")

    def start_server(self, server_id: str) -> None:
        with self._transaction() as state:
            record = find_live(state, server_id)
            if record["status"] == "ACTIVE":
                return
            require_status(record, "start", ("SHUTOFF",))
            touch(record, status="ACTIVE")

    def rebuild_server(self, server_id: str, image_id: str) -> None:
        action = f"rebuild server {server_id}"
        with self._transaction() as state:
            record = find_live(state, server_id)
            require_status(record, "rebuild", ("ACTIVE", "SHUTOFF", "ERROR"))
            image = state["images"].get(image_id)
            if image is None or image["status"] != "active":
                raise CloudBadRequest(f"{action} rejected as invalid", f"Cannot find requested image {image_id}.")
            flavor = state["flavors"][record["flavor_id"]]
            if flavor["disk_gb"] and flavor["disk_gb"] < image["min_disk_gb"]:
                raise CloudBadRequest(
                    f"{action} rejected as invalid", "Flavor's disk is too small for requested image."
                )
            # Done at once, like every simulated action: a stopped server stays stopped, a failed
            # one comes back running; the root disk holds what the image holds.
            touch(
                record,
                image_id=image_id,
                status="SHUTOFF" if record["status"] == "SHUTOFF" else "ACTIVE",
                fault_message=None,
                root_disk=image.get("root_disk") or f"image:{image_id}",
            )

    def write_server_disk(self, server_id: str, data: bytes) -> None:
        """Record that the guest wrote ``data`` to its root disk (the simulator keeps a digest).
        Not part of the CloudProvider interface: tests use it to tell a rebuilt disk apart."""
        with self._transaction() as state:
            record = find_live(state, server_id)
            touched = f"{root_disk(record)}+{hashlib.sha256(data).hexdigest()}"
            record["root_disk"] = hashlib.sha256(touched.encode()).hexdigest()

    def server_disk_digest(self, server_id: str) -> str:
        """What the server's root disk holds, as a digest (equal digests, equal disks)."""
        with self._transaction() as state:
            return root_disk(find_live(state, server_id))

    def reset_state(self, server_id: str, status: str) -> None:
        """The simulator's ``nova reset-state``: force a placed server's status to ACTIVE or
        ERROR without moving it (so it keeps its host and its allocation), the way a
        server ends up in ERROR on a host after a failed operation.  Not part of the
        CloudProvider interface: tests and demos use it to stage a broken server."""
        if status not in ("ACTIVE", "ERROR"):
            raise CloudBadRequest("reset-state rejected as invalid", f"Invalid state {status!r}: ACTIVE or ERROR")
        with self._transaction() as state:
            record = find_live(state, server_id)
            touch(record, status=status)

    def list_servers_on_host(self, host: str) -> list[Server]:
        with self._transaction() as state:
            return [
                to_server(s, state["flavors"])
                for s in sorted(live_servers(state), key=lambda s: (s["created_at"], s["id"]))
                if s["host"] == host
            ]


def _boot_flavor_and_network(
    state: dict[str, Any], spec: ServerSpec, action: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The flavor and network (None without one) a boot asks for, or CloudBadRequest the
    way Nova words it when one of them, or the image, does not do."""
    flavor = state["flavors"].get(spec.flavor_id)
    if flavor is None:
        raise CloudBadRequest(f"{action} rejected as invalid", f"Flavor {spec.flavor_id} could not be found.")
    image = state["images"].get(spec.image_id)
    if image is None or image["status"] != "active":
        raise CloudBadRequest(f"{action} rejected as invalid", f"Image {spec.image_id} could not be found.")
    if flavor["disk_gb"] and flavor["disk_gb"] < image["min_disk_gb"]:
        raise CloudBadRequest(f"{action} rejected as invalid", "Flavor's disk is too small for requested image.")
    network = None
    if spec.network_id is not None:
        network = state["networks"].get(spec.network_id)
        if network is None:
            raise CloudBadRequest(f"{action} rejected as invalid", f"Network {spec.network_id} could not be found.")
    return flavor, network
