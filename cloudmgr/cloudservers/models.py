"""The mirror of each cloud's servers and the state of its last syncs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloudmgr.db import Base, UTCDateTime


class MirroredServer(Base):
    """A server as its cloud last reported it (every project's, as the cloud admin sees them).

    Written only by :func:`cloudmgr.cloudservers.services.sync_cloud_servers`; a deleted server's
    row is removed.  ``seen_generation`` is the number of the last full sync that listed it: a full
    sync marks what it sees and removes the rest at the end, so it never holds a set of every id."""

    __tablename__ = "mirrored_servers"
    __table_args__ = (
        # The reconcile job reads the servers cloudmgr booted (carrying its idempotency key).
        Index("ix_mirrored_servers_cloud_key", "cloud_id", "idempotency_key"),
        Index("ix_mirrored_servers_cloud_generation", "cloud_id", "seen_generation"),
    )

    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id", ondelete="CASCADE"), primary_key=True)
    server_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    host: Mapped[str | None] = mapped_column(String(255))
    flavor_id: Mapped[str | None] = mapped_column(String(255))
    flavor_name: Mapped[str | None] = mapped_column(String(255))
    image_id: Mapped[str | None] = mapped_column(String(64))
    # The value of IDEMPOTENCY_METADATA_KEY: set on the servers cloudmgr booted.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # "metadata" is the declarative base's own attribute: the column keeps the name, not the attribute.
    server_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The cloud's updated_at (its clock), which the sync's watermark is taken from.
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    seen_generation: Mapped[int] = mapped_column(Integer, default=0)


class ServerSyncState(Base):
    """Where a cloud's mirror stands: the watermark the next delta starts from, the last full and
    delta syncs, what the last sync did and the last failure."""

    __tablename__ = "server_sync_states"

    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id", ondelete="CASCADE"), primary_key=True)
    # The number of the last full sync (see MirroredServer.seen_generation).
    generation: Mapped[int] = mapped_column(Integer, default=0)
    # The newest updated_at the cloud reported (never later than when that listing began, by our
    # clock): the next delta asks for changes since it, less an overlap.  None: no full sync yet.
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_full_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_delta_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_mode: Mapped[str | None] = mapped_column(String(8))  # full | delta
    last_seconds: Mapped[float | None] = mapped_column(Float)
    servers: Mapped[int] = mapped_column(Integer, default=0)  # rows mirrored after the last sync
    last_listed: Mapped[int] = mapped_column(Integer, default=0)
    last_added: Mapped[int] = mapped_column(Integer, default=0)
    last_changed: Mapped[int] = mapped_column(Integer, default=0)
    last_removed: Mapped[int] = mapped_column(Integer, default=0)
    last_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
