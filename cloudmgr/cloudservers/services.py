"""Syncing a cloud's servers into the mirror, and reading it.

:func:`sync_cloud_servers` runs one sync of one cloud: a short transaction decides the mode, each
page is asked of the cloud outside any transaction and written in one of its own (no database
lock is held while the cloud answers), and a last one removes what a full listing did not see and
moves the watermark:

* **full**: every page of the listing (``page_size`` servers, Nova's maximum 1000 by default),
  one page at a time: each page's rows are read, compared, inserted or updated and marked with
  the sync's generation number, then the page is dropped; the rows of the cloud not marked at the
  end are servers the cloud no longer has, and are removed.  Memory holds one page, never the
  whole cloud (no list of every server, no set of every id).
* **delta**: only what changed since the stored watermark, less an overlap (``changes-since`` is
  inclusive and the cloud's clock is not ours): changed or new servers are written, servers the
  cloud reports DELETED are removed.
* **auto**: full when the cloud has no watermark yet or its last full sync is older than
  ``SyncPolicy.full_every`` (a cloud forgets deleted servers once its operator archives them, so a
  delta alone would never see some deletions), delta otherwise.

The counts say what happened to the mirror: added, changed, removed, listed but unchanged, and
touched (listed with nothing new but its ``updated_at``: Nova's periodic tasks move it on idle
servers, so a lab's changes-since lists most of them every minute; rewritten, not a change).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudmgr.cloud.errors import CloudError
from cloudmgr.cloud.provider import CloudProvider
from cloudmgr.cloud.types import IDEMPOTENCY_METADATA_KEY, Server, ServerPage
from cloudmgr.cloudservers import metrics
from cloudmgr.cloudservers.errors import SyncRefused, UnknownCloud
from cloudmgr.cloudservers.models import MirroredServer, ServerSyncState
from cloudmgr.config import Settings
from cloudmgr.db import Database, utcnow
from cloudmgr.organisation.models import Cloud
from cloudmgr.providers import ProviderRegistry

log = logging.getLogger(__name__)

#: Nova's largest page (its ``[api] max_limit`` default): fewest round trips.
DEFAULT_PAGE_SIZE = 1000


class SyncMode(StrEnum):
    AUTO = "auto"
    FULL = "full"
    DELTA = "delta"


@dataclass(frozen=True)
class SyncPolicy:
    """When auto mode does a full sync, how far a delta looks back beyond the watermark, the page size."""

    full_every: timedelta = timedelta(hours=24)
    overlap: timedelta = timedelta(seconds=60)
    page_size: int = DEFAULT_PAGE_SIZE

    @classmethod
    def from_settings(cls, settings: Settings | None) -> SyncPolicy:
        if settings is None:
            return cls()
        return cls(
            full_every=timedelta(seconds=settings.server_sync_full_seconds),
            overlap=timedelta(seconds=settings.server_sync_overlap_seconds),
            page_size=settings.server_sync_page_size,
        )


@dataclass
class SyncResult:
    cloud_key: str
    mode: SyncMode  # what ran: FULL or DELTA
    listed: int = 0  # servers the cloud listed (DELETED ones of a delta included)
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    touched: int = 0  # listed with nothing but a newer updated_at (rewritten, not a change)
    servers: int = 0  # rows mirrored afterwards
    pages: int = 0
    seconds: float = 0.0
    changes_since: datetime | None = None
    watermark: datetime | None = None

    def summary(self) -> str:
        since = f" since {self.changes_since.isoformat()}" if self.changes_since else ""
        return (
            f"{self.cloud_key}: {self.mode} sync{since} in {self.seconds:.2f}s: listed {self.listed} "
            f"({self.pages} page(s)), added {self.added}, changed {self.changed}, removed {self.removed}, "
            f"touched {self.touched}, unchanged {self.unchanged}; {self.servers} server(s) mirrored"
        )


@dataclass
class _Counts:
    listed: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    touched: int = 0  # listed with only a newer updated_at
    pages: int = 0
    newest: datetime | None = None  # the newest updated_at listed

    def saw(self, moment: datetime | None) -> None:
        if moment is not None and (self.newest is None or moment > self.newest):
            self.newest = moment


# The columns a sync compares (and writes) besides the keys and the generation.
_COMPARED = (
    "project_id",
    "name",
    "status",
    "host",
    "flavor_id",
    "flavor_name",
    "image_id",
    "idempotency_key",
    "server_metadata",
    "created_at",
    "updated_at",
)


def _row_values(server: Server) -> dict[str, Any]:
    return {
        "project_id": server.project_id,
        "name": server.name[:255],
        "status": server.status[:32],
        "host": server.host,
        "flavor_id": server.flavor_id,
        "flavor_name": server.flavor_name,
        "image_id": server.image_id,
        "idempotency_key": server.metadata.get(IDEMPOTENCY_METADATA_KEY),
        "server_metadata": dict(server.metadata),
        "created_at": _utc(server.created_at),
        "updated_at": _utc(server.updated_at),
    }


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _pages(
    provider: CloudProvider, project_id: str | None, page_size: int, changes_since: datetime | None
) -> Iterator[ServerPage]:
    marker: str | None = None
    while True:
        page = provider.list_servers(project_id, limit=page_size, marker=marker, changes_since=changes_since)
        yield page
        if page.next_marker is None:
            return
        marker = page.next_marker


def _apply_page(session: Session, cloud_id: int, generation: int, servers: Sequence[Server], counts: _Counts) -> None:
    """Write one page: new rows inserted, changed rows updated, DELETED servers removed; every
    row listed (and not deleted) marked with ``generation``."""
    counts.pages += 1
    counts.listed += len(servers)
    gone = [s.id for s in servers if s.status == "DELETED"]
    # By id: a server listed twice on one page is written once.
    live = list({s.id: s for s in servers if s.status != "DELETED"}.values())
    for server in servers:
        counts.saw(_utc(server.updated_at))
    if gone:
        result = session.execute(
            delete(MirroredServer)
            .where(MirroredServer.cloud_id == cloud_id, MirroredServer.server_id.in_(gone))
            .execution_options(synchronize_session=False)
        )
        counts.removed += max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
    if not live:
        return
    columns = [getattr(MirroredServer, name) for name in _COMPARED]
    stored = {
        row[0]: (tuple(row[1:-1]), row[-1])
        for row in session.execute(
            select(MirroredServer.server_id, *columns, MirroredServer.seen_generation).where(
                MirroredServer.cloud_id == cloud_id, MirroredServer.server_id.in_([s.id for s in live])
            )
        )
    }
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    same: list[str] = []  # unchanged, to be marked with this generation
    unchanged = touched = 0
    for server in live:
        values = _row_values(server)
        known = stored.get(server.id)
        if known is None:
            new.append({"cloud_id": cloud_id, "server_id": server.id, "seen_generation": generation, **values})
        elif known[0] != tuple(values[name] for name in _COMPARED):
            changed.append({"cloud_id": cloud_id, "server_id": server.id, "seen_generation": generation, **values})
            # Only its updated_at moved (Nova's periodic tasks touch servers): written, counted
            # as touched, not as a change of the server.
            touched += known[0][:-1] == tuple(values[name] for name in _COMPARED[:-1])
        else:
            unchanged += 1
            if known[1] != generation:
                same.append(server.id)
    if new:
        session.execute(insert(MirroredServer), new)
    if changed:
        session.execute(update(MirroredServer), changed)
    if same:
        session.execute(
            update(MirroredServer)
            .where(
                MirroredServer.cloud_id == cloud_id,
                MirroredServer.server_id.in_(same),
                MirroredServer.seen_generation != generation,
            )
            .values(seen_generation=generation)
            .execution_options(synchronize_session=False)
        )
    counts.added += len(new)
    counts.changed += len(changed) - touched
    counts.touched += touched
    counts.unchanged += unchanged


def _locked_state(session: Session, cloud_id: int) -> ServerSyncState:
    state = session.get(ServerSyncState, cloud_id, with_for_update=True)
    if state is not None:
        return state
    # The first sync of a cloud creates its row; two syncs starting at once (two schedulers, a CLI
    # run beside the job) both find none, and the second insert waits for the first and then meets
    # the primary key: in a savepoint, so it can lock the row the first one made instead.
    try:
        with session.begin_nested():
            state = ServerSyncState(cloud_id=cloud_id, generation=0, servers=0)
            session.add(state)
        return state
    except IntegrityError:
        query = select(ServerSyncState).where(ServerSyncState.cloud_id == cloud_id).with_for_update()
        return session.scalars(query.execution_options(populate_existing=True)).one()


def choose_mode(state: ServerSyncState | None, policy: SyncPolicy, now: datetime) -> SyncMode:
    """Auto mode's choice: full without a watermark or when the last full sync is too old."""
    if state is None or state.watermark is None or state.last_full_sync_at is None:
        return SyncMode.FULL
    if now - state.last_full_sync_at >= policy.full_every:
        return SyncMode.FULL
    return SyncMode.DELTA


