"""SimulatedProvider: a small cloud that lives in memory or in a JSON file.

It serves the first-run demo and every test that does not need a real cloud, so it keeps
the contract of the real thing where the contract matters to callers: quotas are enforced
with the same errors Nova raises, servers are placed on hosts with finite capacity (a
server that fits nowhere goes to ERROR with Nova's "No valid host" fault), boots are
idempotent per key, listings are paged like Nova's (newest first, a marker is a cursor),
resizes and migrations move servers between hosts, and Placement-like resource providers
report what the servers use.

Unlike a real cloud every operation completes at once: a boot returns the server ACTIVE
(or ERROR), a resize returns it in VERIFY_RESIZE, and so on.

With ``state_path`` the state is a JSON file shared by every process that opens the same
path (the web app and the CLI): each operation takes an exclusive ``fcntl`` lock on a
side file, reads the state, and replaces the file atomically if it changed anything.
Image data lives in a folder next to it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fcntl
import ipaddress
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudmgr.cloud.errors import (
    CloudBadRequest,
    CloudConflict,
    CloudNotFound,
    CloudNoValidHost,
    CloudQuotaExceeded,
)
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.cloud.types import (
    IDEMPOTENCY_METADATA_KEY,
    UNLIMITED,
    Allocation,
    ComputeQuota,
    ComputeUsage,
    Flavor,
    HostAggregate,
    Hypervisor,
    Image,
    Inventory,
    Network,
    NetworkQuota,
    ProjectRef,
    QuotaSet,
    ResourceProvider,
    Server,
    ServerPage,
    ServerSpec,
)

STATE_VERSION = 1

DEFAULT_HOSTS = ("sim-host-1", "sim-host-2")
DEFAULT_FLAVORS = (
    Flavor(id="1", name="m1.tiny", vcpus=1, ram_mb=512, disk_gb=1),
    Flavor(id="2", name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20),
    Flavor(id="3", name="m1.medium", vcpus=2, ram_mb=4096, disk_gb=40),
    Flavor(id="4", name="m1.large", vcpus=4, ram_mb=8192, disk_gb=80),
)
DEFAULT_IMAGE_NAMES = ("cirros-lab",)
#: The lab's shared networks, so a configuration written for the lab works here too.
DEFAULT_NETWORKS = (("lab-internet", "10.10.0.0/24"), ("lab-extranet", "10.20.0.0/24"))

# Nova's and Neutron's out-of-the-box project quotas.
DEFAULT_COMPUTE_QUOTA = ComputeQuota(cores=20, ram_mb=51200, instances=10)
DEFAULT_NETWORK_QUOTA = NetworkQuota(networks=100, subnets=100, ports=500, floating_ips=50, security_groups=10)

NO_VALID_HOST_FAULT = "No valid host was found. There are not enough hosts available."
ADMIN_PROJECT_ID = "simulated-admin-project"
#: Deleted servers kept for ``changes_since`` listings (Nova keeps them until archived).
MAX_TOMBSTONES = 1000

_RESOURCE_CLASSES = ("VCPU", "MEMORY_MB", "DISK_GB")
_NAMESPACE = uuid.UUID("6f1d2c1e-3b7a-4c59-9f36-8e0f5b0c2a11")


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _stable_id(kind: str, name: str) -> str:
    # Seeded objects get ids derived from their names so two processes seeding the same
    # file independently would still agree.
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{name}"))


def _fake_image_data(label: str) -> bytes:
    return (f"cloudmgr simulated disk image: {label}\n".encode()) * 64


class SimulatedProvider(CloudProvider):
    """The built-in demo cloud; see the module docstring.

    ``hosts`` name the compute hosts, each with ``host_vcpus`` / ``host_ram_mb`` /
    ``host_disk_gb`` of physical resources; ``allocation_ratios`` and ``reserved`` (per
    resource class, like Nova's ``cpu_allocation_ratio`` and ``reserved_host_memory_mb``)
    make Placement's bookable capacity (total - reserved) x ratio.  ``flavors``,
    ``image_names`` and ``networks`` (name, CIDR pairs) seed the catalogue.  The seed is
    used only when the state file does not exist yet; afterwards the file is the truth.
    """

    poll_interval = 0.01

    def __init__(
        self,
        state_path: Path | None = None,
        hosts: Sequence[str] = DEFAULT_HOSTS,
        host_vcpus: int = 8,
        host_ram_mb: int = 16384,
        host_disk_gb: int = 200,
        *,
        flavors: Sequence[Flavor] = DEFAULT_FLAVORS,
        image_names: Sequence[str] = DEFAULT_IMAGE_NAMES,
        networks: Sequence[tuple[str, str]] = DEFAULT_NETWORKS,
        label: str | None = None,
        aggregates: Mapping[str, Sequence[str]] | None = None,
        allocation_ratios: Mapping[str, float] | None = None,
        reserved: Mapping[str, int] | None = None,
    ) -> None:
        if not hosts:
            raise ValueError("a simulated cloud needs at least one host")
        totals = {"VCPU": host_vcpus, "MEMORY_MB": host_ram_mb, "DISK_GB": host_disk_gb}
        for resource_class, ratio in (allocation_ratios or {}).items():
            if resource_class not in _RESOURCE_CLASSES or not ratio > 0:
                raise ValueError(f"allocation ratio {resource_class}={ratio}: a resource class and a positive ratio")
        for resource_class, amount in (reserved or {}).items():
            if resource_class not in _RESOURCE_CLASSES or not 0 <= amount <= totals[resource_class]:
                raise ValueError(f"reserved {resource_class}={amount}: between 0 and the host's total")
        self._seed_ratios = {rc: float(r) for rc, r in (allocation_ratios or {}).items()}
        self._seed_reserved = {rc: int(n) for rc, n in (reserved or {}).items()}
        self._state_path = Path(state_path) if state_path is not None else None
        self._seed_args = (tuple(hosts), host_vcpus, host_ram_mb, host_disk_gb, tuple(flavors), tuple(image_names))
        self._seed_networks = tuple(networks)
        self._label = label or (self._state_path.stem if self._state_path else None)
        # Host aggregates are configuration of the simulated cloud (name -> hosts), not state.
        self._aggregates = {name: tuple(hosts) for name, hosts in (aggregates or {}).items()}
        self._thread_lock = threading.RLock()
        self._memory: dict[str, Any] | None = None
        self._memory_blobs: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"SimulatedProvider(state_path={self._state_path!r})"

    @property
    def name(self) -> str:
        return f"simulated cloud ({self._label})" if self._label else "simulated cloud"

    @property
    def is_simulated(self) -> bool:
        return True

    # ---- state ------------------------------------------------------------------------

    def _seed(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """A new cloud's state and its images' data."""
        hosts, vcpus, ram_mb, disk_gb, flavors, image_names = self._seed_args
        now = _iso(_now())
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "domains": {},
            "projects": {},
            "quotas": {},
            "hosts": {
                name: {
                    "id": _stable_id("host", name),
                    "vcpus": vcpus,
                    "ram_mb": ram_mb,
                    "disk_gb": disk_gb,
                    "allocation_ratio": dict(self._seed_ratios),
                    "reserved": dict(self._seed_reserved),
                }
                for name in hosts
            },
            "flavors": {
                f.id: {
                    "id": f.id,
                    "name": f.name,
                    "vcpus": f.vcpus,
                    "ram_mb": f.ram_mb,
                    "disk_gb": f.disk_gb,
                    "is_public": f.is_public,
                }
                for f in flavors
            },
            "images": {},
            "networks": {},
            "servers": {},
        }
        blobs: dict[str, bytes] = {}
        for image_name in image_names:
            image_id = _stable_id("image", image_name)
            data = _fake_image_data(image_name)
            state["images"][image_id] = self._image_record(
                image_id, image_name, len(data), "qcow2", ADMIN_PROJECT_ID, "public", now
            )
            blobs[image_id] = data
        for net_name, cidr in self._seed_networks:
            network_id = _stable_id("network", net_name)
            state["networks"][network_id] = {
                "id": network_id,
                "name": net_name,
                "is_shared": True,
                "subnet_ids": [_stable_id("subnet", net_name)],
                "cidrs": [str(ipaddress.ip_network(cidr))],
                "next_address": 10,
                "project_id": ADMIN_PROJECT_ID,
            }
        return state, blobs

    @staticmethod
    def _image_record(
        image_id: str, name: str, size: int, disk_format: str, owner: str, visibility: str, now: str, min_disk: int = 0
    ) -> dict[str, Any]:
        return {
            "id": image_id,
            "name": name,
            "status": "active",
            "size_bytes": size,
            "disk_format": disk_format,
            "min_disk_gb": min_disk,
            "min_ram_mb": 0,
            "visibility": visibility,
            "owner": owner,
            "created_at": now,
        }

    @property
    def _blob_dir(self) -> Path | None:
        if self._state_path is None:
            return None
        return self._state_path.with_name(self._state_path.stem + ".images")

    def _write_blob(self, image_id: str, data: bytes) -> None:
        blob_dir = self._blob_dir
        if blob_dir is None:
            self._memory_blobs[image_id] = data
            return
        blob_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(blob_dir / image_id, data)

    def _read_blob(self, image_id: str) -> bytes:
        blob_dir = self._blob_dir
        if blob_dir is None:
            return self._memory_blobs.get(image_id, b"")
        path = blob_dir / image_id
        return path.read_bytes() if path.exists() else b""

    def _delete_blob(self, image_id: str) -> None:
        blob_dir = self._blob_dir
        if blob_dir is None:
            self._memory_blobs.pop(image_id, None)
        else:
            (blob_dir / image_id).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[dict[str, Any]]:
        """The state to read and change; kept only if the block ends without an error,
        so a refused operation never leaves half its changes behind."""
        with self._thread_lock:
            if self._state_path is None:
                if self._memory is None:
                    self._memory, blobs = self._seed()
                    self._memory_blobs.update(blobs)
                working = copy.deepcopy(self._memory)
                yield working
                self._memory = working
                return
            self._state_path.parent.mkdir(parents=True, exist_ok=True)
            lock_path = self._state_path.with_name(self._state_path.name + ".lock")
            with open(lock_path, "a+b") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                try:
                    state = self._load_or_seed()
                    before = json.dumps(state, sort_keys=True)
                    yield state
                    after = json.dumps(state, sort_keys=True)
                    if after != before:
                        _atomic_write(self._state_path, after.encode())
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _load_or_seed(self) -> dict[str, Any]:
        assert self._state_path is not None
        if self._state_path.exists():
            state: dict[str, Any] = json.loads(self._state_path.read_text())
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"{self._state_path}: unknown simulated-cloud state version {state.get('version')}")
            return state
        state, blobs = self._seed()
        for image_id, data in blobs.items():
            self._write_blob(image_id, data)
        _atomic_write(self._state_path, json.dumps(state, sort_keys=True).encode())
        return state

    # ---- identity ---------------------------------------------------------------------

    def ensure_project(self, domain_name: str, project_name: str, description: str = "") -> ProjectRef:
        if not domain_name or not project_name:
            raise CloudBadRequest("a domain and a project name are required", f"{domain_name}/{project_name}")
        with self._transaction() as state:
            domain = next((d for d in state["domains"].values() if d["name"] == domain_name), None)
            if domain is None:
                domain = {"id": uuid.uuid4().hex, "name": domain_name}
                state["domains"][domain["id"]] = domain
            project = next(
                (p for p in state["projects"].values() if p["domain_id"] == domain["id"] and p["name"] == project_name),
                None,
            )
            if project is None:
                project = {"id": uuid.uuid4().hex, "name": project_name, "domain_id": domain["id"]}
                state["projects"][project["id"]] = project
            if description or "description" not in project:
                project["description"] = description
            return ProjectRef(id=project["id"], name=project["name"], domain_id=project["domain_id"])

    @staticmethod
    def _require_project(state: dict[str, Any], project_id: str) -> dict[str, Any]:
        project = state["projects"].get(project_id)
        if project is None:
            raise CloudNotFound(f"project {project_id} not found")
        return project  # type: ignore[no-any-return]

    # ---- quotas -----------------------------------------------------------------------

    @staticmethod
    def _quota_of(state: dict[str, Any], project_id: str) -> QuotaSet:
        stored = state["quotas"].get(project_id)
        if stored is None:
            return QuotaSet(compute=DEFAULT_COMPUTE_QUOTA, network=DEFAULT_NETWORK_QUOTA)
        return QuotaSet(compute=ComputeQuota(**stored["compute"]), network=NetworkQuota(**stored["network"]))

    def get_quota(self, project_id: str) -> QuotaSet:
        with self._transaction() as state:
            self._require_project(state, project_id)
            return self._quota_of(state, project_id)

    def set_quota(self, project_id: str, quota: QuotaSet) -> None:
        values = {
            **{f"compute.{k}": v for k, v in _fields(quota.compute).items()},
            **{f"network.{k}": v for k, v in _fields(quota.network).items()},
        }
        for name, value in values.items():
            if not isinstance(value, int) or value < UNLIMITED:
                raise CloudBadRequest(f"set quota rejected as invalid: {name} must be -1 or more", str(value))
        with self._transaction() as state:
            self._require_project(state, project_id)
            usage = self._usage_of(state, project_id)
            # Nova refuses a compute limit below what the project already uses.
            for resource, limit, used in (
                ("cores", quota.compute.cores, usage.cores),
                ("ram", quota.compute.ram_mb, usage.ram_mb),
                ("instances", quota.compute.instances, usage.instances),
            ):
                if limit != UNLIMITED and limit < used:
                    raise CloudBadRequest(
                        "set quota rejected as invalid: a limit is below current usage",
                        f"Quota limit {limit} for {resource} must be greater than or equal to already used "
                        f"and reserved {used}.",
                    )
            state["quotas"][project_id] = {"compute": _fields(quota.compute), "network": _fields(quota.network)}

    @staticmethod
    def _live_servers(state: dict[str, Any], project_id: str | None = None) -> list[dict[str, Any]]:
        return [
            s
            for s in state["servers"].values()
            if not s["deleted"] and (project_id is None or s["project_id"] == project_id)
        ]

    def _usage_of(self, state: dict[str, Any], project_id: str) -> ComputeUsage:
        servers = self._live_servers(state, project_id)
        flavors = state["flavors"]
        return ComputeUsage(
            cores=sum(flavors[s["flavor_id"]]["vcpus"] for s in servers),
            ram_mb=sum(flavors[s["flavor_id"]]["ram_mb"] for s in servers),
            instances=len(servers),
        )

    def get_compute_usage(self, project_id: str) -> ComputeUsage:
        with self._transaction() as state:
            self._require_project(state, project_id)
            return self._usage_of(state, project_id)

    def _check_quota(
        self, state: dict[str, Any], project_id: str, action: str, instances: int, cores: int, ram_mb: int, ports: int
    ) -> None:
        quota = self._quota_of(state, project_id)
        usage = self._usage_of(state, project_id)
        used_ports = sum(1 for s in self._live_servers(state, project_id) if s.get("network_id"))
        for resource, requested, used, limit in (
            ("instances", instances, usage.instances, quota.compute.instances),
            ("cores", cores, usage.cores, quota.compute.cores),
            ("ram", ram_mb, usage.ram_mb, quota.compute.ram_mb),
        ):
            if requested > 0 and limit != UNLIMITED and used + requested > limit:
                # Nova's wording, so logs read the same for both kinds of cloud.
                raise CloudQuotaExceeded(
                    f"{action} refused: quota exceeded",
                    f"Quota exceeded for {resource}: Requested {requested}, but already used {used} of {limit} "
                    f"{resource}",
                    status_code=403,
                )
        limit = quota.network.ports
        if ports > 0 and limit != UNLIMITED and used_ports + ports > limit:
            raise CloudQuotaExceeded(
                f"{action} refused: quota exceeded", "Maximum number of ports exceeded", status_code=403
            )

    # ---- catalogue --------------------------------------------------------------------

    def list_flavors(self) -> list[Flavor]:
        with self._transaction() as state:
            return [Flavor(**f) for f in state["flavors"].values()]

    @staticmethod
    def _to_image(record: dict[str, Any]) -> Image:
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
        )

    def list_images(self) -> list[Image]:
        with self._transaction() as state:
            return [self._to_image(i) for i in state["images"].values()]

    def list_networks(self) -> list[Network]:
        with self._transaction() as state:
            return [
                Network(
                    id=n["id"],
                    name=n["name"],
                    is_shared=n["is_shared"],
                    subnet_ids=tuple(n["subnet_ids"]),
                    cidrs=tuple(n["cidrs"]),
                    status="ACTIVE",
                    project_id=n["project_id"],
                )
                for n in state["networks"].values()
            ]

    # ---- placement --------------------------------------------------------------------

    def _host_allocations(self, state: dict[str, Any]) -> dict[str, dict[str, dict[str, int]]]:
        """Each host's allocations by consumer, like Placement: every server placed on a
        host holds its flavor there whatever its status (SHUTOFF and ERROR too); a server
        in VERIFY_RESIZE holds its new flavor on its new host, and the migration (its own
        consumer, not the server) holds the old flavor on the source until confirmed."""
        allocations: dict[str, dict[str, dict[str, int]]] = {name: {} for name in state["hosts"]}
        flavors = state["flavors"]

        def add(host: str | None, consumer_id: str, flavor_id: str) -> None:
            if host in allocations:
                flavor = flavors[flavor_id]
                allocations[host][consumer_id] = {
                    "VCPU": flavor["vcpus"],
                    "MEMORY_MB": flavor["ram_mb"],
                    "DISK_GB": flavor["disk_gb"],
                }

        for server in self._live_servers(state):
            add(server["host"], server["id"], server["flavor_id"])
            pending = server.get("pending")
            if pending:
                # State files from before migrations had their own consumer: a stable id.
                migration_id = pending.get("migration_id") or _stable_id("migration", server["id"])
                add(pending["source_host"], migration_id, pending["old_flavor_id"])
        return allocations

    def _host_usages(self, state: dict[str, Any]) -> dict[str, dict[str, int]]:
        """What each host has allocated in all: the sum of its allocations."""
        usages = {name: dict.fromkeys(_RESOURCE_CLASSES, 0) for name in state["hosts"]}
        for name, consumers in self._host_allocations(state).items():
            for resources in consumers.values():
                for resource_class, amount in resources.items():
                    usages[name][resource_class] += amount
        return usages

    @staticmethod
    def _inventories(host: dict[str, Any]) -> dict[str, Inventory]:
        ratios: dict[str, float] = host.get("allocation_ratio") or {}
        reserved: dict[str, int] = host.get("reserved") or {}

        def inventory(resource_class: str, total: int) -> Inventory:
            return Inventory(
                total=total,
                reserved=int(reserved.get(resource_class, 0)),
                allocation_ratio=float(ratios.get(resource_class, 1.0)),
                min_unit=1,
                max_unit=total,
                step_size=1,
            )

        return {
            "VCPU": inventory("VCPU", host["vcpus"]),
            "MEMORY_MB": inventory("MEMORY_MB", host["ram_mb"]),
            "DISK_GB": inventory("DISK_GB", host["disk_gb"]),
        }

    def _pick_host(
        self, state: dict[str, Any], flavor: dict[str, Any], *, exclude: str | None = None, only: str | None = None
    ) -> str | None:
        """The host to place ``flavor`` on, spreading load like Nova's default RAM weigher
        (most free memory wins); None when none has room."""
        need = {"VCPU": flavor["vcpus"], "MEMORY_MB": flavor["ram_mb"], "DISK_GB": flavor["disk_gb"]}
        usages = self._host_usages(state)
        best: tuple[int, str] | None = None
        for name in sorted(state["hosts"]):
            if name == exclude or (only is not None and name != only):
                continue
            if state["hosts"][name].get("disabled", False):
                continue  # Nova's ComputeFilter: a disabled compute service gets nothing new
            inventories = self._inventories(state["hosts"][name])
            fits = all(
                need[rc] <= inventories[rc].max_unit and usages[name][rc] + need[rc] <= inventories[rc].capacity
                for rc in _RESOURCE_CLASSES
            )
            if fits:
                free_ram = inventories["MEMORY_MB"].capacity - usages[name]["MEMORY_MB"]
                if best is None or free_ram > best[0]:
                    best = (free_ram, name)
        return None if best is None else best[1]

    def list_aggregates(self) -> list[HostAggregate]:
        return [
            HostAggregate(id=f"sim-aggregate-{name}", name=name, hosts=tuple(sorted(hosts)))
            for name, hosts in sorted(self._aggregates.items())
        ]

    def list_hypervisors(self) -> list[Hypervisor]:
        with self._transaction() as state:
            return [
                Hypervisor(
                    id=h["id"],
                    name=name,
                    state="up",
                    status="disabled" if h.get("disabled", False) else "enabled",
                    host=name,
                )
                for name, h in sorted(state["hosts"].items())
            ]

    def list_resource_providers(self) -> list[ResourceProvider]:
        with self._transaction() as state:
            usages = self._host_usages(state)
            return [
                ResourceProvider(id=h["id"], name=name, inventories=self._inventories(h), usages=usages[name])
                for name, h in sorted(state["hosts"].items())
            ]

    def list_allocations(self, resource_provider_id: str) -> list[Allocation]:
        with self._transaction() as state:
            host = next((name for name, h in state["hosts"].items() if h["id"] == resource_provider_id), None)
            if host is None:
                raise CloudNotFound(
                    f"resource provider {resource_provider_id} not found",
                    f"No resource provider with uuid {resource_provider_id} found",
                    status_code=404,
                )
            consumers = self._host_allocations(state)[host]
            return [Allocation(consumer_id=c, resources=r) for c, r in sorted(consumers.items())]

    # ---- servers ----------------------------------------------------------------------

    @staticmethod
    def _to_server(record: dict[str, Any], flavors: dict[str, Any]) -> Server:
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
            created_at=_parse(record["created_at"]),
            updated_at=_parse(record["updated_at"]),
            task_state=None,
        )

    @staticmethod
    def _find_live(state: dict[str, Any], server_id: str) -> dict[str, Any]:
        record = state["servers"].get(server_id)
        if record is None or record["deleted"]:
            raise CloudNotFound(
                f"server {server_id} not found", f"Instance {server_id} could not be found.", status_code=404
            )
        return record  # type: ignore[no-any-return]

    @staticmethod
    def _touch(record: dict[str, Any], **changes: Any) -> None:
        record.update(changes)
        record["updated_at"] = _iso(_now())

    def _find_by_key(self, state: dict[str, Any], project_id: str, key: str) -> dict[str, Any] | None:
        matches = [
            s for s in self._live_servers(state, project_id) if s["metadata"].get(IDEMPOTENCY_METADATA_KEY) == key
        ]
        return min(matches, key=lambda s: (s["created_at"], s["id"])) if matches else None

    def find_server_by_key(self, project_id: str, key: str) -> Server | None:
        with self._transaction() as state:
            found = self._find_by_key(state, project_id, key)
            return None if found is None else self._to_server(found, state["flavors"])

    def create_server(self, project_id: str, spec: ServerSpec) -> Server:
        key = spec.idempotency_key
        action = f"create server {spec.name}"
        if not key or len(key) > 255:
            raise CloudBadRequest("an idempotency key of 1 to 255 characters is required", key)
        if not spec.name.strip():
            raise CloudBadRequest(f"{action} rejected as invalid", "A server name is required.")
        with self._transaction() as state:
            self._require_project(state, project_id)
            existing = self._find_by_key(state, project_id, key)
            if existing is not None:
                return self._to_server(existing, state["flavors"])
            flavor = state["flavors"].get(spec.flavor_id)
            if flavor is None:
                raise CloudBadRequest(f"{action} rejected as invalid", f"Flavor {spec.flavor_id} could not be found.")
            image = state["images"].get(spec.image_id)
            if image is None or image["status"] != "active":
                raise CloudBadRequest(f"{action} rejected as invalid", f"Image {spec.image_id} could not be found.")
            if flavor["disk_gb"] and flavor["disk_gb"] < image["min_disk_gb"]:
                raise CloudBadRequest(
                    f"{action} rejected as invalid", "Flavor's disk is too small for requested image."
                )
            network = None
            if spec.network_id is not None:
                network = state["networks"].get(spec.network_id)
                if network is None:
                    raise CloudBadRequest(
                        f"{action} rejected as invalid", f"Network {spec.network_id} could not be found."
                    )
            self._check_quota(
                state, project_id, action, 1, flavor["vcpus"], flavor["ram_mb"], 1 if network is not None else 0
            )
            host = self._pick_host(state, flavor)
            now = _iso(_now())
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
                "created_at": now,
                "updated_at": now,
                "deleted": False,
                "pending": None,
            }
            state["servers"][record["id"]] = record
            return self._to_server(record, state["flavors"])

    def get_server(self, server_id: str) -> Server:
        with self._transaction() as state:
            return self._to_server(self._find_live(state, server_id), state["flavors"])

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
                updated = _parse(record["updated_at"])
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
            return ServerPage(
                servers=tuple(self._to_server(s, state["flavors"]) for s in page), next_marker=next_marker
            )

    def delete_server(self, server_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        with self._transaction() as state:
            record = state["servers"].get(server_id)
            if record is None or record["deleted"]:
                return
            self._touch(record, status="DELETED", deleted=True, host=None, pending=None)
            tombstones = sorted(
                (s for s in state["servers"].values() if s["deleted"]), key=lambda s: s["updated_at"], reverse=True
            )
            for old in tombstones[MAX_TOMBSTONES:]:
                del state["servers"][old["id"]]

    @staticmethod
    def _require_status(record: dict[str, Any], action: str, allowed: Sequence[str]) -> None:
        if record["status"] not in allowed:
            raise CloudConflict(
                f"{action} refused: conflicts with the resource's current state",
                f"Cannot '{action}' instance {record['id']} while it is in status {record['status']}",
                status_code=409,
            )

    def stop_server(self, server_id: str) -> None:
        with self._transaction() as state:
            record = self._find_live(state, server_id)
            if record["status"] == "SHUTOFF":
                return
            self._require_status(record, "stop", ("ACTIVE",))
            self._touch(record, status="SHUTOFF")

    def start_server(self, server_id: str) -> None:
        with self._transaction() as state:
            record = self._find_live(state, server_id)
            if record["status"] == "ACTIVE":
                return
            self._require_status(record, "start", ("SHUTOFF",))
            self._touch(record, status="ACTIVE")

    def _require_target_host(
        self, state: dict[str, Any], record: dict[str, Any], host: str | None, action: str
    ) -> None:
        if host is None:
            return
        if host not in state["hosts"]:
            raise CloudBadRequest(f"{action} rejected as invalid", f"Compute host {host} could not be found.")
        if host == record["host"]:
            raise CloudBadRequest(f"{action} rejected as invalid", "The target host can't be the same one.")

    def _move(
        self, state: dict[str, Any], record: dict[str, Any], flavor: dict[str, Any], host: str | None, action: str
    ) -> str:
        """The destination host for ``record`` with ``flavor``, or CloudNoValidHost."""
        destination = self._pick_host(state, flavor, exclude=record["host"], only=host)
        if destination is None:
            raise CloudNoValidHost(f"{action} failed: no compute host has room", NO_VALID_HOST_FAULT)
        return destination

    def resize_server(self, server_id: str, flavor_id: str) -> None:
        with self._transaction() as state:
            record = self._find_live(state, server_id)
            self._require_status(record, "resize", ("ACTIVE", "SHUTOFF"))
            new = state["flavors"].get(flavor_id)
            if new is None:
                raise CloudBadRequest("resize rejected as invalid", f"Flavor {flavor_id} could not be found.")
            old = state["flavors"][record["flavor_id"]]
            if flavor_id == record["flavor_id"]:
                raise CloudBadRequest("resize rejected as invalid", "When resizing, instances must change flavor!")
            if new["disk_gb"] < old["disk_gb"]:
                raise CloudBadRequest("resize rejected as invalid", "Resize to zero disk flavor is not allowed.")
            self._check_quota(
                state,
                record["project_id"],
                "resize",
                0,
                new["vcpus"] - old["vcpus"],
                new["ram_mb"] - old["ram_mb"],
                0,
            )
            # Nova does not resize onto the same host by default (allow_resize_to_same_host).
            destination = self._move(state, record, new, None, "resize")
            self._touch(
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
            record = self._find_live(state, server_id)
            if record["status"] in ("ACTIVE", "SHUTOFF") and not record["pending"]:
                return  # already confirmed
            self._require_status(record, "confirmResize", ("VERIFY_RESIZE",))
            self._touch(record, status=record["pending"]["status"], pending=None)

    def live_migrate(self, server_id: str, host: str | None = None) -> None:
        with self._transaction() as state:
            record = self._find_live(state, server_id)
            self._require_status(record, "os-migrateLive", ("ACTIVE",))
            self._require_target_host(state, record, host, "live-migrate")
            destination = self._move(state, record, state["flavors"][record["flavor_id"]], host, "live-migrate")
            self._touch(record, host=destination)

    def cold_migrate(self, server_id: str, host: str | None = None) -> None:
        with self._transaction() as state:
            record = self._find_live(state, server_id)
            self._require_status(record, "migrate", ("ACTIVE", "SHUTOFF"))
            self._require_target_host(state, record, host, "migrate")
            flavor = state["flavors"][record["flavor_id"]]
            destination = self._move(state, record, flavor, host, "migrate")
            self._touch(
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
            record = self._find_live(state, server_id)
            if record["status"] in ("ACTIVE", "SHUTOFF") and not record["pending"]:
                return  # already reverted (or confirmed)
            self._require_status(record, "revertResize", ("VERIFY_RESIZE",))
            pending = record["pending"]
            self._touch(
                record,
                status=pending["status"],
                host=pending["source_host"],
                flavor_id=pending["old_flavor_id"],
                pending=None,
            )

    def reset_state(self, server_id: str, status: str) -> None:
        """The simulator's ``nova reset-state``: force a placed server's status to ACTIVE or
        ERROR without moving it (so it keeps its host and its allocation), the way a
        server ends up in ERROR on a host after a failed operation.  Not part of the
        CloudProvider interface: tests and demos use it to stage a broken server."""
        if status not in ("ACTIVE", "ERROR"):
            raise CloudBadRequest("reset-state rejected as invalid", f"Invalid state {status!r}: ACTIVE or ERROR")
        with self._transaction() as state:
            record = self._find_live(state, server_id)
            self._touch(record, status=status)

    def list_servers_on_host(self, host: str) -> list[Server]:
        with self._transaction() as state:
            return [
                self._to_server(s, state["flavors"])
                for s in sorted(self._live_servers(state), key=lambda s: (s["created_at"], s["id"]))
                if s["host"] == host
            ]

    def set_compute_service_enabled(self, host: str, enabled: bool, reason: str = "") -> None:
        with self._transaction() as state:
            record = state["hosts"].get(host)
            if record is None:
                raise CloudNotFound(f"compute host {host} not found", f"no nova-compute service on {host}")
            if record.get("disabled", False) == (not enabled):
                return
            record["disabled"] = not enabled
            record["disabled_reason"] = None if enabled else (reason or None)

    # ---- images -----------------------------------------------------------------------

    def create_snapshot(self, server_id: str, image_name: str, *, timeout: float = 600.0) -> Image:
        with self._transaction() as state:
            record = self._find_live(state, server_id)
            self._require_status(record, "createImage", ("ACTIVE", "SHUTOFF"))
            flavor = state["flavors"][record["flavor_id"]]
            image_id = str(uuid.uuid4())
            data = _fake_image_data(f"snapshot of {record['name']} ({record['id']})")
            self._write_blob(image_id, data)
            image = self._image_record(
                image_id,
                image_name,
                len(data),
                "qcow2",
                record["project_id"],
                "private",
                _iso(_now()),
                min_disk=flavor["disk_gb"],
            )
            state["images"][image_id] = image
            return self._to_image(image)

    def upload_image(
        self,
        name: str,
        data: bytes | Path,
        disk_format: str = "qcow2",
        container_format: str = "bare",
        *,
        project_id: str | None = None,
    ) -> Image:
        content = Path(data).read_bytes() if isinstance(data, Path) else bytes(data)
        with self._transaction() as state:
            if project_id is not None:
                self._require_project(state, project_id)
            image_id = str(uuid.uuid4())
            self._write_blob(image_id, content)
            # Glance's default visibility for a new image is "shared".
            image = self._image_record(
                image_id, name, len(content), disk_format, project_id or ADMIN_PROJECT_ID, "shared", _iso(_now())
            )
            state["images"][image_id] = image
            return self._to_image(image)

    def get_image(self, image_id: str) -> Image:
        with self._transaction() as state:
            record = state["images"].get(image_id)
            if record is None:
                raise CloudNotFound(f"get image {image_id} failed: not found", status_code=404)
            return self._to_image(record)

    def download_image(self, image_id: str, dest_path: Path) -> int:
        with self._transaction() as state:
            if image_id not in state["images"]:
                raise CloudNotFound(f"download image {image_id} failed: not found", status_code=404)
            data = self._read_blob(image_id)
        _atomic_write(Path(dest_path), data)
        return len(data)

    def delete_image(self, image_id: str) -> None:
        with self._transaction() as state:
            if state["images"].pop(image_id, None) is not None:
                self._delete_blob(image_id)


def _fields(value: ComputeQuota | NetworkQuota) -> dict[str, int]:
    return dataclasses.asdict(value)


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new content, never a
    half-written file."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
