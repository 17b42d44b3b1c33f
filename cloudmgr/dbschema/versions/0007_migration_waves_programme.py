"""migration waves and programme snapshots (issue 6: waves, tracking)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "migration_waves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("cloud_id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=16), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("check_result", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_by", sa.String(length=64), nullable=True),
        sa.Column("checked_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_by", sa.String(length=64), nullable=True),
        sa.Column("started_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=64), nullable=True),
        sa.Column("finished_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('draft', 'checked', 'running', 'done', 'cancelled')", name=op.f("ck_migration_waves_state_valid")
        ),
        sa.CheckConstraint("zone IN ('internet', 'extranet')", name=op.f("ck_migration_waves_zone_valid")),
        sa.CheckConstraint("window_end >= window_start", name=op.f("ck_migration_waves_window_ordered")),
        sa.ForeignKeyConstraint(["cloud_id"], ["clouds.id"], name=op.f("fk_migration_waves_cloud_id_clouds")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_migration_waves")),
    )
    with op.batch_alter_table("migration_waves", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_migration_waves_cloud_id"), ["cloud_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_migration_waves_state"), ["state"], unique=False)

    op.create_table(
        "migration_wave_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"], ["legacy_systems.id"], name=op.f("fk_migration_wave_members_system_id_legacy_systems")
        ),
        sa.ForeignKeyConstraint(
            ["wave_id"],
            ["migration_waves.id"],
            name=op.f("fk_migration_wave_members_wave_id_migration_waves"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_migration_wave_members")),
        sa.UniqueConstraint("wave_id", "system_id", name=op.f("uq_migration_wave_members_wave_id")),
    )
    with op.batch_alter_table("migration_wave_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_migration_wave_members_system_id"), ["system_id"], unique=False)
        batch_op.create_index(
            "uq_migration_wave_members_open_system",
            ["system_id"],
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )

    op.create_table(
        "programme_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("taken_on", sa.Date(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("taken_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_snapshots")),
        sa.UniqueConstraint("taken_on", name=op.f("uq_programme_snapshots_taken_on")),
    )


def downgrade() -> None:
    op.drop_table("programme_snapshots")
    with op.batch_alter_table("migration_wave_members", schema=None) as batch_op:
        batch_op.drop_index("uq_migration_wave_members_open_system")
        batch_op.drop_index(batch_op.f("ix_migration_wave_members_system_id"))
    op.drop_table("migration_wave_members")
    with op.batch_alter_table("migration_waves", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_migration_waves_state"))
        batch_op.drop_index(batch_op.f("ix_migration_waves_cloud_id"))
    op.drop_table("migration_waves")
