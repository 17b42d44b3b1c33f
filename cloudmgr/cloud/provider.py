"""CloudProvider: the one interface cloudmgr uses to talk to a cloud.

Implementations: :class:`~cloudmgr.cloud.openstack.OpenStackProvider` (a real OpenStack
cloud through openstacksdk) and :class:`~cloudmgr.cloud.simulated.SimulatedProvider` (the
built-in demo cloud).  Both honour the same contract, checked by ``tests/cloud``:

* they return the value types of :mod:`cloudmgr.cloud.types`, never backend objects;
* they raise the errors of :mod:`cloudmgr.cloud.errors`, never backend exceptions;
* long-running operations (boot, stop, resize, migrate) return once the cloud accepted
  them; :meth:`CloudProvider.wait_for_server` waits for the outcome.

Servers are always addressed by id and are visible across projects (the provider acts as
cloud admin); creating one happens inside the department's project so it counts against
that project's quota.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Collection, Iterator, Sequence, Set
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from cloudmgr.cloud.errors import CloudError, CloudNotFound, CloudNoValidHost, CloudTimeout
from cloudmgr.cloud.types import (
    Allocation,
    ComputeUsage,
    ConsoleUrl,
    Flavor,
    FloatingIp,
    HostAggregate,
    Hypervisor,
    Image,
    ImageDownload,
    KeyPair,
    Network,
    PlacementSnapshot,
    ProjectRef,
    QuotaSet,
    ResourceProvider,
    SecurityGroup,
    SecurityRule,
    Server,
    ServerPage,
    ServerSpec,
    Volume,
    VolumeBackup,
    VolumeSnapshot,
    VolumeType,
)

if TYPE_CHECKING:
    from cloudmgr.cloud.reachability import ReachabilityObserver

#: Statuses a server can be waited for to leave with a failure.
DEFAULT_FAIL_STATUSES: frozenset[str] = frozenset({"ERROR"})

#: Glance statuses an image never leaves to become active.
FAILED_IMAGE_STATUSES: frozenset[str] = frozenset({"killed", "deleted", "pending_delete", "deactivated"})

#: Nova's words for a scheduling failure, which it records as the server's fault.
NO_VALID_HOST_MARKER = "no valid host"

#: Cinder's statuses of a volume, snapshot or backup that failed; "error", "error_extending",
#: "error_restoring", "error_backing-up", "error_deleting" all start so.
VOLUME_FAILURE_PREFIX = "error"


class CloudProvider(abc.ABC):
    """A cloud, seen by an administrator who manages departments' projects in it."""

    #: Seconds between two polls in the wait_* helpers.
    poll_interval: float = 2.0
    #: Told whether each call reached the cloud (set by the registry; see cloud.reachability).
    reachability_observer: ReachabilityObserver | None = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        # The classified rule, whatever the caller: every provider's create_server refuses
        # metadata cloudmgr-classification=classified before anything reaches the cloud.
        super().__init_subclass__(**kwargs)
        if "create_server" in cls.__dict__:
            from cloudmgr.cloud.guard import guard_create_server

            cls.create_server = guard_create_server(cls.__dict__["create_server"])  # type: ignore[method-assign]

    # ---- identity -------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """A label for logs and the UI; a simulated cloud's name contains "simulated"."""

    @property
    @abc.abstractmethod
    def is_simulated(self) -> bool:
        """True for the built-in demo cloud."""

    @abc.abstractmethod
    def ensure_project(self, domain_name: str, project_name: str, description: str = "") -> ProjectRef:
        """Make sure the domain and the project in it exist and that this provider's own
        user holds a role in the project (so it can boot servers there).  Idempotent."""

    # ---- quotas -----------------------------------------------------------------------

    @abc.abstractmethod
    def get_quota(self, project_id: str) -> QuotaSet:
        """The project's compute, network and block-storage limits; ``block_storage`` is
        None on a cloud without a block-storage (Cinder) service."""

    @abc.abstractmethod
    def set_quota(self, project_id: str, quota: QuotaSet) -> None:
        """Set the project's compute (Nova), network (Neutron) and block-storage (Cinder)
        limits.  A network resource the cloud does not offer is skipped (it reads back as
        0); so is the whole block-storage quota on a cloud without Cinder (it reads back
        as None), and ``block_storage`` None leaves Cinder's quota as it is."""

    @abc.abstractmethod
    def get_compute_usage(self, project_id: str) -> ComputeUsage:
        """What the project's servers consume now (counted like the quota is)."""

    # ---- catalogue --------------------------------------------------------------------

    @abc.abstractmethod
    def list_flavors(self) -> list[Flavor]: ...

    @abc.abstractmethod
    def list_images(self) -> list[Image]: ...

    @abc.abstractmethod
    def list_networks(self) -> list[Network]: ...

    # ---- servers ----------------------------------------------------------------------

    @abc.abstractmethod
    def create_server(self, project_id: str, spec: ServerSpec, *, first_try: bool = False) -> Server:
        """Boot a server in the project, idempotently.

        If a server of the project already carries ``spec.idempotency_key``, that server is
        returned as it is (even in ERROR: the caller decides whether to delete and retry
        with a new key); otherwise a new server is requested.  Returns right after the
        cloud accepted the request (status BUILD, or already final on a fast cloud).

        Raises CloudQuotaExceeded when the project's quota refuses it.  A scheduling
        failure shows as the server going to ERROR (see :meth:`wait_for_server`).

        ``first_try``: the caller knows from its own record that no earlier call with this
        key (tag) can have reached the cloud, so the look-up before (and any duplicate check
        after) is skipped; one call instead of several.  A caller that cannot be sure (a retry,
        a run taken over) leaves it False.  The server a first try returns may hold only what
        the boot said (id, name, metadata, project; status BUILD): :meth:`wait_for_server`
        reads the rest.
        """

    @abc.abstractmethod
    def find_server_by_key(self, project_id: str, key: str) -> Server | None:
        """The project's server booted with idempotency key ``key``, if any."""

    @abc.abstractmethod
    def get_server(self, server_id: str) -> Server:
        """Raises CloudNotFound when there is no such server."""

    @abc.abstractmethod
    def list_servers(
        self,
        project_id: str | None = None,
        limit: int = 100,
        marker: str | None = None,
        changes_since: datetime | None = None,
    ) -> ServerPage:
        """One page of servers, newest first.

        ``project_id`` None lists every project's servers.  ``marker`` is the
        ``next_marker`` of the previous page.  With ``changes_since``, only servers changed
        at or after that instant are listed, and servers deleted since then are included
        with status DELETED (so a sync can notice deletions).
        """

    @abc.abstractmethod
    def get_servers(
        self, project_id: str, server_ids: Collection[str], *, changes_since: datetime | None = None
    ) -> dict[str, Server]:
        """The project's servers among ``server_ids``, by id, read together: one listing of the
        project's servers (Nova: ``GET /servers/detail`` filtered by the project, a page per
        thousand servers) instead of a read each, for a caller that watches many at once.

        Without ``changes_since`` an id missing from the answer is not a server of the project
        (deleted, or never booted there).  With it, only those changed at or after that
        instant are returned, and one deleted since then comes back with status DELETED: an id
        missing from the answer did not change.  An empty ``server_ids`` asks nothing.
        """

    @abc.abstractmethod
    def delete_server(self, server_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        """Delete the server; a server that does not exist counts as deleted.  With
        ``wait``, return only once it is gone."""

    @abc.abstractmethod
    def stop_server(self, server_id: str) -> None:
        """Power the server off (status SHUTOFF); already stopped counts as done."""

    @abc.abstractmethod
    def start_server(self, server_id: str) -> None:
        """Power the server on (status ACTIVE); already running counts as done."""

    @abc.abstractmethod
    def resize_server(self, server_id: str, flavor_id: str) -> None:
        """Ask for a resize; the server goes to VERIFY_RESIZE, then :meth:`confirm_resize`.

        Where no host has room, a cloud that can tell at once raises CloudNoValidHost (the
        simulator does); Nova accepts the request, fails while scheduling and leaves the
        server as it was, so compare the flavor after waiting.
        """

    @abc.abstractmethod
    def confirm_resize(self, server_id: str) -> None: ...

    @abc.abstractmethod
    def live_migrate(self, server_id: str, host: str | None = None) -> None:
        """Move a running server to ``host`` (None: let the scheduler choose).

        As with resizes, a migration the cloud cannot carry out raises CloudNoValidHost
        at once or fails after this returns; the server then stays ACTIVE on its old
        host, so compare ``host`` after waiting.
        """

    @abc.abstractmethod
    def cold_migrate(self, server_id: str, host: str | None = None) -> None:
        """Move a server by restarting it elsewhere; it goes to VERIFY_RESIZE, then
        :meth:`confirm_migration`."""

    @abc.abstractmethod
    def confirm_migration(self, server_id: str) -> None: ...

    @abc.abstractmethod
    def rebuild_server(self, server_id: str, image_id: str) -> None:
        """Rebuild the server from image ``image_id`` (Nova's rebuild): its root disk is
        replaced by the image's, everything else stays (id, name, flavor, addresses,
        metadata, key, security groups, attached volumes).  Allowed for a server ACTIVE,
        SHUTOFF or in ERROR (CloudConflict otherwise); returns once the cloud accepted it
        (status REBUILD) and :meth:`wait_for_server` waits for the server to be back: ACTIVE,
        or SHUTOFF for one that was stopped (ERROR ends ACTIVE).  A server already being
        rebuilt from that same image counts as accepted, so a retry is safe.  An image the
        cloud cannot find, or too big for the flavor's disk, raises CloudBadRequest;
        CloudNotFound for an unknown server."""

    @abc.abstractmethod
    def revert_migration(self, server_id: str) -> None:
        """Undo a cold migration waiting in VERIFY_RESIZE: the server goes back to its
        source host (and its former status).  Already reverted counts as done."""

    @abc.abstractmethod
    def list_servers_on_host(self, host: str) -> list[Server]:
        """Every project's servers placed on compute host ``host`` (admin view)."""

    @abc.abstractmethod
    def set_compute_service_enabled(self, host: str, enabled: bool, reason: str = "") -> None:
        """Enable or disable the compute service of ``host`` (a disabled host gets no new
        servers from the scheduler; its hypervisor reports status "disabled").
        Idempotent.  Raises CloudNotFound for an unknown host."""

    # ---- images -----------------------------------------------------------------------

    @abc.abstractmethod
    def create_snapshot(
        self, server_id: str, image_name: str, *, timeout: float = 600.0, idempotency_tag: str | None = None
    ) -> Image:
        """Snapshot the server (Nova's createImage) into a new image of the server's project
        and wait until the image is active; CloudConflict when the server is in a state that
        cannot be snapshotted (building, another snapshot under way, ...).

        With ``idempotency_tag`` (1-255 characters, else CloudBadRequest) the image carries
        it (``Image.tag``) and the call is idempotent by it: while the server's project holds
        an image made with the tag, that image is waited for and returned, and no other is
        made; one that failed (killed, deleted) is deleted and a new one made.
        """

    @abc.abstractmethod
    def find_image_by_tag(self, project_id: str, idempotency_tag: str) -> Image | None:
        """The project's image made by :meth:`create_snapshot` with ``idempotency_tag``, if
        any (the oldest when a race made two)."""

    @abc.abstractmethod
    def upload_image(
        self,
        name: str,
        data: bytes | Path,
        disk_format: str = "qcow2",
        container_format: str = "bare",
        *,
        project_id: str | None = None,
    ) -> Image:
        """Create an image from bytes or a file; owned by ``project_id`` when given."""

    @abc.abstractmethod
    def get_image(self, image_id: str) -> Image:
        """Raises CloudNotFound when there is no such image."""

    @abc.abstractmethod
    def download_image(self, image_id: str, dest_path: Path) -> ImageDownload:
        """Write the image's data to ``dest_path``, streamed a chunk at a time (never the whole
        image in memory), digested in the same pass: returns its size, SHA-256 and digest in the
        image's Glance ``hash_algo``.  Nothing is left at ``dest_path`` if it fails part way.
        The caller compares the digests with :attr:`Image.hash_value` (a mismatch is not raised
        here: the caller decides whether to retry)."""

    @abc.abstractmethod
    def delete_image(self, image_id: str) -> None:
        """Delete the image; an image that does not exist counts as deleted."""

    # ---- capacity ---------------------------------------------------------------------

    @abc.abstractmethod
    def list_hypervisors(self) -> list[Hypervisor]: ...

    @abc.abstractmethod
    def list_aggregates(self) -> list[HostAggregate]:
        """Nova's host aggregates with their hosts."""

    @abc.abstractmethod
    def list_resource_providers(self) -> list[ResourceProvider]:
        """Placement's view: each compute node's inventories and current usages."""

    @abc.abstractmethod
    def list_allocations(self, resource_provider_id: str) -> list[Allocation]:
        """Placement's allocations against one resource provider (an id from
        :meth:`list_resource_providers`): one per consumer, whatever the server's status
        (a stopped or failed server keeps its allocation), including consumers that are
        not servers (a migration's uuid holds the source host's share until the move is
        confirmed).  Their sum is the provider's usages.  Raises CloudNotFound for an
        unknown provider."""

    @abc.abstractmethod
    def capacity_snapshot(self) -> PlacementSnapshot:
        """Every resource provider with its inventories, usages and allocations, in as few
        Placement calls as Placement allows: what callers that walk every provider use
        instead of :meth:`list_resource_providers` plus :meth:`list_allocations` per provider.
        A provider deleted while the snapshot is read is left out of it."""

    # ---- keypairs, security groups, floating IPs, consoles (issue 16) -----------------

    @abc.abstractmethod
    def ensure_keypair(self, project_id: str, name: str, public_key: str) -> KeyPair:
        """Make sure the project has keypair ``name`` holding ``public_key`` (OpenSSH text).

        Idempotent: the same name with the same key (whatever its comment) is a no-op.  The
        same name with a different key raises CloudConflict and changes nothing, so a retry
        of an old request can never swap a key behind its owner's back: delete it first,
        or use a new name.  A key the cloud cannot read raises CloudBadRequest; so does a
        name outside 1-200 characters of letters, digits, ``-``, ``_`` and spaces.
        """

    @abc.abstractmethod
    def delete_keypair(self, project_id: str, name: str) -> None:
        """Delete the project's keypair; one that does not exist counts as deleted.
        Servers booted with it keep the key they got."""

    @abc.abstractmethod
    def ensure_security_group(
        self, project_id: str, name: str, description: str, rules: Sequence[SecurityRule]
    ) -> SecurityGroup:
        """Make sure the project has group ``name`` with exactly ``rules``, idempotently:
        missing rules are added, others removed.

        ``rules`` are the whole truth, egress included: Neutron's default egress rules of a
        new group are removed unless listed (``ALLOW_ALL_EGRESS`` keeps them).  Bad ports,
        CIDRs or protocols raise CloudBadRequest, too many groups CloudQuotaExceeded.
        The project's own "default" group is Neutron's: it cannot be set here.
        """

    @abc.abstractmethod
    def delete_security_group(self, project_id: str, name: str) -> None:
        """Delete the project's group ``name``; one that does not exist counts as deleted.
        Raises CloudConflict while a server still uses it."""

    @abc.abstractmethod
    def list_security_groups(self, project_id: str) -> list[SecurityGroup]:
        """The project's groups, its "default" one included."""

    @abc.abstractmethod
    def set_server_security_groups(self, server_id: str, names: Sequence[str]) -> None:
        """Make the server's security groups exactly ``names`` (groups of its project),
        adding and removing groups on the running server.  Idempotent."""

    @abc.abstractmethod
    def allocate_floating_ip(
        self, project_id: str, external_network: str, idempotency_tag: str, *, first_try: bool = False
    ) -> FloatingIp:
        """Allocate a public address of ``external_network`` (name or id) to the project.

        Idempotent by ``idempotency_tag``: while the project holds an address allocated with
        the tag, that address is returned and no other is allocated.  CloudQuotaExceeded
        when the project's floating IP quota is used up, CloudNotFound for an unknown
        external network.  ``first_try`` as for :meth:`create_server`.
        """

    @abc.abstractmethod
    def associate_floating_ip(self, floating_ip_id: str, server_id: str) -> FloatingIp:
        """Point the address at the server's (first) port.  Already there: a no-op;
        associated with another server: CloudConflict (disassociate first)."""

    @abc.abstractmethod
    def disassociate_floating_ip(self, floating_ip_id: str) -> FloatingIp:
        """Detach the address from its server (kept by the project); already free: a no-op."""

    @abc.abstractmethod
    def release_floating_ip(self, floating_ip_id: str) -> None:
        """Give the address back to the cloud; one that does not exist counts as released."""

    @abc.abstractmethod
    def list_floating_ips(self, project_id: str) -> list[FloatingIp]: ...

    @abc.abstractmethod
    def console_url(self, server_id: str) -> ConsoleUrl:
        """A noVNC console URL for the server (short-lived: Nova's token expires)."""

    @abc.abstractmethod
    def console_log(self, server_id: str, lines: int | None = None) -> str:
        """The last ``lines`` lines of the server's console output (all with None)."""

    # ---- volumes, volume snapshots and backups (issue 16) -----------------------------

    @abc.abstractmethod
    def list_volume_types(self) -> list[VolumeType]:
        """The volume types a volume can be created with, sorted by name."""

    @abc.abstractmethod
    def create_volume(
        self,
        project_id: str,
        name: str,
        size_gb: int,
        volume_type: str | None,
        idempotency_tag: str,
        *,
        snapshot_id: str | None = None,
        image_id: str | None = None,
        first_try: bool = False,
    ) -> Volume:
        """Create a volume in the project (it counts against the project's volume quota),
        empty or, with ``snapshot_id``, a copy of that snapshot (``size_gb`` at least the
        snapshot's), or, with ``image_id``, holding the image's bytes from its start
        (``size_gb`` at least the image's size in whole GB; the project must be able to read
        the image).  Both at once raise CloudBadRequest.  ``volume_type`` None takes the
        cloud's default type.

        Idempotent by ``idempotency_tag``: while the project has a volume created with the
        tag, that volume is returned as it is (even in error) and no other is created.
        Returns once the cloud accepted it (``creating``); :meth:`wait_volume` waits for
        ``available``.  A size that is not a positive whole number of GB raises
        CloudBadRequest before anything reaches the cloud; CloudQuotaExceeded when the
        project's volume or gigabyte quota refuses it; CloudNotFound for an unknown type,
        snapshot or image.  ``first_try`` as for :meth:`create_server`.
        """

    @abc.abstractmethod
    def upload_volume_to_image(self, volume_id: str, image_name: str) -> Image:
        """Copy the volume's bytes into a new raw image ``image_name`` owned by the volume's
        project (Cinder's upload-to-image), so they can leave the cloud the way a server's
        snapshot does (:meth:`download_image`, then :meth:`upload_image` elsewhere, then
        :meth:`create_volume` with ``image_id`` there).

        Idempotent by name: while the volume's project owns an image ``image_name`` that has
        not failed, that image is returned and no other is made.  The volume must be
        ``available`` (detached): CloudConflict otherwise (Cinder uploads an attached volume
        only where its operator allowed forcing it); CloudNotFound for an unknown volume.
        Returns once the cloud accepted it: the volume is ``uploading`` until the image is
        active (:meth:`wait_for_image`), then ``available`` again (:meth:`wait_volume`).
        """

    @abc.abstractmethod
    def find_volume_by_tag(self, project_id: str, idempotency_tag: str) -> Volume | None:
        """The project's volume created with ``idempotency_tag``, if any."""

    @abc.abstractmethod
    def get_volume(self, volume_id: str) -> Volume:
        """Raises CloudNotFound when there is no such volume."""

    @abc.abstractmethod
    def list_volumes(self, project_id: str) -> list[Volume]:
        """The project's volumes, sorted by name then id."""

    @abc.abstractmethod
    def attach_volume(self, server_id: str, volume_id: str) -> None:
        """Attach the volume to the server (through Nova, so the server sees a disk).

        Idempotent: a volume already attached (or being attached) to that server is done.
        Returns once the cloud accepted it; the volume goes ``in-use``
        (:meth:`wait_volume`).  CloudConflict when the volume is attached to another
        server or is not ``available``; CloudNotFound for an unknown server or volume.
        """

    @abc.abstractmethod
    def detach_volume(self, server_id: str, volume_id: str) -> None:
        """Detach the volume from the server; not attached to it counts as detached.
        Returns once the cloud accepted it; the volume goes back to ``available``."""

    @abc.abstractmethod
    def extend_volume(self, volume_id: str, new_size_gb: int) -> None:
        """Grow the volume to ``new_size_gb``, attached or not.  Already that size is done;
        a smaller size raises CloudBadRequest (volumes only grow).  Returns once the cloud
        accepted it; the volume is back to its former status with the new size when done."""

    @abc.abstractmethod
    def delete_volume(self, volume_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        """Delete the volume; one that does not exist counts as deleted.  CloudConflict
        while it is attached, has snapshots or is busy (backing up, ...).  With ``wait``,
        return only once it is gone."""

    @abc.abstractmethod
    def create_volume_snapshot(
        self, volume_id: str, name: str, idempotency_tag: str, *, force: bool = True
    ) -> VolumeSnapshot:
        """Snapshot the volume, in the volume's project, idempotently by
        ``idempotency_tag`` (per volume).  An attached volume is snapshotted as it is
        (crash-consistent) unless ``force`` is False, which refuses it with CloudConflict.
        Returns once the cloud accepted it; :meth:`wait_volume_snapshot` waits."""

    @abc.abstractmethod
    def get_volume_snapshot(self, snapshot_id: str) -> VolumeSnapshot:
        """Raises CloudNotFound when there is no such snapshot."""

    @abc.abstractmethod
    def list_volume_snapshots(self, project_id: str) -> list[VolumeSnapshot]:
        """The project's volume snapshots, sorted by name then id."""

    @abc.abstractmethod
    def delete_volume_snapshot(self, snapshot_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        """Delete the snapshot; one that does not exist counts as deleted (volumes made
        from it keep their data)."""

    @abc.abstractmethod
    def create_volume_backup(
        self, volume_id: str, name: str, idempotency_tag: str, *, incremental: bool = False
    ) -> VolumeBackup:
        """Back the volume up into the cloud's backup store, in the volume's project,
        idempotently by ``idempotency_tag`` (per volume).  An attached volume is backed up
        as it is (crash-consistent).  ``incremental`` stores only what changed since the
        volume's last backup (CloudBadRequest when it has none).  The volume is
        ``backing-up`` until the backup is ``available`` (:meth:`wait_volume_backup`);
        CloudQuotaExceeded when the project's backup quota refuses it."""

    @abc.abstractmethod
    def get_volume_backup(self, backup_id: str) -> VolumeBackup:
        """Raises CloudNotFound when there is no such backup."""

    @abc.abstractmethod
    def list_volume_backups(self, project_id: str) -> list[VolumeBackup]:
        """The project's volume backups, sorted by name then id."""

    @abc.abstractmethod
    def restore_volume_backup(self, backup_id: str, *, volume_id: str | None = None, name: str | None = None) -> Volume:
        """Write the backup's data into volume ``volume_id`` (``available``, at least the
        backup's size; its data is replaced), or into a new volume named ``name`` in the
        backup's project.  Not idempotent in the second form: a caller that must retry
        creates the target with :meth:`create_volume` (idempotent) and restores into it.
        Returns the target volume once the cloud accepted; it is ``restoring-backup``
        until :meth:`wait_volume` sees it ``available``."""

    @abc.abstractmethod
    def delete_volume_backup(self, backup_id: str, *, wait: bool = False, timeout: float = 300.0) -> None:
        """Delete the backup; one that does not exist counts as deleted.  CloudConflict
        while it is being made or restored, or while a newer incremental backup depends
        on it."""

    # ---- helpers built on the primitives above ----------------------------------------

    def iter_servers(
        self,
        project_id: str | None = None,
        *,
        page_size: int = 100,
        changes_since: datetime | None = None,
    ) -> Iterator[Server]:
        """Every server, following pages until the last one."""
        marker: str | None = None
        while True:
            page = self.list_servers(project_id, limit=page_size, marker=marker, changes_since=changes_since)
            yield from page.servers
            if page.next_marker is None:
                return
            marker = page.next_marker

    def wait_for_server(
        self,
        server_id: str,
        statuses: Set[str] = frozenset({"ACTIVE"}),
        timeout: float = 300.0,
        fail_statuses: Set[str] = DEFAULT_FAIL_STATUSES,
    ) -> Server:
        """Poll until the server is in one of ``statuses`` with no task in progress.

        Raises CloudNoValidHost or CloudError (carrying the server's fault message) when it
        lands in one of ``fail_statuses`` instead, and CloudTimeout after ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        while True:
            server = self.get_server(server_id)
            if server.status in statuses and server.task_state is None:
                return server
            if server.status in fail_statuses and server.status not in statuses:
                raise server_failure(server)
            if time.monotonic() >= deadline:
                raise CloudTimeout(
                    f"server {server.name} ({server_id}) did not reach {'/'.join(sorted(statuses))} "
                    f"within {timeout:.0f}s",
                    f"status {server.status}, task {server.task_state or '-'}",
                )
            time.sleep(self.poll_interval)

    def wait_for_image(self, image_id: str, timeout: float = 600.0) -> Image:
        """Poll until the image is active; CloudError when it ends killed or deleted,
        CloudTimeout after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            image = self.get_image(image_id)
            if image.status == "active":
                return image
            if image.status in FAILED_IMAGE_STATUSES:
                raise CloudError(f"image {image.name} ({image_id}) is {image.status}")
            if time.monotonic() >= deadline:
                raise CloudTimeout(
                    f"image {image.name} ({image_id}) did not become active within {timeout:.0f}s",
                    f"status {image.status}",
                )
            time.sleep(self.poll_interval)

    def wait_for_server_deleted(self, server_id: str, timeout: float = 300.0) -> None:
        """Poll until the server no longer exists."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                server = self.get_server(server_id)
            except CloudNotFound:
                return
            if server.status == "DELETED":
                return
            if time.monotonic() >= deadline:
                raise CloudTimeout(
                    f"server {server_id} was not deleted within {timeout:.0f}s",
                    f"status {server.status}, task {server.task_state or '-'}",
                )
            time.sleep(self.poll_interval)

    def wait_volume(
        self, volume_id: str, statuses: Set[str] = frozenset({"available"}), timeout: float = 300.0
    ) -> Volume:
        """Poll until the volume is in one of ``statuses``; CloudError when it lands in an
        error status instead, CloudTimeout after ``timeout`` s."""
        return _wait_status(self, "volume", volume_id, self.get_volume, statuses, timeout)

    def wait_volume_snapshot(
        self, snapshot_id: str, statuses: Set[str] = frozenset({"available"}), timeout: float = 300.0
    ) -> VolumeSnapshot:
        return _wait_status(self, "volume snapshot", snapshot_id, self.get_volume_snapshot, statuses, timeout)

    def wait_volume_backup(
        self, backup_id: str, statuses: Set[str] = frozenset({"available"}), timeout: float = 600.0
    ) -> VolumeBackup:
        return _wait_status(self, "volume backup", backup_id, self.get_volume_backup, statuses, timeout)

    def wait_volume_deleted(self, volume_id: str, timeout: float = 300.0) -> None:
        _wait_gone(self, "volume", volume_id, self.get_volume, timeout)

    def wait_volume_snapshot_deleted(self, snapshot_id: str, timeout: float = 300.0) -> None:
        _wait_gone(self, "volume snapshot", snapshot_id, self.get_volume_snapshot, timeout)

    def wait_volume_backup_deleted(self, backup_id: str, timeout: float = 300.0) -> None:
        _wait_gone(self, "volume backup", backup_id, self.get_volume_backup, timeout)


def server_failure(server: Server) -> CloudError:
    """The error that explains why ``server`` ended in a failure status."""
    fault = server.fault_message or ""
    if NO_VALID_HOST_MARKER in fault.lower():
        return CloudNoValidHost(f"no compute host has room for server {server.name}", fault)
    return CloudError(f"server {server.name} ({server.id}) went to {server.status}", fault)


# ---- rules shared by every provider's volumes (issue 16) -------------------------------

#: What the volume waits need of the thing they poll.
_Polled = TypeVar("_Polled", Volume, VolumeSnapshot, VolumeBackup)


def _wait_status(
    provider: CloudProvider,
    kind: str,
    resource_id: str,
    get: Callable[[str], _Polled],
    statuses: Set[str],
    timeout: float,
) -> _Polled:
    deadline = time.monotonic() + timeout
    while True:
        found = get(resource_id)
        if found.status in statuses:
            return found
        if found.status.startswith(VOLUME_FAILURE_PREFIX):
            raise CloudError(f"{kind} {found.name or resource_id} ({resource_id}) went to {found.status}")
        if time.monotonic() >= deadline:
            raise CloudTimeout(
                f"{kind} {found.name or resource_id} ({resource_id}) did not reach "
                f"{'/'.join(sorted(statuses))} within {timeout:.0f}s",
                f"status {found.status}",
            )
        time.sleep(provider.poll_interval)


def _wait_gone(
    provider: CloudProvider, kind: str, resource_id: str, get: Callable[[str], _Polled], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = get(resource_id)
        except CloudNotFound:
            return
        if found.status == "error_deleting":
            raise CloudError(f"{kind} {resource_id} could not be deleted", f"status {found.status}")
        if time.monotonic() >= deadline:
            raise CloudTimeout(f"{kind} {resource_id} was not deleted within {timeout:.0f}s", f"status {found.status}")
        time.sleep(provider.poll_interval)