def sync_cloud_servers(
    db: Database,
    provider: CloudProvider,
    cloud_id: int,
    *,
    mode: SyncMode = SyncMode.AUTO,
    policy: SyncPolicy | None = None,
    project_id: str | None = None,
) -> SyncResult:
    """Sync the mirror of cloud ``cloud_id`` from ``provider`` (see the module's doc).

    ``project_id``: a full sync of that project's servers only (rows of other projects are left as
    they are, and the cloud's watermark and last full sync do not move).  A failure of the cloud
    half way keeps the pages already written (what the cloud said of those servers) but removes
    nothing and leaves the watermark where it was; it is kept on the sync state (``last_error``)
    and raised."""
    policy = policy or SyncPolicy()
    if not 1 <= policy.page_size <= 10_000:
        raise SyncRefused(f"a page size of 1 to 10000 servers, not {policy.page_size}")
    if project_id is not None and mode == SyncMode.DELTA:
        raise SyncRefused("a sync of one project is a full sync: the watermark is the whole cloud's")
    started_clock = time.perf_counter()
    started = utcnow()
    cloud_key = str(cloud_id)
    ran = SyncMode.FULL if project_id is not None else mode
    try:
        # 1. Decide (a short transaction): the mode, and for a full sync its generation, stored
        # now so that a delta running meanwhile marks its rows with it (they are not removed).
        with db.unit_of_work() as uow:
            session = uow.session
            key = session.scalar(select(Cloud.key).where(Cloud.id == cloud_id))
            if key is None:
                raise UnknownCloud(f"no cloud with id {cloud_id}")
            cloud_key = key
            state = _locked_state(session, cloud_id)
            if ran == SyncMode.AUTO:
                ran = choose_mode(state, policy, started)
            if ran == SyncMode.DELTA and state.watermark is None:
                raise SyncRefused(f"{cloud_key}: no full sync yet, so no watermark for a delta")
            result = SyncResult(cloud_key=cloud_key, mode=ran)
            if ran == SyncMode.FULL:
                state.generation += 1
            generation = state.generation
            since: datetime | None = None
            if ran == SyncMode.DELTA:
                assert state.watermark is not None
                since = state.watermark - policy.overlap
        # 2. Each page: asked of the cloud outside any transaction, then written in one of its
        # own, so no database lock is held while the cloud answers (a full listing of a large
        # cloud takes a minute; on SQLite every writer would wait that long).
        counts = _Counts()
        result.changes_since = since
        for page in _pages(provider, project_id if ran == SyncMode.FULL else None, policy.page_size, since):
            with db.unit_of_work() as uow:
                _apply_page(uow.session, cloud_id, generation, page.servers, counts)
        # 3. The listing is complete: what a full sync did not see is gone; the watermark moves.
        with db.unit_of_work() as uow:
            session = uow.session
            state = _locked_state(session, cloud_id)
            if ran == SyncMode.FULL:
                # Rows of an older generation only: a full sync started after this one has
                # marked what it saw with a newer one.
                unseen = delete(MirroredServer).where(
                    MirroredServer.cloud_id == cloud_id, MirroredServer.seen_generation < generation
                )
                if project_id is not None:
                    unseen = unseen.where(MirroredServer.project_id == project_id)
                removed = session.execute(unseen.execution_options(synchronize_session=False))
                counts.removed += max(removed.rowcount or 0, 0)  # type: ignore[attr-defined]
                if project_id is None:
                    state.last_full_sync_at = started
                    # Never later than when the listing began by our clock: a server changed on a
                    # page already read is then seen by the next delta.
                    state.watermark = min(counts.newest, started) if counts.newest else None
            else:
                assert state.watermark is not None
                state.last_delta_sync_at = started
                if counts.newest is not None:
                    state.watermark = max(state.watermark, min(counts.newest, started))
            result.servers = (
                session.scalar(
                    select(func.count()).select_from(MirroredServer).where(MirroredServer.cloud_id == cloud_id)
                )
                or 0
            )
            result.listed, result.added, result.changed = counts.listed, counts.added, counts.changed
            result.removed, result.unchanged, result.pages = counts.removed, counts.unchanged, counts.pages
            result.touched = counts.touched
            result.watermark = state.watermark
            result.seconds = time.perf_counter() - started_clock
            state.last_mode = str(ran)
            state.last_seconds = result.seconds
            state.servers = result.servers
            state.last_listed, state.last_added, state.last_changed = result.listed, result.added, result.changed
            # The state keeps no touched count: a touched server is one that did not change.
            state.last_removed, state.last_unchanged = result.removed, result.unchanged + result.touched
            state.last_error = None
    except CloudError as exc:
        _record_failure(db, cloud_id, f"{ran} sync: {exc}")
        metrics.SYNC_RUNS.labels(cloud=cloud_key, mode=str(ran), outcome="failure").inc()
        raise
    metrics.record(result)
    return result


