"""hardware purchase requests, findings and reviews (issue 7)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "purchase_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("amount_yuan", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("application_system", sa.String(length=128), nullable=False),
        sa.Column("legacy_hostname", sa.String(length=128), nullable=True),
        sa.Column("classified", sa.Boolean(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("block_basis", sa.String(length=16), nullable=True),
        sa.Column("offer", sa.JSON(), nullable=True),
        sa.Column("findings_score", sa.Integer(), nullable=False),
        sa.Column("submissions", sa.Integer(), nullable=False),
        sa.Column("service_request_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "category IN ('server', 'storage', 'network', 'server_room', 'software', 'other')",
            name=op.f("ck_purchase_requests_category_valid"),
        ),
        sa.CheckConstraint(
            "state IN ('draft', 'submitted', 'returned', 'resubmitted', 'approved', 'blocked', 'withdrawn')",
            name=op.f("ck_purchase_requests_state_valid"),
        ),
        sa.CheckConstraint("amount_yuan >= 0", name=op.f("ck_purchase_requests_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_purchase_requests_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["service_request_id"],
            ["service_requests.id"],
            name=op.f("fk_purchase_requests_service_request_id_service_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_requests")),
    )
    op.create_index("ix_purchase_requests_dept_state", "purchase_requests", ["department_id", "state"], unique=False)
    op.create_index(op.f("ix_purchase_requests_state"), "purchase_requests", ["state"], unique=False)
    op.create_table(
        "purchase_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("ram_gb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_purchase_items_quantity_positive")),
        sa.CheckConstraint(
            "vcpus >= 0 AND ram_gb >= 0 AND disk_gb >= 0", name=op.f("ck_purchase_items_specs_not_negative")
        ),
        sa.CheckConstraint("unit_price >= 0", name=op.f("ck_purchase_items_unit_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["purchase_requests.id"],
            name=op.f("fk_purchase_items_purchase_id_purchase_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_items")),
    )
    op.create_index(op.f("ix_purchase_items_purchase_id"), "purchase_items", ["purchase_id"], unique=False)
    op.create_table(
        "purchase_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["purchase_requests.id"],
            name=op.f("fk_purchase_attachments_purchase_id_purchase_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_attachments")),
    )
    op.create_index(op.f("ix_purchase_attachments_purchase_id"), "purchase_attachments", ["purchase_id"], unique=False)
    op.create_table(
        "purchase_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("computed_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('cloud_provides', 'no_cloud_offer', 'server_room', 'duplicate', 'migrating', 'classified')",
            name=op.f("ck_purchase_findings_kind_valid"),
        ),
        sa.CheckConstraint("severity IN ('block', 'warn', 'info')", name=op.f("ck_purchase_findings_severity_valid")),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["purchase_requests.id"],
            name=op.f("fk_purchase_findings_purchase_id_purchase_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_findings")),
    )
    op.create_index(op.f("ix_purchase_findings_purchase_id"), "purchase_findings", ["purchase_id"], unique=False)
    op.create_table(
        "purchase_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["purchase_requests.id"],
            name=op.f("fk_purchase_events_purchase_id_purchase_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_events")),
    )
    op.create_index(op.f("ix_purchase_events_purchase_id"), "purchase_events", ["purchase_id"], unique=False)


def downgrade() -> None:
    for table in ("purchase_events", "purchase_findings", "purchase_attachments", "purchase_items"):
        op.drop_index(op.f(f"ix_{table}_purchase_id"), table_name=table)
        op.drop_table(table)
    op.drop_index(op.f("ix_purchase_requests_state"), table_name="purchase_requests")
    op.drop_index("ix_purchase_requests_dept_state", table_name="purchase_requests")
    op.drop_table("purchase_requests")
