"""Value types a CloudProvider returns and accepts.

They are frozen so a value read from a cloud can be passed around (and cached) without
anyone changing it behind the reader's back.  Mapping fields are copied into a fresh dict
on construction for the same reason; they stay plain dicts so ``dataclasses.asdict`` and
JSON serialisation keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

#: A quota limit with this value means "no limit".
UNLIMITED = -1

#: Metadata key under which a server's idempotency key is stored.
IDEMPOTENCY_METADATA_KEY = "cloudmgr_key"

#: Image property under which a server snapshot's idempotency tag is stored (issue 16).
IMAGE_TAG_PROPERTY = "cloudmgr_tag"


def _frozen_copy(obj: object, name: str) -> None:
    # Frozen dataclasses can only be adjusted in __post_init__ via object.__setattr__.
    object.__setattr__(obj, name, dict(getattr(obj, name)))


@dataclass(frozen=True, slots=True)
class ProjectRef:
    id: str
    name: str
    domain_id: str


@dataclass(frozen=True, slots=True)
class ComputeQuota:
    """Nova limits for a project; ``UNLIMITED`` (-1) means no limit."""

    cores: int
    ram_mb: int
    instances: int


@dataclass(frozen=True, slots=True)
class NetworkQuota:
    """Neutron limits for a project; ``UNLIMITED`` (-1) means no limit.

    A resource the cloud does not offer at all (floating IPs where Neutron has no router
    extension) reads as 0, and setting it is ignored.
    """

    networks: int
    subnets: int
    ports: int
    floating_ips: int
    security_groups: int
    security_group_rules: int


@dataclass(frozen=True, slots=True)
class BlockStorageQuota:
    """Cinder limits for a project; ``UNLIMITED`` (-1) means no limit.  ``gigabytes`` is the
    size of all volumes and snapshots together."""

    volumes: int
    gigabytes: int
    snapshots: int
    backups: int


@dataclass(frozen=True, slots=True)
class QuotaSet:
    compute: ComputeQuota
    network: NetworkQuota
    #: None when the cloud has no block-storage (Cinder) service: it has no such quota at
    #: all, which is not the same as a limit of 0.
    block_storage: BlockStorageQuota | None


@dataclass(frozen=True, slots=True)
class ComputeUsage:
    """What a project currently consumes of its compute quota."""

    cores: int
    ram_mb: int
    instances: int


@dataclass(frozen=True, slots=True)
class Flavor:
    id: str
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    is_public: bool = True


@dataclass(frozen=True, slots=True)
class Image:
    id: str
    name: str
    status: str
    size_bytes: int | None
    disk_format: str | None
    min_disk_gb: int
    min_ram_mb: int
    visibility: str
    owner_project_id: str | None = None
    #: The idempotency tag a server snapshot was made with (``IMAGE_TAG_PROPERTY``), if any.
    tag: str | None = None
    #: What Glance computed from the data it stored (issue 17): the multihash
    #: (``os_hash_algo``, sha512 by default, and ``os_hash_value``) and the legacy MD5
    #: ``checksum``; None while the image has no data, or on a Glance too old for them.
    hash_algo: str | None = None
    hash_value: str | None = None
    checksum: str | None = None


@dataclass(frozen=True, slots=True)
class ImageDownload:
    """What :meth:`CloudProvider.download_image` wrote, digested in the same streaming pass:
    its size, its SHA-256, and its digest in the algorithm Glance recorded for the image
    (``hash_algo``/``hash_value``, None when the image has no multihash)."""

    size_bytes: int
    sha256: str
    hash_algo: str | None = None
    hash_value: str | None = None


@dataclass(frozen=True, slots=True)
class Network:
    id: str
    name: str
    is_shared: bool
    subnet_ids: tuple[str, ...]
    cidrs: tuple[str, ...]
    status: str
    project_id: str | None = None


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """What to boot.

    ``idempotency_key`` identifies the request: booting twice with the same key in the
    same project yields the same server.  ``network_id`` None boots without a network.
    """

    name: str
    flavor_id: str
    image_id: str
    network_id: str | None
    idempotency_key: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: A keypair of the project (:meth:`CloudProvider.ensure_keypair`), put in the server.
    key_name: str | None = None
    #: cloud-init data; Nova takes at most 65535 bytes once base64-encoded.
    user_data: bytes | str | None = None
    #: Security groups of the project, by name or id; none means the project's "default".
    security_groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _frozen_copy(self, "metadata")
        object.__setattr__(self, "security_groups", tuple(self.security_groups))


@dataclass(frozen=True, slots=True)
class Server:
    """A server as the cloud reports it.

    ``host`` is the compute host (visible to admins only; None while unscheduled or when
    the cloud hides it).  ``addresses`` maps a network name to the server's IPs on it.
    ``fault_message`` is set when the server is in ERROR and the cloud recorded why.
    """

    id: str
    name: str
    status: str
    project_id: str | None
    flavor_id: str | None
    image_id: str | None
    host: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)
    addresses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fault_message: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    task_state: str | None = None
    flavor_name: str | None = None
    #: The keypair it was booted with (the name given to ensure_keypair), if any.
    key_name: str | None = None
    #: Names of its security groups, sorted.
    security_groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _frozen_copy(self, "metadata")
        _frozen_copy(self, "addresses")

    @property
    def idempotency_key(self) -> str | None:
        return self.metadata.get(IDEMPOTENCY_METADATA_KEY)


@dataclass(frozen=True, slots=True)
class ServerPage:
    """One page of a server listing; pass ``next_marker`` back to get the next page."""

    servers: tuple[Server, ...]
    next_marker: str | None


@dataclass(frozen=True, slots=True)
class HostAggregate:
    """A Nova host aggregate: a named set of compute hosts (a data-centre base, a rack row…)."""

    id: str
    name: str
    hosts: tuple[str, ...]
    availability_zone: str | None = None


@dataclass(frozen=True, slots=True)
class Hypervisor:
    id: str
    name: str
    state: str
    status: str
    host: str


@dataclass(frozen=True, slots=True)
class Inventory:
    """One resource class of a Placement resource provider."""

    total: int
    reserved: int
    allocation_ratio: float
    min_unit: int
    max_unit: int
    step_size: int

    @property
    def capacity(self) -> int:
        """How much of the resource can be allocated in all: (total - reserved) * ratio."""
        return int((self.total - self.reserved) * self.allocation_ratio)


@dataclass(frozen=True, slots=True)
class ResourceProvider:
    """A Placement resource provider (one per compute node) with its inventories and usages.

    Keys are Placement resource classes: ``VCPU``, ``MEMORY_MB``, ``DISK_GB``.
    """

    id: str
    name: str
    inventories: Mapping[str, Inventory] = field(default_factory=dict)
    usages: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _frozen_copy(self, "inventories")
        _frozen_copy(self, "usages")

    def free(self, resource_class: str) -> int:
        """Capacity left for ``resource_class`` (0 when the provider has none of it)."""
        inventory = self.inventories.get(resource_class)
        if inventory is None:
            return 0
        return inventory.capacity - self.usages.get(resource_class, 0)


@dataclass(frozen=True, slots=True)
class Allocation:
    """What one Placement consumer holds on one resource provider.

    The consumer is a server's id, or a migration's id: while a resize or cold migration
    waits to be confirmed (and during a live migration) Nova keeps the source host's share
    under the migration's uuid, so not every consumer is a server.  ``resources`` maps
    resource classes (``VCPU``, ``MEMORY_MB``, ``DISK_GB``) to amounts.
    """

    consumer_id: str
    resources: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _frozen_copy(self, "resources")


@dataclass(frozen=True, slots=True)
class PlacementSnapshot:
    """Every resource provider of a cloud with its inventories, usages and allocations, read
    in one go (:meth:`CloudProvider.capacity_snapshot`).

    ``allocations`` maps each provider's id to its allocations, one per consumer, sorted by
    consumer id; each provider's usages are the sum of its allocations per resource class
    it has an inventory of (Placement's own definition of usages).
    """

    providers: tuple[ResourceProvider, ...] = ()
    allocations: Mapping[str, tuple[Allocation, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "providers", tuple(self.providers))
        object.__setattr__(self, "allocations", {k: tuple(v) for k, v in self.allocations.items()})

    def allocations_of(self, resource_provider_id: str) -> tuple[Allocation, ...]:
        """The allocations against one provider of the snapshot (none for an unknown id)."""
        return self.allocations.get(resource_provider_id, ())


# ---- keypairs, security groups, floating IPs, consoles (issue 16) ----------------------

#: ``SecurityRule.remote_group`` for "the members of this same group".
REMOTE_GROUP_SELF = "self"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A public SSH key Nova puts into the servers booted with its name.

    ``fingerprint`` is Nova's: the MD5 of the key's blob, as colon-separated hex.
    """

    name: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class SecurityRule:
    """One rule of a security group.

    ``protocol`` None means any protocol; ``port_min``/``port_max`` (both or neither) bound
    the ports for tcp and udp, and are the ICMP type and code for icmp.  The peer is either
    ``remote_cidr`` or ``remote_group`` (``REMOTE_GROUP_SELF``, or another group's id); a
    rule with neither admits any address.  The cloud validates ports, CIDRs and protocols
    (CloudBadRequest), not this value.
    """

    direction: str
    protocol: str | None = None
    port_min: int | None = None
    port_max: int | None = None
    remote_cidr: str | None = None
    remote_group: str | None = None

    @property
    def ethertype(self) -> str:
        """``IPv6`` for an IPv6 CIDR, else ``IPv4`` (so a rule without a CIDR is IPv4)."""
        return "IPv6" if self.remote_cidr is not None and ":" in self.remote_cidr else "IPv4"


#: Neutron gives every new group these two rules; list them to keep outbound traffic open.
ALLOW_ALL_EGRESS: tuple[SecurityRule, ...] = (
    SecurityRule("egress", remote_cidr="0.0.0.0/0"),
    SecurityRule("egress", remote_cidr="::/0"),
)


@dataclass(frozen=True, slots=True)
class SecurityGroup:
    """A project's security group with its rules (as a set: Neutron keeps no order)."""

    id: str
    name: str
    rules: frozenset[SecurityRule]
    description: str = ""
    project_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", frozenset(self.rules))


@dataclass(frozen=True, slots=True)
class FloatingIp:
    """A public address of an external network, held by a project; ``port_id`` and
    ``server_id`` are set while it is associated with a server."""

    id: str
    address: str
    port_id: str | None
    server_id: str | None
    project_id: str | None = None
    idempotency_tag: str | None = None


@dataclass(frozen=True, slots=True)
class ConsoleUrl:
    """Where a browser opens the server's remote console; ``type`` is Nova's (``novnc``)."""

    type: str
    url: str


# ---- volumes, volume snapshots and backups (issue 16) ----------------------------------

#: Metadata key under which a volume's or a snapshot's idempotency tag is stored.
VOLUME_TAG_METADATA_KEY = "cloudmgr_tag"


@dataclass(frozen=True, slots=True)
class VolumeType:
    """A kind of block storage the cloud offers (Cinder's volume type)."""

    id: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class VolumeAttachment:
    """A volume attached to a server; ``device`` is the guest's device name (``/dev/vdb``),
    when the cloud reports one."""

    server_id: str
    device: str | None = None


@dataclass(frozen=True, slots=True)
class Volume:
    """A block storage volume.

    ``status`` is Cinder's: ``creating``, ``available``, ``in-use`` (attached),
    ``backing-up``, ``restoring-backup``, ``extending``, ``deleting``, ``error...``.
    ``tag`` is the idempotency tag it was created with; ``snapshot_id`` the snapshot it
    was made from, if any.
    """

    id: str
    name: str
    size_gb: int
    status: str
    volume_type: str | None
    attachments: tuple[VolumeAttachment, ...] = ()
    tag: str | None = None
    project_id: str | None = None
    snapshot_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "attachments", tuple(self.attachments))


@dataclass(frozen=True, slots=True)
class VolumeSnapshot:
    """A point-in-time copy of a volume, kept next to it (a volume with snapshots cannot be
    deleted)."""

    id: str
    name: str
    volume_id: str
    size_gb: int
    status: str
    tag: str | None = None
    project_id: str | None = None


@dataclass(frozen=True, slots=True)
class VolumeBackup:
    """A copy of a volume's data in the backup store, independent of the volume."""

    id: str
    name: str
    volume_id: str
    size_gb: int
    status: str
    is_incremental: bool = False
    tag: str | None = None
    project_id: str | None = None
