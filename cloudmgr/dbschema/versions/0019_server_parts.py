"""The parts of a provisioned server beyond the VM: its data volumes and its public address, and
the network each cloud's public addresses come from (issue 16)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# As cloudmgr.servicerequests.parts has them in 2026-12 (a migration keeps its own copy).
VOLUME_STATES = "'pending', 'creating', 'attached', 'available', 'deleted', 'failed'"
ADDRESS_STATES = "'pending', 'allocated', 'associated', 'released', 'failed'"


def upgrade() -> None:
    with op.batch_alter_table("clouds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_network", sa.String(length=255), nullable=True))
    op.create_table(
        "managed_volumes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("cloud_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("size_gb", sa.Integer(), nullable=False),
        sa.Column("volume_type", sa.String(length=255), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("volume_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"state IN ({VOLUME_STATES})", name=op.f("ck_managed_volumes_state_valid")),
        sa.ForeignKeyConstraint(["cloud_id"], ["clouds.id"], name=op.f("fk_managed_volumes_cloud_id_clouds")),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_managed_volumes_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["service_requests.id"], name=op.f("fk_managed_volumes_request_id_service_requests")
        ),
        sa.ForeignKeyConstraint(
            ["server_id"], ["managed_servers.id"], name=op.f("fk_managed_volumes_server_id_managed_servers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_managed_volumes")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_managed_volumes_idempotency_key")),
        sa.UniqueConstraint("server_id", "index", name=op.f("uq_managed_volumes_server_id")),
    )
    with op.batch_alter_table("managed_volumes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_managed_volumes_request_id"), ["request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_managed_volumes_server_id"), ["server_id"], unique=False)
    op.create_table(
        "managed_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("floating_ip_id", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"state IN ({ADDRESS_STATES})", name=op.f("ck_managed_addresses_state_valid")),
        sa.ForeignKeyConstraint(
            ["server_id"], ["managed_servers.id"], name=op.f("fk_managed_addresses_server_id_managed_servers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_managed_addresses")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_managed_addresses_idempotency_key")),
        sa.UniqueConstraint("server_id", name=op.f("uq_managed_addresses_server_id")),
    )


def downgrade() -> None:
    op.drop_table("managed_addresses")
    with op.batch_alter_table("managed_volumes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_managed_volumes_server_id"))
        batch_op.drop_index(batch_op.f("ix_managed_volumes_request_id"))
    op.drop_table("managed_volumes")
    with op.batch_alter_table("clouds", schema=None) as batch_op:
        batch_op.drop_column("external_network")