def _record_failure(db: Database, cloud_id: int, error: str) -> None:
    try:
        with db.unit_of_work() as uow:
            state = _locked_state(uow.session, cloud_id)
            state.last_error, state.last_error_at = error[:1000], utcnow()
    except Exception:  # the sync's own failure is what the caller must see
        log.exception("could not record the failed server sync of cloud %s", cloud_id)


@dataclass
class CloudSyncOutcome:
    cloud_key: str
    result: SyncResult | None = None
    error: str | None = None


@dataclass
class SyncRun:
    outcomes: list[CloudSyncOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[CloudSyncOutcome]:
        return [o for o in self.outcomes if o.error is not None]


def sync_clouds(
    db: Database,
    registry: ProviderRegistry,
    *,
    cloud_key: str | None = None,
    mode: SyncMode = SyncMode.AUTO,
    policy: SyncPolicy | None = None,
) -> SyncRun:
    """Sync every enabled cloud's mirror (or the one named), one after the other; a cloud that
    fails is reported and the others still synced.  An unknown or disabled ``cloud_key`` raises."""
    with db.unit_of_work() as uow:
        query = select(Cloud.id, Cloud.key, Cloud.os_cloud, Cloud.region, Cloud.enabled).order_by(Cloud.key)
        if cloud_key is not None:
            query = query.where(Cloud.key == cloud_key)
        clouds = list(uow.session.execute(query))
    if cloud_key is not None and not clouds:
        raise UnknownCloud(f"no cloud {cloud_key!r}")
    if cloud_key is not None and not clouds[0].enabled:
        raise SyncRefused(f"cloud {cloud_key!r} is disabled")
    run = SyncRun()
    for cloud in clouds:
        if not cloud.enabled:
            continue
        provider = registry.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
        try:
            result = sync_cloud_servers(db, provider, cloud.id, mode=mode, policy=policy)
        except CloudError as exc:
            run.outcomes.append(CloudSyncOutcome(cloud.key, error=str(exc)))
            continue
        run.outcomes.append(CloudSyncOutcome(cloud.key, result=result))
    return run


# ---- reading the mirror -----------------------------------------------------------------------


def _to_server(row: MirroredServer) -> Server:
    return Server(
        id=row.server_id,
        name=row.name,
        status=row.status,
        project_id=row.project_id,
        flavor_id=row.flavor_id,
        flavor_name=row.flavor_name,
        image_id=row.image_id,
        host=row.host,
        metadata={str(k): str(v) for k, v in (row.server_metadata or {}).items()},
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def servers_with_key(session: Session, cloud_id: int, project_ids: Set[str]) -> list[Server]:
    """The mirrored servers of ``project_ids`` that carry cloudmgr's idempotency key (what
    cloudmgr booted, or someone booted with its metadata), as :class:`Server` values."""
    if not project_ids:
        return []
    rows = session.scalars(
        select(MirroredServer)
        .where(
            MirroredServer.cloud_id == cloud_id,
            MirroredServer.idempotency_key.is_not(None),
            MirroredServer.project_id.in_(sorted(project_ids)),
        )
        .order_by(MirroredServer.server_id)
    )
    return [_to_server(row) for row in rows]


def mirrored_servers(session: Session, cloud_id: int, *, project_id: str | None = None) -> list[Server]:
    """The cloud's mirrored servers (one project's with ``project_id``), by id."""
    query = select(MirroredServer).where(MirroredServer.cloud_id == cloud_id).order_by(MirroredServer.server_id)
    if project_id is not None:
        query = query.where(MirroredServer.project_id == project_id)
    return [_to_server(row) for row in session.scalars(query)]


def sync_state(session: Session, cloud_id: int) -> ServerSyncState | None:
    return session.get(ServerSyncState, cloud_id)
