"""sessions that end: per-user session version, token revocation, disabled users, login throttle per address (issue 14)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every session stores the version it was opened under; bumping it ends them all.  Existing
    # sessions carry no version, so they end once at this upgrade (a log-in again).
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "login_address_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_until", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_address_throttles")),
        sa.UniqueConstraint("remote_addr", name=op.f("uq_login_address_throttles_remote_addr")),
    )


def downgrade() -> None:
    op.drop_table("login_address_throttles")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
