"""The simulated cloud's state records (plain dicts, JSON-ready) and their conversion into
:mod:`cloudmgr.cloud.types` values: the helpers every resource module shares."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cloudmgr.cloud.digests import glance_digests
from cloudmgr.cloud.errors import CloudConflict, CloudNotFound
from cloudmgr.cloud.types import IDEMPOTENCY_METADATA_KEY, Image, Server

ADMIN_PROJECT_ID = "simulated-admin-project"
NO_VALID_HOST_FAULT = "No valid host was found. There are not enough hosts available."

_NAMESPACE = uuid.UUID("6f1d2c1e-3b7a-4c59-9f36-8e0f5b0c2a11")


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def stable_id(kind: str, name: str) -> str:
    # Seeded objects get ids derived from their names so two processes seeding the same
    # file independently would still agree.
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{name}"))


def fake_image_data(label: str) -> bytes:
    return (f"cloudmgr simulated disk image: {label}\n".encode()) * 64


def require_project(state: dict[str, Any], project_id: str) -> dict[str, Any]:
    project = state["projects"].get(project_id)
    if project is None:
        raise CloudNotFound(f"project {project_id} not found")
    return project  # type: ignore[no-any-return]


# ---- images ---------------------------------------------------------------------------


def image_record(
    image_id: str,
    name: str,
    data: bytes,
    disk_format: str,
    owner: str,
    visibility: str,
    created_at: str,
    min_disk: int = 0,
) -> dict[str, Any]:
    return {
        "id": image_id,
        "name": name,
        "status": "active",
        "size_bytes": len(data),
        # What Glance computes from the data it stores.
        **glance_digests(data),
        "disk_format": disk_format,
        "min_disk_gb": min_disk,
        "min_ram_mb": 0,
        "visibility": visibility,
        "owner": owner,
        "created_at": created_at,
    }


def to_image(record: dict[str, Any]) -> Image:
    return Image(
        id=record["id"],
        name=record["name"],
        status=record["status"],
        size_bytes=record["size_bytes"],
        disk_format=record["disk_format"],
        min_disk_gb=record["min_disk_gb"],
        min_ram_mb=record["min_ram_mb"],
        visibility=record["visibility"],
        owner_project_id=record["owner"],
        tag=record.get("tag"),
        hash_algo=record.get("os_hash_algo"),
        hash_value=record.get("os_hash_value"),
        checksum=record.get("checksum"),
    )


# ---- servers --------------------------------------------------------------------------


def to_server(record: dict[str, Any], flavors: dict[str, Any]) -> Server:
    flavor = flavors.get(record["flavor_id"])
    return Server(
        id=record["id"],
        name=record["name"],
        status=record["status"],
        project_id=record["project_id"],
        flavor_id=record["flavor_id"],
        flavor_name=flavor["name"] if flavor else None,
        image_id=record["image_id"],
        host=record["host"],
        metadata=record["metadata"],
        addresses={k: tuple(v) for k, v in record["addresses"].items()},
        fault_message=record["fault_message"],
        created_at=parse(record["created_at"]),
        updated_at=parse(record["updated_at"]),
        task_state=None,
        key_name=record.get("key_name"),
        security_groups=tuple(sorted(record.get("security_groups") or ())),
    )


def live_servers(state: dict[str, Any], project_id: str | None = None) -> list[dict[str, Any]]:
    return [
        s
        for s in state["servers"].values()
        if not s["deleted"] and (project_id is None or s["project_id"] == project_id)
    ]


def find_live(state: dict[str, Any], server_id: str) -> dict[str, Any]:
    record = state["servers"].get(server_id)
    if record is None or record["deleted"]:
        raise CloudNotFound(
            f"server {server_id} not found", f"Instance {server_id} could not be found.", status_code=404
        )
    return record  # type: ignore[no-any-return]


def find_by_key(state: dict[str, Any], project_id: str, key: str) -> dict[str, Any] | None:
    matches = [s for s in live_servers(state, project_id) if s["metadata"].get(IDEMPOTENCY_METADATA_KEY) == key]
    return min(matches, key=lambda s: (s["created_at"], s["id"])) if matches else None


def touch(record: dict[str, Any], **changes: Any) -> None:
    record.update(changes)
    record["updated_at"] = iso(now())


def root_disk(record: dict[str, Any]) -> str:
    """What the server's root disk holds, as a digest: the image it was booted or rebuilt from,
    then every write recorded on it (``SimulatedServers.write_server_disk``)."""
    return str(record.get("root_disk") or f"image:{record['image_id']}")


def require_status(record: dict[str, Any], action: str, allowed: Sequence[str]) -> None:
    if record["status"] not in allowed:
        raise CloudConflict(
            f"{action} refused: conflicts with the resource's current state",
            f"Cannot '{action}' instance {record['id']} while it is in status {record['status']}",
            status_code=409,
        )
