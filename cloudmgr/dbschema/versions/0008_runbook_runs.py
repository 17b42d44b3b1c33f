"""migration runbook runs and their events (issue 6: runbooks)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runbook_targets",
        sa.Column("system_id", sa.Integer(), nullable=False),
        sa.Column("target_host", sa.String(length=255), nullable=True),
        sa.Column("service_address", sa.String(length=64), nullable=True),
        sa.Column("vars", sa.JSON(), nullable=False),
        sa.Column("source_vars", sa.JSON(), nullable=False),
        sa.Column("target_vars", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["legacy_systems.id"],
            name=op.f("fk_runbook_targets_system_id_legacy_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("system_id", name=op.f("pk_runbook_targets")),
    )
    op.create_table(
        "runbook_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=True),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rc", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("rollback_of_id", sa.Integer(), nullable=True),
        sa.Column("ansible_run_id", sa.String(length=64), nullable=True),
        sa.Column("artifacts_path", sa.String(length=1024), nullable=True),
        sa.Column("changed", sa.Integer(), nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["legacy_systems.id"],
            name=op.f("fk_runbook_runs_system_id_legacy_systems"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["wave_id"],
            ["migration_waves.id"],
            name=op.f("fk_runbook_runs_wave_id_migration_waves"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rollback_of_id"],
            ["runbook_runs.id"],
            name=op.f("fk_runbook_runs_rollback_of_id_runbook_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runbook_runs")),
    )
    op.create_index(op.f("ix_runbook_runs_system_id"), "runbook_runs", ["system_id"], unique=False)
    op.create_index(op.f("ix_runbook_runs_state"), "runbook_runs", ["state"], unique=False)
    op.create_index("ix_runbook_runs_system_step", "runbook_runs", ["system_id", "step"], unique=False)
    op.create_table(
        "runbook_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("counter", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("play", sa.String(length=255), nullable=True),
        sa.Column("task", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runbook_runs.id"], name=op.f("fk_runbook_events_run_id_runbook_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runbook_events")),
    )
    op.create_index("ix_runbook_events_run_id_id", "runbook_events", ["run_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runbook_events_run_id_id", table_name="runbook_events")
    op.drop_table("runbook_events")
    op.drop_index("ix_runbook_runs_system_step", table_name="runbook_runs")
    op.drop_index(op.f("ix_runbook_runs_state"), table_name="runbook_runs")
    op.drop_index(op.f("ix_runbook_runs_system_id"), table_name="runbook_runs")
    op.drop_table("runbook_runs")
    op.drop_table("runbook_targets")
