"""Snapshots of the departments' servers (issue 16, cloudmgr.backups): a Glance image of a
server's root disk, made in the department's project and restored by rebuilding the server

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

# As cloudmgr.backups.models has them in 2026-12 (a migration keeps its own copy).
COPY_STATES = "'pending', 'ready', 'failed', 'deleting', 'deleted'"
RESTORE_STATES = "'queued', 'rebuilding', 'done', 'failed'"
TABLE = "server_snapshot_records"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_row_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("cloud_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.Column("image_id", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.Column("restore_state", sa.String(length=16), nullable=True),
        sa.Column("restore_requested_by", sa.String(length=128), nullable=True),
        sa.Column("restore_fault", sa.Text(), nullable=True),
        sa.Column("restored_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"state IN ({COPY_STATES})", name=op.f(f"ck_{TABLE}_state_valid")),
        sa.CheckConstraint(f"restore_state IN ({RESTORE_STATES})", name=op.f(f"ck_{TABLE}_restore_state_valid")),
        sa.ForeignKeyConstraint(["cloud_id"], ["clouds.id"], name=op.f(f"fk_{TABLE}_cloud_id_clouds")),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f(f"fk_{TABLE}_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["server_row_id"], ["managed_servers.id"], name=op.f(f"fk_{TABLE}_server_row_id_managed_servers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
        sa.UniqueConstraint("tag", name=op.f(f"uq_{TABLE}_tag")),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{TABLE}_server_row_id"), ["server_row_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f(f"ix_{TABLE}_server_row_id"))
    op.drop_table(TABLE)
