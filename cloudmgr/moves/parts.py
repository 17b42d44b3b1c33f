"""The parts of a server a cross-cloud move carries along (issue 16): its data volumes, its
security groups and its public address.

They are read from the source cloud when the move starts (outside any unit of work, like the
server itself), checked against cloudmgr's rows in the move's unit of work, and stored in the
move's ``resources``, so every step and a resumed run work from the same list:

* ``volumes``: each attached data volume (the root disk stays with the server's snapshot),
  with its size and type, the ManagedVolume row that owns it and whether that row is in the
  quota ledger's used;
* ``address``: the floating IP pointing at the server, with its ManagedAddress row;
* ``security_groups``: the server's groups by name, and ``group_renames`` (the department's
  members group when the server changes department);
* ``external_network``: the target cloud's network the new public address comes from;
* ``parts_quota``: what the parts hold of the ledger, moved with the server's cores and memory.

Everything the move makes on the target is named or tagged by the move's idempotency key
(:func:`volume_tag`, :func:`address_tag`, the image names), so a step run again finds what an
earlier attempt made instead of making a second one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.cloud import CloudError, CloudProvider, Server
from cloudmgr.cloud.types import FloatingIp, Volume
from cloudmgr.firewall.services import department_group_name
from cloudmgr.messages import N_, message
from cloudmgr.moves.errors import MoveCloudError, MoveInvalid
from cloudmgr.organisation.models import Cloud, Department, ZoneKind
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.parts import AddressState, ManagedAddress, ManagedVolume, VolumeState

#: The project's own group: every project has one, the move never makes or copies it.
DEFAULT_GROUP = "default"

#: Devices a server boots from: a volume there is its root disk, not a data volume.
ROOT_DEVICES = frozenset({"/dev/vda", "/dev/sda", "/dev/xvda", "/dev/hda"})


def volume_image_name(key: str, index: int) -> str:
    """The image Cinder copies source volume ``index`` into, on the source cloud."""
    return f"cloudmgr-{key}-volume{index}"


def carried_image_name(key: str, index: int) -> str:
    """That image once uploaded to the target cloud (the two may be one Glance)."""
    return f"cloudmgr-{key}-volume{index}-image"


def volume_tag(key: str, index: int) -> str:
    """The target volume's idempotency tag (not a provisioning tag: no orphan while moving)."""
    return f"{key}-d{index}"


def address_tag(key: str) -> str:
    return f"{key}-ip"


@dataclass
class SourceParts:
    """What the source cloud says the server has, read before the move is stored."""

    volumes: list[Volume] = field(default_factory=list)
    address: FloatingIp | None = None
    security_groups: tuple[str, ...] = ()
    target_volume_types: frozenset[str] = frozenset()


def read_source_parts(source: CloudProvider, target: CloudProvider, server: Server) -> SourceParts:
    """The server's data volumes, public address and groups on the source cloud, and the
    target's volume types (cloud reads: no unit of work is open around them)."""
    project = server.project_id or ""
    try:
        volumes = [
            v
            for v in source.list_volumes(project)
            if any(a.server_id == server.id and a.device not in ROOT_DEVICES for a in v.attachments)
        ]
        addresses = [f for f in source.list_floating_ips(project) if f.server_id == server.id]
        carried = {v.id for v in volumes}
        snapshots = [s for s in source.list_volume_snapshots(project) if s.volume_id in carried] if carried else []
        types = frozenset(t.name for t in target.list_volume_types()) if carried else frozenset()
    except CloudError as exc:
        raise MoveCloudError(
            message(N_("the server's volumes and addresses could not be read: %(error)s"), error=str(exc))
        ) from exc
    if snapshots:
        raise MoveInvalid(
            message(
                N_(
                    "volume %(volume)s of server %(server)s has snapshots: they cannot leave the "
                    "cloud with it; delete them first (backups stay where they are)"
                ),
                volume=snapshots[0].volume_id,
                server=server.name,
            )
        )
    if len(addresses) > 1:
        raise MoveInvalid(
            message(
                N_("server %(server)s has %(count)s public addresses: a move carries one"),
                server=server.name,
                count=len(addresses),
            )
        )
    volumes.sort(key=lambda v: (min(a.device or "" for a in v.attachments if a.server_id == server.id), v.id))
    groups = tuple(dict.fromkeys(server.security_groups))  # once each, though Nova names them per port
    return SourceParts(volumes, addresses[0] if addresses else None, groups, types)


