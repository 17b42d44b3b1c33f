"""The simulated cloud's state: seeded on first use, kept in memory or in a JSON file
shared by every process that opens the same path, changed in transactions.

With a ``state_path`` each operation takes an exclusive ``fcntl`` lock on a side file,
reads the state, and replaces the file atomically if it changed anything.  Image data
lives in a folder next to it.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import ipaddress
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cloudmgr.cloud.errors import CloudUnavailable
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.cloud.reachability import tell
from cloudmgr.cloud.simulated.records import ADMIN_PROJECT_ID, fake_image_data, image_record, iso, now, stable_id
from cloudmgr.cloud.types import BlockStorageQuota, ComputeQuota, Flavor, NetworkQuota

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
#: The external network floating IPs come from, named like the lab's (issue 16).
DEFAULT_EXTERNAL_NETWORKS = (("lab-public", "192.0.2.0/24"),)

# Nova's, Neutron's and Cinder's out-of-the-box project quotas.
DEFAULT_COMPUTE_QUOTA = ComputeQuota(cores=20, ram_mb=51200, instances=10)
DEFAULT_NETWORK_QUOTA = NetworkQuota(
    networks=100, subnets=100, ports=500, floating_ips=50, security_groups=10, security_group_rules=100
)
DEFAULT_BLOCK_STORAGE_QUOTA = BlockStorageQuota(volumes=10, gigabytes=1000, snapshots=10, backups=10)

RESOURCE_CLASSES = ("VCPU", "MEMORY_MB", "DISK_GB")


class SimulatedStore(CloudProvider):
    """The state the resource mixins of :class:`~cloudmgr.cloud.simulated.SimulatedProvider`
    share, and its transactions.  The constructor's arguments are documented on
    SimulatedProvider."""

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
        external_networks: Sequence[tuple[str, str]] = DEFAULT_EXTERNAL_NETWORKS,
        label: str | None = None,
        aggregates: Mapping[str, Sequence[str]] | None = None,
        allocation_ratios: Mapping[str, float] | None = None,
        reserved: Mapping[str, int] | None = None,
    ) -> None:
        if not hosts:
            raise ValueError("a simulated cloud needs at least one host")
        totals = {"VCPU": host_vcpus, "MEMORY_MB": host_ram_mb, "DISK_GB": host_disk_gb}
        for resource_class, ratio in (allocation_ratios or {}).items():
            if resource_class not in RESOURCE_CLASSES or not ratio > 0:
                raise ValueError(f"allocation ratio {resource_class}={ratio}: a resource class and a positive ratio")
        for resource_class, amount in (reserved or {}).items():
            if resource_class not in RESOURCE_CLASSES or not 0 <= amount <= totals[resource_class]:
                raise ValueError(f"reserved {resource_class}={amount}: between 0 and the host's total")
        self._seed_ratios = {rc: float(r) for rc, r in (allocation_ratios or {}).items()}
        self._seed_reserved = {rc: int(n) for rc, n in (reserved or {}).items()}
        self._state_path = Path(state_path) if state_path is not None else None
        self._seed_args = (tuple(hosts), host_vcpus, host_ram_mb, host_disk_gb, tuple(flavors), tuple(image_names))
        self._seed_networks = tuple(networks)
        self._seed_external_networks = tuple(external_networks)
        self._label = label or (self._state_path.stem if self._state_path else None)
        # Host aggregates are configuration of the simulated cloud (name -> hosts), not state.
        self._aggregates = {name: tuple(hosts) for name, hosts in (aggregates or {}).items()}
        self._thread_lock = threading.RLock()
        self._memory: dict[str, Any] | None = None
        self._memory_blobs: dict[str, bytes] = {}
        self._memory_unreachable: str | None = None

    def __repr__(self) -> str:
        return f"SimulatedProvider(state_path={self._state_path!r})"

    @property
    def name(self) -> str:
        return f"simulated cloud ({self._label})" if self._label else "simulated cloud"

    @property
    def is_simulated(self) -> bool:
        return True

    def _seed(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """A new cloud's state and its images' data."""
        hosts, vcpus, ram_mb, disk_gb, flavors, image_names = self._seed_args
        created_at = iso(now())
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "domains": {},
            "projects": {},
            "quotas": {},
            "hosts": {
                name: {
                    "id": stable_id("host", name),
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
            image_id = stable_id("image", image_name)
            data = fake_image_data(image_name)
            state["images"][image_id] = image_record(
                image_id, image_name, data, "qcow2", ADMIN_PROJECT_ID, "public", created_at
            )
            blobs[image_id] = data
        for net_name, cidr in self._seed_networks:
            network_id = stable_id("network", net_name)
            state["networks"][network_id] = {
                "id": network_id,
                "name": net_name,
                "is_shared": True,
                "subnet_ids": [stable_id("subnet", net_name)],
                "cidrs": [str(ipaddress.ip_network(cidr))],
                "next_address": 10,
                "project_id": ADMIN_PROJECT_ID,
            }
        for net_name, cidr in self._seed_external_networks:
            network_id = stable_id("network", net_name)
            state["networks"][network_id] = {
                "id": network_id,
                "name": net_name,
                "is_shared": False,
                "is_external": True,
                "subnet_ids": [stable_id("subnet", net_name)],
                "cidrs": [str(ipaddress.ip_network(cidr))],
                "next_address": 10,
                "project_id": ADMIN_PROJECT_ID,
            }
        return state, blobs

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
        atomic_write(blob_dir / image_id, data)

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

    # --- an outage, for tests and demos of a cloud that is down ----------------------------

    @property
    def _unreachable_marker(self) -> Path | None:
        if self._state_path is None:
            return None
        return self._state_path.with_name(self._state_path.stem + ".unreachable")

    def set_unreachable(self, detail: str | None = "connection refused") -> None:
        """Make the cloud unreachable (every call raises CloudUnavailable, as the OpenStack adapter
        does when nothing listens at the cloud's address), or reachable again with ``None``.
        With a state file the outage is a file beside it, so every process sharing the cloud
        sees it."""
        marker = self._unreachable_marker
        if marker is None:
            self._memory_unreachable = detail
        elif detail is None:
            marker.unlink(missing_ok=True)
        else:
            marker.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(marker, detail.encode())

    def unreachable_detail(self) -> str | None:
        """Why the cloud cannot be reached (set_unreachable), or None when it can."""
        marker = self._unreachable_marker
        if marker is None:
            return self._memory_unreachable
        try:
            return marker.read_text(encoding="utf-8") or "connection refused"
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[dict[str, Any]]:
        """The state to read and change; kept only if the block ends without an error,
        so a refused operation never leaves half its changes behind."""
        detail = self.unreachable_detail()
        if detail is not None:
            error = CloudUnavailable(
                f"{self.name}: the cloud could not be reached", detail, request_reached_server=False
            )
            tell(self.reachability_observer, error)
            raise error
        with self._state_transaction() as state:
            yield state
        tell(self.reachability_observer, None)

    @contextlib.contextmanager
    def _state_transaction(self) -> Iterator[dict[str, Any]]:
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
                        atomic_write(self._state_path, after.encode())
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
        atomic_write(self._state_path, json.dumps(state, sort_keys=True).encode())
        return state


def atomic_write(path: Path, data: bytes) -> None:
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
