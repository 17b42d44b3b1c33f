"""a stored mirror of each cloud's servers and the state of its syncs (issue 20)

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mirrored_servers",
        sa.Column("cloud_id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("flavor_id", sa.String(length=255), nullable=True),
        sa.Column("flavor_name", sa.String(length=255), nullable=True),
        sa.Column("image_id", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seen_generation", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cloud_id"], ["clouds.id"], name=op.f("fk_mirrored_servers_cloud_id_clouds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cloud_id", "server_id", name=op.f("pk_mirrored_servers")),
    )
    op.create_index("ix_mirrored_servers_cloud_key", "mirrored_servers", ["cloud_id", "idempotency_key"])
    op.create_index("ix_mirrored_servers_cloud_generation", "mirrored_servers", ["cloud_id", "seen_generation"])
    op.create_table(
        "server_sync_states",
        sa.Column("cloud_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("watermark", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_full_sync_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_delta_sync_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_mode", sa.String(length=8), nullable=True),
        sa.Column("last_seconds", sa.Float(), nullable=True),
        sa.Column("servers", sa.Integer(), nullable=False),
        sa.Column("last_listed", sa.Integer(), nullable=False),
        sa.Column("last_added", sa.Integer(), nullable=False),
        sa.Column("last_changed", sa.Integer(), nullable=False),
        sa.Column("last_removed", sa.Integer(), nullable=False),
        sa.Column("last_unchanged", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("last_error_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["cloud_id"], ["clouds.id"], name=op.f("fk_server_sync_states_cloud_id_clouds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cloud_id", name=op.f("pk_server_sync_states")),
    )


def downgrade() -> None:
    op.drop_table("server_sync_states")
    op.drop_index("ix_mirrored_servers_cloud_generation", table_name="mirrored_servers")
    op.drop_index("ix_mirrored_servers_cloud_key", table_name="mirrored_servers")
    op.drop_table("mirrored_servers")