def _volume_rows(session: Session, managed: ManagedServer | None, parts: SourceParts) -> dict[str, ManagedVolume]:
    """cloudmgr's rows of the volumes, checked: none busy, none the cloud does not show."""
    if managed is None:
        return {}
    rows = session.scalars(
        select(ManagedVolume).where(ManagedVolume.server_id == managed.id, ManagedVolume.state != VolumeState.DELETED)
    ).all()
    by_volume = {r.volume_id: r for r in rows if r.volume_id}
    for row in rows:
        if row.state != VolumeState.ATTACHED:
            raise MoveInvalid(
                message(
                    N_("data volume %(index)s of server %(server)s is changing: wait until its change is done"),
                    index=row.index,
                    server=managed.name,
                )
            )
        if row.volume_id not in {v.id for v in parts.volumes}:
            raise MoveInvalid(
                message(
                    N_(
                        "data volume %(index)s of server %(server)s is not attached on the cloud: "
                        "cloudmgr's records and the cloud disagree (run the reconcile job)"
                    ),
                    index=row.index,
                    server=managed.name,
                )
            )
    return by_volume


def _address_row(session: Session, managed: ManagedServer | None, parts: SourceParts) -> ManagedAddress | None:
    if managed is None:
        return None
    row = session.scalar(
        select(ManagedAddress).where(
            ManagedAddress.server_id == managed.id, ManagedAddress.state != AddressState.RELEASED
        )
    )
    if row is None:
        return None
    if row.state != AddressState.ASSOCIATED:
        raise MoveInvalid(
            message(
                N_("the public address of server %(server)s is changing: wait until it is done"), server=managed.name
            )
        )
    if parts.address is None or parts.address.id != row.floating_ip_id:
        raise MoveInvalid(
            message(
                N_(
                    "the public address of server %(server)s does not point at it on the cloud: "
                    "cloudmgr's records and the cloud disagree"
                ),
                server=managed.name,
            )
        )
    return row


def parts_resources(
    session: Session,
    parts: SourceParts,
    managed: ManagedServer | None,
    *,
    target_cloud_id: int,
    target_zone: str,
    source_department_id: int | None,
    target_department: Department,
) -> dict[str, Any]:
    """The parts as the move stores them (see the module docstring), or MoveInvalid."""
    volume_rows = _volume_rows(session, managed, parts)
    address_row = _address_row(session, managed, parts)
    target = session.get(Cloud, target_cloud_id)
    assert target is not None
    volumes = []
    for index, volume in enumerate(parts.volumes, start=1):
        if volume.volume_type and volume.volume_type not in parts.target_volume_types:
            raise MoveInvalid(
                message(
                    N_("cloud %(cloud)s has no volume type %(type)s for volume %(volume)s"),
                    cloud=target.key,
                    type=volume.volume_type,
                    volume=volume.name,
                )
            )
        row = volume_rows.get(volume.id)
        volumes.append(
            {
                "index": index,
                "source_id": volume.id,
                "name": volume.name or f"volume{index}",
                "size_gb": volume.size_gb,
                "volume_type": volume.volume_type,
                "row_id": row.id if row else None,
                "counted": bool(row and row.quota_counted),
            }
        )
    address = None
    if parts.address is not None:
        if not target.external_network:
            raise MoveInvalid(
                message(
                    N_("cloud %(cloud)s offers no public addresses: the server's cannot follow it"), cloud=target.key
                )
            )
        if managed is not None and target_zone != ZoneKind.INTERNET.value:
            raise MoveInvalid(
                message(
                    N_("a server with a public address moves into an internet zone, not %(zone)s"), zone=target_zone
                )
            )
        address = {
            "source_id": parts.address.id,
            "address": parts.address.address,
            "row_id": address_row.id if address_row else None,
            "counted": bool(address_row and address_row.quota_counted),
        }
    renames = {}
    source_department = session.get(Department, source_department_id) if source_department_id else None
    if source_department is not None and source_department.id != target_department.id:
        renames[department_group_name(source_department)] = department_group_name(target_department)
    return {
        "volumes": volumes,
        "address": address,
        "security_groups": list(parts.security_groups),
        "group_renames": renames,
        "external_network": target.external_network,
        "parts_quota": {r.value: n for r, n in _counted(volumes, address).items() if n},
    }


def _counted(volumes: list[dict[str, Any]], address: dict[str, Any] | None) -> dict[Resource, int]:
    counted = [v for v in volumes if v["counted"]]
    return {
        Resource.VOLUMES: len(counted),
        Resource.GIGABYTES: sum(int(v["size_gb"]) for v in counted),
        Resource.FLOATING_IPS: 1 if address and address["counted"] else 0,
    }


def server_amounts(resources: dict[str, Any]) -> dict[Resource, int]:
    """What a managed server holds of its department's ledger on its cloud, parts included:
    reserved on the target when the move starts, used there (and given back on the source)
    when the target is recorded."""
    flavor = resources.get("flavor") or {}
    amounts = {
        Resource.CORES: int(flavor.get("vcpus", 0)),
        Resource.RAM_MB: int(flavor.get("ram_mb", 0)),
        Resource.INSTANCES: 1,
    }
    for name, amount in (resources.get("parts_quota") or {}).items():
        amounts[Resource(name)] = int(amount)
    return amounts


def carried_volumes(resources: dict[str, Any]) -> list[dict[str, Any]]:
    return list(resources.get("volumes") or [])
