"""whether each cloud was last reached, and since when it is not (issue 17)

Revision ID: 0030
Revises: 0028
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0030"
# 0029 is another change's: whichever lands second is re-pointed at the other.
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cloud_reachability",
        sa.Column("cloud_id", sa.Integer(), nullable=False),
        sa.Column("last_success_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("unreachable_since", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failure_kind", sa.String(length=16), nullable=True),
        sa.Column("failure_detail", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["cloud_id"], ["clouds.id"], name=op.f("fk_cloud_reachability_cloud_id_clouds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cloud_id", name=op.f("pk_cloud_reachability")),
    )


def downgrade() -> None:
    op.drop_table("cloud_reachability")
