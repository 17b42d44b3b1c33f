"""The departments' dedicated network lines (issue 19, cloudmgr.lines): the register of lines, what
each carries (legacy systems, server rooms) and its planned target

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

# As cloudmgr.lines.models has them in 2026-12 (a migration keeps its own copy).
CARRIERS = "'telecom', 'unicom', 'mobile', 'broadnet', 'other'"
LINE_TYPES = "'mstp', 'sdh', 'mpls_vpn', 'leased_fibre', 'internet'"
STATES = "'in_service', 'planned', 'cut_over', 'retired'"
TARGETS = "'intranet', 'extranet', 'internet', 'retire'"
LINES = "network_lines"


def upgrade() -> None:
    op.create_table(
        LINES,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=16), nullable=False),
        sa.Column("line_type", sa.String(length=16), nullable=False),
        sa.Column("bandwidth_mbps", sa.Integer(), nullable=False),
        sa.Column("a_site", sa.String(length=128), nullable=False),
        sa.Column("a_city", sa.String(length=64), nullable=False),
        sa.Column("a_county", sa.String(length=64), nullable=False),
        sa.Column("a_township", sa.String(length=64), nullable=False),
        sa.Column("b_site", sa.String(length=128), nullable=False),
        sa.Column("b_city", sa.String(length=64), nullable=False),
        sa.Column("b_county", sa.String(length=64), nullable=False),
        sa.Column("b_township", sa.String(length=64), nullable=False),
        sa.Column("monthly_rent", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("contract_start", sa.Date(), nullable=False),
        sa.Column("contract_end", sa.Date(), nullable=False),
        sa.Column("declared_classified", sa.Boolean(), nullable=False),
        sa.Column("public_facing", sa.Boolean(), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("planned_by", sa.String(length=128), nullable=True),
        sa.Column("planned_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"carrier IN ({CARRIERS})", name=op.f(f"ck_{LINES}_carrier_valid")),
        sa.CheckConstraint(f"line_type IN ({LINE_TYPES})", name=op.f(f"ck_{LINES}_line_type_valid")),
        sa.CheckConstraint(f"state IN ({STATES})", name=op.f(f"ck_{LINES}_state_valid")),
        sa.CheckConstraint(f"target IN ({TARGETS})", name=op.f(f"ck_{LINES}_target_valid")),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f(f"fk_{LINES}_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{LINES}")),
        sa.UniqueConstraint("code", name=op.f(f"uq_{LINES}_code")),
    )
    with op.batch_alter_table(LINES, schema=None) as batch_op:
        batch_op.create_index("ix_network_lines_dept_state", ["department_id", "state"], unique=False)
        batch_op.create_index(batch_op.f(f"ix_{LINES}_state"), ["state"], unique=False)
    for table, column, other in (
        ("network_line_rooms", "room_id", "server_rooms"),
        ("network_line_systems", "system_id", "legacy_systems"),
    ):
        op.create_table(
            table,
            sa.Column("line_id", sa.Integer(), nullable=False),
            sa.Column(column, sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(
                ["line_id"], [f"{LINES}.id"], name=op.f(f"fk_{table}_line_id_{LINES}"), ondelete="CASCADE"
            ),
            sa.ForeignKeyConstraint(
                [column], [f"{other}.id"], name=op.f(f"fk_{table}_{column}_{other}"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("line_id", column, name=op.f(f"pk_{table}")),
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def downgrade() -> None:
    for table, column in (("network_line_systems", "system_id"), ("network_line_rooms", "room_id")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
        op.drop_table(table)
    with op.batch_alter_table(LINES, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f(f"ix_{LINES}_state"))
        batch_op.drop_index("ix_network_lines_dept_state")
    op.drop_table(LINES)
