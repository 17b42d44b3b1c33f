from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow
from cloudmgr.moves.states import MoveState
from cloudmgr.organisation.models import Cloud, Department


class Move(Base):
    """One move of a server (or, for a drain, of every server off a host).

    Who asked, when and why are stored with the row before any cloud is touched;
    ``resources`` keeps the ids the steps created (snapshot, images, target server) so a
    resumed move finds them instead of creating them again.
    """

    __tablename__ = "moves"
    __table_args__ = (
        enum_check("state", MoveState),
        Index("ix_moves_state_kind", "state", "kind"),
        Index("ix_moves_cloud_server", "cloud_id", "server_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # live | cold | drain | cross_cloud
    state: Mapped[MoveState] = mapped_column(StrEnumType(MoveState, 20), default=MoveState.REQUESTED)
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"))
    # The server moved (None for a drain); its name as it was when the move started.
    server_id: Mapped[str | None] = mapped_column(String(64))
    server_name: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(64))
    managed_server_id: Mapped[int | None] = mapped_column(ForeignKey("managed_servers.id"))
    # The host it leaves (a drain: the host drained) and the host asked for (None: the scheduler picks).
    source_host: Mapped[str | None] = mapped_column(String(255))
    target_host: Mapped[str | None] = mapped_column(String(255))
    # A cross-cloud move: where to.
    target_cloud_id: Mapped[int | None] = mapped_column(ForeignKey("clouds.id"))
    target_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    target_zone: Mapped[str | None] = mapped_column(String(16))
    target_project_id: Mapped[str | None] = mapped_column(String(64))
    flavor_name: Mapped[str | None] = mapped_column(String(255))
    # A drain's per-server moves point at the drain.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("moves.id"), index=True)
    auto_confirm: Mapped[bool] = mapped_column(Boolean, default=False)
    disable_host: Mapped[bool] = mapped_column(Boolean, default=True)
    only_managed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The target server's idempotency key: a retried boot finds it instead of booting twice.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("quota_reservations.id"))
    resources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    current_step: Mapped[str | None] = mapped_column(String(32))
    state_reason: Mapped[str | None] = mapped_column(Text)

    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    cloud: Mapped[Cloud] = relationship(foreign_keys=[cloud_id])
    target_cloud: Mapped[Cloud | None] = relationship(foreign_keys=[target_cloud_id])
    target_department: Mapped[Department | None] = relationship()
    steps: Mapped[list[MoveStep]] = relationship(
        back_populates="move", order_by="MoveStep.position", cascade="all, delete-orphan"
    )
    events: Mapped[list[MoveEvent]] = relationship(
        back_populates="move", order_by="MoveEvent.id", cascade="all, delete-orphan"
    )
    children: Mapped[list[Move]] = relationship(order_by="Move.id")


class MoveStep(Base):
    """One step of a move: its outcome, how long it took and what it created."""

    __tablename__ = "move_steps"
    __table_args__ = (UniqueConstraint("move_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    move_id: Mapped[int] = mapped_column(ForeignKey("moves.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    seconds: Mapped[float | None] = mapped_column()
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)

    move: Mapped[Move] = relationship(back_populates="steps")


class MoveEvent(Base):
    """One transition of a move: who, when, from, to, why.  Written before any side effect."""

    __tablename__ = "move_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    move_id: Mapped[int] = mapped_column(ForeignKey("moves.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)

    move: Mapped[Move] = relationship(back_populates="events")
