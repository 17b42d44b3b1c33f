"""moves inside and between clouds (issue 6: moves)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("cloud_id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.String(length=64), nullable=True),
        sa.Column("server_name", sa.String(length=255), nullable=True),
        sa.Column("project_id", sa.String(length=64), nullable=True),
        sa.Column("managed_server_id", sa.Integer(), nullable=True),
        sa.Column("source_host", sa.String(length=255), nullable=True),
        sa.Column("target_host", sa.String(length=255), nullable=True),
        sa.Column("target_cloud_id", sa.Integer(), nullable=True),
        sa.Column("target_department_id", sa.Integer(), nullable=True),
        sa.Column("target_zone", sa.String(length=16), nullable=True),
        sa.Column("target_project_id", sa.String(length=64), nullable=True),
        sa.Column("flavor_name", sa.String(length=255), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("auto_confirm", sa.Boolean(), nullable=False),
        sa.Column("disable_host", sa.Boolean(), nullable=False),
        sa.Column("only_managed", sa.Boolean(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("current_step", sa.String(length=32), nullable=True),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["cloud_id"], ["clouds.id"], name=op.f("fk_moves_cloud_id_clouds")),
        sa.ForeignKeyConstraint(
            ["managed_server_id"], ["managed_servers.id"], name=op.f("fk_moves_managed_server_id_managed_servers")
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["moves.id"], name=op.f("fk_moves_parent_id_moves")),
        sa.ForeignKeyConstraint(
            ["reservation_id"], ["quota_reservations.id"], name=op.f("fk_moves_reservation_id_quota_reservations")
        ),
        sa.ForeignKeyConstraint(["target_cloud_id"], ["clouds.id"], name=op.f("fk_moves_target_cloud_id_clouds")),
        sa.ForeignKeyConstraint(
            ["target_department_id"], ["departments.id"], name=op.f("fk_moves_target_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moves")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_moves_idempotency_key")),
    )
    op.create_index("ix_moves_cloud_server", "moves", ["cloud_id", "server_id"], unique=False)
    op.create_index(op.f("ix_moves_parent_id"), "moves", ["parent_id"], unique=False)
    op.create_index("ix_moves_state_kind", "moves", ["state", "kind"], unique=False)
    op.create_table(
        "move_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("move_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["move_id"], ["moves.id"], name=op.f("fk_move_steps_move_id_moves"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_move_steps")),
        sa.UniqueConstraint("move_id", "name", name=op.f("uq_move_steps_move_id")),
    )
    op.create_table(
        "move_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("move_id", sa.Integer(), nullable=False),
        sa.Column("at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=False),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["move_id"], ["moves.id"], name=op.f("fk_move_events_move_id_moves"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_move_events")),
    )
    op.create_index(op.f("ix_move_events_move_id"), "move_events", ["move_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_move_events_move_id"), table_name="move_events")
    op.drop_table("move_events")
    op.drop_table("move_steps")
    op.drop_index("ix_moves_state_kind", table_name="moves")
    op.drop_index(op.f("ix_moves_parent_id"), table_name="moves")
    op.drop_index("ix_moves_cloud_server", table_name="moves")
    op.drop_table("moves")
