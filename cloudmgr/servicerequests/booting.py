"""Booting a request's servers through a sliding window (issue 20): at most ``window`` of them
(the setting ``max_concurrent_boots``) building on the cloud at once, the next one booted as soon
as one is ACTIVE or has failed, and the servers building watched together, with one listing of
the project's servers per poll (:meth:`CloudProvider.get_servers`) instead of a read each.

Booted in batches, each batch waited for its slowest server and the cloud had nothing to build
between two batches: 100 servers three at a time took 34 rounds of the slowest of three.

What a boot keeps from before:

* the classified rule is checked again right before each refill's boots (placement_metadata);
  a refusal fails every server not yet asked of the cloud and is said on the request;
* the PENDING servers about to boot are claimed first boots (claim_first_boots), so theirs skip
  the look-up by key; a server asked by a run that stopped looks its key up first;
* the cloud's answers (its server ids) are recorded (record_building) before anything else
  happens, even when the cloud stops answering half way;
* a server that failed to boot or to build fails alone, with its reason code (fail_server);
* a server that reached ACTIVE is recorded (record_active) and gets its parts (complete_parts,
  phase by phase) while the next ones build;
* an unreachable cloud stops the run (RetryLater); the next run takes the servers building over
  (their cloud ids are recorded) and boots the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cloudmgr.cloud import CloudError, CloudNotFound, CloudTimeout, CloudUnavailable, ServerSpec
from cloudmgr.cloud.provider import DEFAULT_FAIL_STATUSES, CloudProvider, server_failure
from cloudmgr.cloud.types import Server
from cloudmgr.db import Database
from cloudmgr.messages import Message
from cloudmgr.servicerequests.completing import ActiveServer, complete_parts
from cloudmgr.servicerequests.provisioning import (
    FAILURE_REASONS,
    ProvisioningTarget,
    claim_first_boots,
    fail_server,
    placement_metadata,
    record_active,
    record_building,
    server_rows,
)
from cloudmgr.servicerequests.states import ServerState
from cloudmgr.workqueue.services import RetryLater

#: The states of a server whose boot is still to be asked (or asked, the answer lost).
BOOTABLE = frozenset({ServerState.PENDING, ServerState.BUILDING})

#: A poll asks the cloud what changed since the previous poll began, this much earlier: room for
#: cloudmgr's clock and the cloud's to differ.
CLOCK_MARGIN = timedelta(seconds=60)

#: One poll in this many reads every server watched (no "changed since"), so a clock off by more
#: than the margin can delay noticing a server, never lose it.
FULL_POLL_EVERY = 30


@dataclass
class _Building:
    """A server on its way to ACTIVE: its row, its cloud id, and what was last seen of it."""

    row_id: int
    cloud_id: str
    name: str
    deadline: float  # time.monotonic() past which it has taken too long
    status: str = "BUILD"


@dataclass
class _Window:
    db: Database
    provider: CloudProvider
    target: ProvisioningTarget
    security_groups: tuple[str, ...]
    size: int
    timeout: float
    keep_alive: Callable[[], None]
    queue: list[int]
    building: dict[str, _Building] = field(default_factory=dict)  # by cloud id
    refusal: str | Message | None = None
    polls: int = 0
    #: What the next poll asks for: what changed since then, or None: every server watched.
    since: datetime | None = None

    # --- booting ----------------------------------------------------------------------------

    def refill(self) -> None:
        """Boot the next servers of the queue until ``size`` are building or none is left."""
        while self.queue and len(self.building) < self.size:
            free = self.size - len(self.building)
            next_ids, self.queue = self.queue[:free], self.queue[free:]
            # Checked before every refill: a long request must not go on booting a system
            # reclassified meanwhile.  A refusal fails the pending servers (the rows read next).
            placement, refused = placement_metadata(self.db, self.target.request_id)
            self.refusal = self.refusal or refused
            self._boot(server_rows(self.db, next_ids), placement)

    def _boot(self, rows: list[tuple[int, str, str, str, str | None]], placement: dict[str, str]) -> None:
        target = self.target
        assert target.project_id is not None and target.network_id is not None
        first_boots = claim_first_boots(self.db, [row[0] for row in rows if row[3] == ServerState.PENDING])
        booted: list[tuple[int, str]] = []
        try:
            for server_id, name, key, state, cloud_server_id in rows:
                if state == ServerState.BUILDING and cloud_server_id:
                    self.watch(server_id, cloud_server_id, name)  # booted meanwhile by another run
                    continue
                if state not in BOOTABLE:
                    continue  # refused, cancelled or failed meanwhile
                spec = ServerSpec(
                    name=name,
                    flavor_id=target.flavor_ref,
                    image_id=target.image_ref or "",
                    network_id=target.network_id,
                    idempotency_key=key,
                    metadata={
                        **placement,
                        "cloudmgr_request": str(target.request_id),
                        "cloudmgr_server": str(server_id),
                        "cloudmgr_department": target.department_key,
                    },
                    key_name=target.key_name,
                    user_data=target.user_data,
                    security_groups=self.security_groups,
                )
                first_try = server_id in first_boots
                try:
                    cloud_server = self.provider.create_server(target.project_id, spec, first_try=first_try)
                except CloudUnavailable as exc:
                    raise RetryLater(f"cloud {target.cloud_key} unreachable: {exc}") from exc
                except CloudError as exc:
                    self._fail(server_id, exc)
                    continue
                booted.append((server_id, cloud_server.id))
                self.watch(server_id, cloud_server.id, name)
                if not first_try:
                    # Found by its key, maybe long since ACTIVE (it changes no more): the next
                    # poll reads every server watched.
                    self.since = None
        finally:
            record_building(self.db, booted)

    def _fail(self, server_id: int, error: CloudError) -> None:
        reason_code = FAILURE_REASONS.get(type(error), "cloud_error")
        fail_server(self.db, server_id, self.target.cloud_key, error, reason_code=reason_code)

    def watch(self, row_id: int, cloud_id: str, name: str) -> None:
        self.building[cloud_id] = _Building(row_id, cloud_id, name, time.monotonic() + self.timeout)

    # --- watching ---------------------------------------------------------------------------

    def poll(self) -> list[ActiveServer]:
        """One listing of the servers building: those now ACTIVE are recorded and returned,
        those failed (ERROR, deleted, too long) fail, the rest are still building."""
        target = self.target
        assert target.project_id is not None
        self.polls += 1
        read_all = self.since is None or self.polls % FULL_POLL_EVERY == 0
        began = datetime.now(UTC)
        try:
            seen = self.provider.get_servers(
                target.project_id, list(self.building), changes_since=None if read_all else self.since
            )
        except CloudUnavailable as exc:
            raise RetryLater(f"cloud {target.cloud_key} unreachable: {exc}") from exc
        except CloudError as exc:
            # The servers go on building: the next run takes them over.
            raise RetryLater(f"cloud {target.cloud_key}: the servers building could not be read: {exc}") from exc
        self.since = began - CLOCK_MARGIN
        now = time.monotonic()
        active: list[ActiveServer] = []
        for cloud_id, watched in list(self.building.items()):
            try:
                final = self._outcome(watched, seen.get(cloud_id), read_all, now)
            except CloudUnavailable as exc:
                raise RetryLater(f"cloud {target.cloud_key} unreachable: {exc}") from exc
            except CloudError as exc:
                del self.building[cloud_id]
                self._fail(watched.row_id, exc)
                continue
            if final is None:
                continue
            del self.building[cloud_id]
            record_active(self.db, watched.row_id, final)
            active.append(ActiveServer(watched.row_id, final.id))
        return active

    def _outcome(self, watched: _Building, server: Server | None, read_all: bool, now: float) -> Server | None:
        """The server once ACTIVE, None while it builds; the CloudError that fails it."""
        if server is None and read_all:
            # Not in a listing of every server watched: gone, unless the listing missed it.
            server = self.provider.get_server(watched.cloud_id)
        if server is not None:
            watched.status = server.status
            if server.status == "ACTIVE" and server.task_state is None:
                return server
            if server.status == "DELETED":
                raise CloudNotFound(f"server {watched.name} ({watched.cloud_id}) was deleted while it was building")
            if server.status in DEFAULT_FAIL_STATUSES:
                raise server_failure(server)
        if now >= watched.deadline:
            raise CloudTimeout(
                f"server {watched.name} ({watched.cloud_id}) did not reach ACTIVE within {self.timeout:.0f}s",
                f"status {watched.status}",
            )
        return None

    # --- the whole run ----------------------------------------------------------------------

    def run(self) -> str | Message | None:
        self.refill()
        while self.building:
            time.sleep(self.provider.poll_interval)
            active = self.poll()
            # The freed places are taken before the parts are made: the cloud builds meanwhile.
            self.refill()
            if active:
                complete_parts(self.db, self.provider, self.target, active, self.keep_alive)
            self.keep_alive()
        return self.refusal


def boot_in_window(
    db: Database,
    provider: CloudProvider,
    target: ProvisioningTarget,
    todo: list[int],
    security_groups: tuple[str, ...],
    *,
    window: int,
    timeout: float,
    keep_alive: Callable[[], None],
) -> str | Message | None:
    """Boot the servers of ``todo`` not yet booted, at most ``window`` building at once, watch
    them and those an earlier run booted to ACTIVE (``timeout`` seconds each), and make the
    parts of each as it gets there.  Returns the classified rule's refusal, if it refused them
    (their servers are failed)."""
    if window < 1:
        raise ValueError(f"at least one server must be allowed to build at once, not {window}")
    runner = _Window(db, provider, target, security_groups, window, timeout, keep_alive, queue=[])
    for server_id, name, _key, state, cloud_server_id in server_rows(db, todo):
        if state == ServerState.BUILDING and cloud_server_id:
            runner.watch(server_id, cloud_server_id, name)  # booted by an earlier run: watched
        elif state in BOOTABLE:
            runner.queue.append(server_id)
    return runner.run()
