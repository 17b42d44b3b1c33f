"""Dedicated lines (issue 19): departments' requests to rent a new line or renew a line's contract, and
finance's decision (who, when, why, on what basis)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "network_line_rentals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=True),
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
        sa.Column("purpose", sa.String(length=1000), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sa.String(length=128), nullable=True),
        sa.Column("submitted_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=1000), nullable=True),
        sa.Column("block_basis", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "block_basis IN ('extranet_reaches', 'retire', 'other')",
            name=op.f("ck_network_line_rentals_block_basis_valid"),
        ),
        sa.CheckConstraint(
            "carrier IN ('telecom', 'unicom', 'mobile', 'broadnet', 'other')",
            name=op.f("ck_network_line_rentals_carrier_valid"),
        ),
        sa.CheckConstraint("kind IN ('new', 'renewal')", name=op.f("ck_network_line_rentals_kind_valid")),
        sa.CheckConstraint(
            "line_type IN ('mstp', 'sdh', 'mpls_vpn', 'leased_fibre', 'internet')",
            name=op.f("ck_network_line_rentals_line_type_valid"),
        ),
        sa.CheckConstraint(
            "state IN ('draft', 'submitted', 'approved', 'blocked')", name=op.f("ck_network_line_rentals_state_valid")
        ),
        sa.CheckConstraint("contract_end > contract_start", name=op.f("ck_network_line_rentals_contract_order")),
        sa.CheckConstraint("monthly_rent > 0", name=op.f("ck_network_line_rentals_rent_positive")),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_network_line_rentals_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["line_id"],
            ["network_lines.id"],
            name=op.f("fk_network_line_rentals_line_id_network_lines"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_line_rentals")),
    )
    with op.batch_alter_table("network_line_rentals", schema=None) as batch_op:
        batch_op.create_index("ix_network_line_rentals_dept_state", ["department_id", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_network_line_rentals_line_id"), ["line_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_network_line_rentals_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("network_line_rentals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_line_rentals_state"))
        batch_op.drop_index(batch_op.f("ix_network_line_rentals_line_id"))
        batch_op.drop_index("ix_network_line_rentals_dept_state")

    op.drop_table("network_line_rentals")
