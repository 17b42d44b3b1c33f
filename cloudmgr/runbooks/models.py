"""Runbook runs (one per system and step) and the Ansible events they streamed."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow
from cloudmgr.inventory.models import LegacySystem


class Step(enum.StrEnum):
    PRECHECK = "precheck"
    PROVISION = "provision"
    REPLICATE = "replicate"
    CUTOVER = "cutover"
    VERIFY = "verify"
    ROLLBACK = "rollback"
    DECOMMISSION = "decommission"

    @property
    def playbook(self) -> str:
        return f"{self.value}.yml"


#: The steps of a migration, in order (decommission only when asked, after verify).
MIGRATION_STEPS: tuple[Step, ...] = (Step.PRECHECK, Step.PROVISION, Step.REPLICATE, Step.CUTOVER, Step.VERIFY)
#: A failure of these rolls back at once: the source must serve again.
ROLLBACK_ON_FAILURE: frozenset[Step] = frozenset({Step.CUTOVER, Step.VERIFY})


class RunState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"  # failed, then undone by a rollback run that succeeded


ACTIVE_RUN_STATES: frozenset[RunState] = frozenset({RunState.QUEUED, RunState.RUNNING})


class RunbookTarget(Base):
    """Where a system's runbook acts: the target VM's address and the hosts' variables.

    ``target_host`` is the address Ansible reaches the new VM on (set by the provision step
    from the booted server's address unless an operator gave one).  ``source_vars`` and
    ``target_vars`` are Ansible host variables (data directory, ssh key, interface…),
    ``vars`` variables for every host (the service address and port…).
    """

    __tablename__ = "runbook_targets"

    system_id: Mapped[int] = mapped_column(ForeignKey("legacy_systems.id", ondelete="CASCADE"), primary_key=True)
    target_host: Mapped[str | None] = mapped_column(String(255))
    service_address: Mapped[str | None] = mapped_column(String(64))
    vars: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_vars: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    target_vars: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class RunbookRun(Base):
    """One run of one step's playbook for one system."""

    __tablename__ = "runbook_runs"
    __table_args__ = (enum_check("state", RunState), Index("ix_runbook_runs_system_step", "system_id", "step"))

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("legacy_systems.id", ondelete="CASCADE"), index=True)
    wave_id: Mapped[int | None] = mapped_column(ForeignKey("migration_waves.id", ondelete="SET NULL"))
    step: Mapped[str] = mapped_column(String(16))
    state: Mapped[RunState] = mapped_column(StrEnumType(RunState, 16), default=RunState.QUEUED, index=True)
    rc: Mapped[int | None] = mapped_column()
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)  # why it failed / was interrupted
    # the failed cutover/verify run this rollback undoes
    rollback_of_id: Mapped[int | None] = mapped_column(ForeignKey("runbook_runs.id", ondelete="SET NULL"))
    ansible_run_id: Mapped[str | None] = mapped_column(String(64))
    artifacts_path: Mapped[str | None] = mapped_column(String(1024))
    changed: Mapped[int | None] = mapped_column()  # tasks that changed something, all hosts
    event_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    system: Mapped[LegacySystem] = relationship()
    events: Mapped[list[RunbookEvent]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="RunbookEvent.id", passive_deletes=True
    )

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_RUN_STATES

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class RunbookEvent(Base):
    """An Ansible event of a run, stored as it arrived (the system page shows them live)."""

    __tablename__ = "runbook_events"
    __table_args__ = (Index("ix_runbook_events_run_id_id", "run_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runbook_runs.id", ondelete="CASCADE"))
    counter: Mapped[int] = mapped_column()  # ansible-runner's event counter
    event: Mapped[str] = mapped_column(String(64))
    host: Mapped[str | None] = mapped_column(String(255))
    play: Mapped[str | None] = mapped_column(String(255))
    task: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(16))  # ok | changed | failed | unreachable | skipped
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    run: Mapped[RunbookRun] = relationship(back_populates="events")
