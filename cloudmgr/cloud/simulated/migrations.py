"""Moving simulated servers between hosts: resize (to another host, like Nova's default),
live and cold migration, and confirming or reverting what waits in VERIFY_RESIZE.

A move in VERIFY_RESIZE keeps its source host, old flavor and status in ``pending``; the
migration holds the old flavor on the source host in Placement until confirmed."""

from __future__ import annotations

import uuid
from typing import Any

from cloudmgr.cloud.errors import CloudBadRequest, CloudNoValidHost
from cloudmgr.cloud.simulated.capacity import pick_host
from cloudmgr.cloud.simulated.quotas import check_quota
from cloudmgr.cloud.simulated.records import NO_VALID_HOST_FAULT, find_live, require_status, touch
from cloudmgr.cloud.simulated.store import SimulatedStore


def _require_target_host(state: dict[str, Any], record: dict[str, Any], host: str | None, action: str) -> None:
    if host is None:
        return
    if host not in state["hosts"]:
        raise CloudBadRequest(f"{action} rejected as invalid", f"Compute host {host} could not be found.")
    if host == record["host"]:
        raise CloudBadRequest(f"{action} rejected as invalid", "The target host can't be the same one.")


def _move(state: dict[str, Any], record: dict[str, Any], flavor: dict[str, Any], host: str | None, action: str) -> str:
    """The destination host for ``record`` with ``flavor``, or CloudNoValidHost."""
    destination = pick_host(state, flavor, exclude=record["host"], only=host)
    if destination is None:
        raise CloudNoValidHost(f"{action} failed: no compute host has room", NO_VALID_HOST_FAULT)
    return destination


class SimulatedMigrations(SimulatedStore):
    def resize_server(self, server_id: str, flavor_id: str) -> None:
        with self._transaction() as state:
            record = find_live(state, server_id)
            require_status(record, "resize", ("ACTIVE", "SHUTOFF"))
            new = state["flavors"].get(flavor_id)
            if new is None:
                raise CloudBadRequest("resize rejected as invalid", f"Flavor {flavor_id} could not be found.")
            old = state["flavors"][record["flavor_id"]]
            if flavor_id == record["flavor_id"]:
                raise CloudBadRequest("resize rejected as invalid", "When resizing, instances must change flavor!")
            if new["disk_gb"] < old["disk_gb"]:
                raise CloudBadRequest("resize rejected as invalid", "Resize to zero disk flavor is not allowed.")
            check_quota(
                state,
                record["project_id"],
                "resize",
                0,
                new["vcpus"] - old["vcpus"],
                new["ram_mb"] - old["ram_mb"],
                0,
            )
            # Nova does not resize onto the same host by default (allow_resize_to_same_host).
            destination = _move(state, record, new, None, "resize")
            touch(
                record,
                status="VERIFY_RESIZE",
                host=destination,
                flavor_id=flavor_id,
                pending={
                    "source_host": record["host"],
                    "old_flavor_id": old["id"],
                    "status": record["status"],
                    "migration_id": str(uuid.uuid4()),
                },
            )

    def confirm_resize(self, server_id: str) -> None:
        with self._transaction() as state:
            record = find_live(state, server_id)
            if record["status"] in ("ACTIVE", "SHUTOFF") and not record["pending"]:
                return  # already confirmed
            require_status(record, "confirmResize", ("VERIFY_RESIZE",))
            touch(record, status=record["pending"]["status"], pending=None)

    def live_migrate(self, server_id: str, host: str | None = None) -> None:
        with self._transaction() as state:
            record = find_live(state, server_id)
            require_status(record, "os-migrateLive", ("ACTIVE",))
            _require_target_host(state, record, host, "live-migrate")
            destination = _move(state, record, state["flavors"][record["flavor_id"]], host, "live-migrate")
            touch(record, host=destination)

    def cold_migrate(self, server_id: str, host: str | None = None) -> None:
        with self._transaction() as state:
            record = find_live(state, server_id)
            require_status(record, "migrate", ("ACTIVE", "SHUTOFF"))
            _require_target_host(state, record, host, "migrate")
            flavor = state["flavors"][record["flavor_id"]]
            destination = _move(state, record, flavor, host, "migrate")
            touch(
                record,
                status="VERIFY_RESIZE",
                host=destination,
                pending={
                    "source_host": record["host"],
                    "old_flavor_id": flavor["id"],
                    "status": record["status"],
                    "migration_id": str(uuid.uuid4()),
                },
            )

    def confirm_migration(self, server_id: str) -> None:
        self.confirm_resize(server_id)

    def revert_migration(self, server_id: str) -> None:
        with self._transaction() as state:
            record = find_live(state, server_id)
            if record["status"] in ("ACTIVE", "SHUTOFF") and not record["pending"]:
                return  # already reverted (or confirmed)
            require_status(record, "revertResize", ("VERIFY_RESIZE",))
            pending = record["pending"]
            touch(
                record,
                status=pending["status"],
                host=pending["source_host"],
                flavor_id=pending["old_flavor_id"],
                pending=None,
            )
