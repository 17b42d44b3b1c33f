"""the classified rule: declassification requests held for an administrator, reclassification alerts (issue 14)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "declassification_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.Integer(), nullable=False),
        sa.Column("from_classification", sa.String(length=16), nullable=False),
        sa.Column("from_network", sa.String(length=16), nullable=False),
        sa.Column("to_classification", sa.String(length=16), nullable=False),
        sa.Column("to_network", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("entry_point", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'approved', 'rejected')", name=op.f("ck_declassification_requests_state_valid")
        ),
        sa.ForeignKeyConstraint(
            ["system_id"], ["legacy_systems.id"], name=op.f("fk_declassification_requests_system_id_legacy_systems")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_declassification_requests")),
    )
    with op.batch_alter_table("declassification_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_declassification_requests_system_id"), ["system_id"], unique=False)
        batch_op.create_index(
            "uq_declassification_pending",
            ["system_id"],
            unique=True,
            sqlite_where=sa.text("state = 'pending'"),
            postgresql_where=sa.text("state = 'pending'"),
        )

    op.create_table(
        "reclassification_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("servers", sa.JSON(), nullable=False),
        sa.Column("raised_by", sa.String(length=64), nullable=False),
        sa.Column("raised_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("entry_point", sa.String(length=64), nullable=False),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("closed_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('open', 'resolved', 'acknowledged')", name=op.f("ck_reclassification_alerts_state_valid")
        ),
        sa.ForeignKeyConstraint(
            ["system_id"], ["legacy_systems.id"], name=op.f("fk_reclassification_alerts_system_id_legacy_systems")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reclassification_alerts")),
    )
    with op.batch_alter_table("reclassification_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reclassification_alerts_system_id"), ["system_id"], unique=False)
        batch_op.create_index(
            "uq_reclassification_alert_open",
            ["system_id"],
            unique=True,
            sqlite_where=sa.text("state = 'open'"),
            postgresql_where=sa.text("state = 'open'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("reclassification_alerts", schema=None) as batch_op:
        batch_op.drop_index("uq_reclassification_alert_open")
        batch_op.drop_index(batch_op.f("ix_reclassification_alerts_system_id"))
    op.drop_table("reclassification_alerts")
    with op.batch_alter_table("declassification_requests", schema=None) as batch_op:
        batch_op.drop_index("uq_declassification_pending")
        batch_op.drop_index(batch_op.f("ix_declassification_requests_system_id"))
    op.drop_table("declassification_requests")
