"""legacy systems and server rooms (issue 6: inventory)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_rooms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=128), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("location", sa.String(length=255), nullable=False),
        sa.Column("closed_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_server_rooms_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_rooms")),
        sa.UniqueConstraint("code", name=op.f("uq_server_rooms_code")),
    )
    with op.batch_alter_table("server_rooms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_server_rooms_department_id"), ["department_id"], unique=False)

    op.create_table(
        "legacy_systems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hostname", sa.String(length=128), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("server_room_id", sa.Integer(), nullable=False),
        sa.Column("application_system", sa.String(length=128), nullable=False),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("os_family", sa.String(length=16), nullable=False),
        sa.Column("os_name", sa.String(length=64), nullable=False),
        sa.Column("os_version", sa.String(length=32), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("ram_mb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
        sa.Column("data_gb", sa.Integer(), nullable=False),
        sa.Column("cpu_p95_pct", sa.Float(), nullable=False),
        sa.Column("ram_p95_pct", sa.Float(), nullable=False),
        sa.Column("dependencies", sa.JSON(), nullable=False),
        sa.Column("owner_name", sa.String(length=64), nullable=False),
        sa.Column("owner_contact", sa.String(length=128), nullable=False),
        sa.Column("ansible_host", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("complexity_score", sa.Integer(), nullable=False),
        sa.Column("complexity_reasons", sa.JSON(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("target_cloud_id", sa.Integer(), nullable=True),
        sa.Column("cloud_server_id", sa.String(length=64), nullable=True),
        sa.Column("migrated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decommissioned_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "classification IN ('classified', 'non_classified')", name=op.f("ck_legacy_systems_classification_valid")
        ),
        sa.CheckConstraint(
            "network IN ('internet', 'extranet', 'intranet')", name=op.f("ck_legacy_systems_network_valid")
        ),
        sa.CheckConstraint(
            "state IN ('legacy', 'intranet', 'planned', 'migrating', 'on_cloud', 'rolled_back', 'decommissioned')",
            name=op.f("ck_legacy_systems_state_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_legacy_systems_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["server_room_id"], ["server_rooms.id"], name=op.f("fk_legacy_systems_server_room_id_server_rooms")
        ),
        sa.ForeignKeyConstraint(
            ["target_cloud_id"], ["clouds.id"], name=op.f("fk_legacy_systems_target_cloud_id_clouds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legacy_systems")),
        sa.UniqueConstraint("hostname", name=op.f("uq_legacy_systems_hostname")),
    )
    with op.batch_alter_table("legacy_systems", schema=None) as batch_op:
        batch_op.create_index("ix_legacy_systems_dept_state", ["department_id", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_legacy_systems_server_room_id"), ["server_room_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_legacy_systems_state"), ["state"], unique=False)

    # A self-service request may name the legacy system it replaces (the classified rule
    # refuses a classified one).
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("legacy_system_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_service_requests_legacy_system_id_legacy_systems"),
            "legacy_systems",
            ["legacy_system_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_service_requests_legacy_system_id_legacy_systems"), type_="foreignkey")
        batch_op.drop_column("legacy_system_id")
    with op.batch_alter_table("legacy_systems", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legacy_systems_state"))
        batch_op.drop_index(batch_op.f("ix_legacy_systems_server_room_id"))
        batch_op.drop_index("ix_legacy_systems_dept_state")
    op.drop_table("legacy_systems")
    with op.batch_alter_table("server_rooms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_server_rooms_department_id"))
    op.drop_table("server_rooms")
