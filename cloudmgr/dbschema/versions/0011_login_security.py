"""login integration and lock-out (issue 8)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_until", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_throttles")),
        sa.UniqueConstraint("username", name=op.f("uq_login_throttles_username")),
    )
    op.create_table(
        "external_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("domain", sa.String(length=128), nullable=True),
        sa.Column("claims", sa.JSON(), nullable=False),
        sa.Column("first_login_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("source IN ('keystone', 'ldap')", name=op.f("ck_external_identities_source_valid")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_external_identities_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_identities")),
        sa.UniqueConstraint("source", "subject", name=op.f("uq_external_identities_source")),
        sa.UniqueConstraint("user_id", name=op.f("uq_external_identities_user_id")),
    )


def downgrade() -> None:
    op.drop_table("external_identities")
    op.drop_table("login_throttles")
