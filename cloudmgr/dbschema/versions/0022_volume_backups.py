"""Snapshots and backups of the departments' volumes and the schedules that make backups
(issue 16, cloudmgr.backups)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# As cloudmgr.backups.models has them in 2026-12 (a migration keeps its own copy).
COPY_STATES = "'pending', 'ready', 'failed', 'deleting', 'deleted'"
FREQUENCIES = "'daily', 'weekly'"


def _copy_columns(table: str) -> list[sa.Column[object] | sa.Constraint]:
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("volume_row_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("cloud_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.Column("size_gb", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"state IN ({COPY_STATES})", name=op.f(f"ck_{table}_state_valid")),
        sa.ForeignKeyConstraint(["cloud_id"], ["clouds.id"], name=op.f(f"fk_{table}_cloud_id_clouds")),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f(f"fk_{table}_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["volume_row_id"], ["managed_volumes.id"], name=op.f(f"fk_{table}_volume_row_id_managed_volumes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("tag", name=op.f(f"uq_{table}_tag")),
    ]


def upgrade() -> None:
    op.create_table(
        "volume_snapshot_records",
        *_copy_columns("volume_snapshot_records"),
        sa.Column("snapshot_id", sa.String(length=64), nullable=True),
    )
    with op.batch_alter_table("volume_snapshot_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_volume_snapshot_records_volume_row_id"), ["volume_row_id"], unique=False)
    op.create_table(
        "backup_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("volume_row_id", sa.Integer(), nullable=False),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("keep", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"frequency IN ({FREQUENCIES})", name=op.f("ck_backup_schedules_frequency_valid")),
        sa.CheckConstraint("hour >= 0 AND hour <= 23", name=op.f("ck_backup_schedules_hour_range")),
        sa.CheckConstraint("keep >= 1 AND keep <= 30", name=op.f("ck_backup_schedules_keep_range")),
        sa.CheckConstraint(
            "weekday IS NULL OR (weekday >= 0 AND weekday <= 6)", name=op.f("ck_backup_schedules_weekday_range")
        ),
        sa.ForeignKeyConstraint(
            ["volume_row_id"], ["managed_volumes.id"], name=op.f("fk_backup_schedules_volume_row_id_managed_volumes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup_schedules")),
        sa.UniqueConstraint("volume_row_id", name=op.f("uq_backup_schedules_volume_row_id")),
    )
    with op.batch_alter_table("backup_schedules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_backup_schedules_next_run_at"), ["next_run_at"], unique=False)
    op.create_table(
        "volume_backup_records",
        *_copy_columns("volume_backup_records"),
        sa.Column("backup_id", sa.String(length=64), nullable=True),
        sa.Column("schedule_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["backup_schedules.id"],
            name=op.f("fk_volume_backup_records_schedule_id_backup_schedules"),
            ondelete="SET NULL",
        ),
    )
    with op.batch_alter_table("volume_backup_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_volume_backup_records_volume_row_id"), ["volume_row_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("volume_backup_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_volume_backup_records_volume_row_id"))
    op.drop_table("volume_backup_records")
    with op.batch_alter_table("backup_schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_backup_schedules_next_run_at"))
    op.drop_table("backup_schedules")
    with op.batch_alter_table("volume_snapshot_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_volume_snapshot_records_volume_row_id"))
    op.drop_table("volume_snapshot_records")
