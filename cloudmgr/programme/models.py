"""Migration waves, their members and the programme's daily snapshots."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow
from cloudmgr.inventory.models import DONE_STATES, LegacySystem
from cloudmgr.organisation.models import Cloud
from cloudmgr.programme.errors import WaveStateConflict
from cloudmgr.statemachine import StateMachine


class WaveState(enum.StrEnum):
    DRAFT = "draft"  # being put together; members may change
    CHECKED = "checked"  # the check found it fits; any change of members makes it a draft again
    RUNNING = "running"  # started: its systems migrate (one runbook work item each)
    DONE = "done"  # every member is on the cloud, decommissioned or rolled back
    CANCELLED = "cancelled"


#: Waves whose members are "taken": a system is in at most one open wave.
OPEN_STATES: frozenset[WaveState] = frozenset({WaveState.DRAFT, WaveState.CHECKED, WaveState.RUNNING})

W = WaveState
WAVE_MACHINE: StateMachine[WaveState] = StateMachine(
    "a wave",
    WaveState,
    transitions={
        # checked again: fits (checked) or not (draft, with the reason)
        W.DRAFT: {W.DRAFT, W.CHECKED, W.CANCELLED},
        # a change of members makes it a draft again; only a checked wave starts
        W.CHECKED: {W.DRAFT, W.CHECKED, W.RUNNING, W.CANCELLED},
        # its runbooks are under way: each system rolls back on its own, the wave is not cancelled
        W.RUNNING: {W.DONE},
    },
    error=WaveStateConflict,
    message="wave {wave_id} is {current}: it cannot become {target}",
    open_states=OPEN_STATES,
    stamps={W.RUNNING: "started_at", W.DONE: "finished_at", W.CANCELLED: "finished_at"},
)


class MigrationWave(Base):
    """A group of legacy systems moved onto one cloud's zone within a window."""

    __tablename__ = "migration_waves"
    __table_args__ = (
        enum_check("state", WaveState),
        CheckConstraint("zone IN ('internet', 'extranet')", name="zone_valid"),
        CheckConstraint("window_end >= window_start", name="window_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"), index=True)
    zone: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    state: Mapped[WaveState] = mapped_column(StrEnumType(WaveState, 16), default=WaveState.DRAFT, index=True)
    state_reason: Mapped[str | None] = mapped_column(Text)
    # The last check: {"fits": bool, "checked_at": …, "members": [ids], "quota": […], "capacity": {…}, "unplaced": […]}
    check_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    checked_by: Mapped[str | None] = mapped_column(String(64))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_by: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    cloud: Mapped[Cloud] = relationship()
    members: Mapped[list[MigrationWaveMember]] = relationship(
        back_populates="wave", cascade="all, delete-orphan", order_by="MigrationWaveMember.position"
    )

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def outcome(self) -> str:
        """What the wave's state says happened: its state, except a finished wave ("done") whose
        members are not all on the cloud, which is "done_partly" (some are) or "done_none" (none
        is: every migration stopped, e.g. at its pre-check, and the sources still serve)."""
        if self.state != WaveState.DONE:
            return str(self.state)
        moved = sum(1 for member in self.members if member.system.state in DONE_STATES)
        if moved == len(self.members):
            return str(WaveState.DONE)
        return "done_partly" if moved else "done_none"


class MigrationWaveMember(Base):
    """A system in a wave.  ``active`` is true while the wave is open: the partial unique
    index keeps a system in at most one open wave (members of finished waves stay as history)."""

    __tablename__ = "migration_wave_members"
    __table_args__ = (
        UniqueConstraint("wave_id", "system_id"),
        Index(
            "uq_migration_wave_members_open_system",
            "system_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("migration_waves.id", ondelete="CASCADE"))
    system_id: Mapped[int] = mapped_column(ForeignKey("legacy_systems.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    wave: Mapped[MigrationWave] = relationship(back_populates="members")
    system: Mapped[LegacySystem] = relationship()


class ProgrammeSnapshot(Base):
    """The programme's figures of one day (the burndown is drawn from these)."""

    __tablename__ = "programme_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    taken_on: Mapped[date] = mapped_column(Date, unique=True)
    # {"in_scope": n, "done": n, "remaining": n, "overdue": n, "at_risk": n, "by_state": {…},
    #  "rooms_total": n, "rooms_closed": n, "departments": {key: remaining}}
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
