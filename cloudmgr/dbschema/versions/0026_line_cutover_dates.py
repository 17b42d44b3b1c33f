"""Dedicated lines (issue 19): the planned cut-over date of a line and when its cut-over or retirement
was recorded

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("network_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cutover_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("cut_over_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("network_lines", schema=None) as batch_op:
        batch_op.drop_column("cut_over_at")
        batch_op.drop_column("cutover_date")
