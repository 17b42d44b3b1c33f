"""Orphaned volumes and floating IPs (issue 16): tagged resources on a department's project that
no row of ours owns, found by the reconcile job, adopted or deleted by an operator; an address
says its department and cloud itself (an adopted one has no server), filled from its server.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orphan_resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cloud_id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=True),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.Column("size_gb", sa.Integer(), nullable=True),
        sa.Column("volume_type", sa.String(length=255), nullable=True),
        sa.Column("attached_to", sa.String(length=64), nullable=True),
        sa.Column("found_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("pending_action", sa.String(length=16), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('volume', 'address')", name=op.f("ck_orphan_resources_kind_valid")),
        sa.CheckConstraint(
            "resolution IN ('gone', 'adopted', 'deleted')", name=op.f("ck_orphan_resources_resolution_valid")
        ),
        sa.ForeignKeyConstraint(["cloud_id"], ["clouds.id"], name=op.f("fk_orphan_resources_cloud_id_clouds")),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_orphan_resources_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["quota_reservations.id"],
            name=op.f("fk_orphan_resources_reservation_id_quota_reservations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orphan_resources")),
        sa.UniqueConstraint("kind", "cloud_id", "resource_id", name=op.f("uq_orphan_resources_kind")),
    )
    with op.batch_alter_table("managed_addresses", schema=None) as batch_op:
        batch_op.alter_column("server_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("department_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cloud_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_managed_addresses_department_id_departments"), "departments", ["department_id"], ["id"]
        )
        batch_op.create_foreign_key(batch_op.f("fk_managed_addresses_cloud_id_clouds"), "clouds", ["cloud_id"], ["id"])
    op.execute(
        """
        UPDATE managed_addresses SET
            department_id = (SELECT s.department_id FROM managed_servers s WHERE s.id = managed_addresses.server_id),
            cloud_id = (SELECT s.cloud_id FROM managed_servers s WHERE s.id = managed_addresses.server_id)
        """
    )


def downgrade() -> None:
    # The older code knows no address without a server: an adopted one goes (it stays on the cloud, tagged).
    op.execute("DELETE FROM managed_addresses WHERE server_id IS NULL")
    with op.batch_alter_table("managed_addresses", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_managed_addresses_cloud_id_clouds"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_managed_addresses_department_id_departments"), type_="foreignkey")
        batch_op.drop_column("cloud_id")
        batch_op.drop_column("department_id")
        batch_op.alter_column("server_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("orphan_resources")
