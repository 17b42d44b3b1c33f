"""A request's choices for usable VMs: the SSH key (a copy frozen at submission), cloud-init
user data, data disks per VM and a public address (issue 16)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only added columns: SQLite adds them in place (batch mode does not rebuild the table
    # other tables refer to).  Existing requests asked for none of it.
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ssh_key_name", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("ssh_public_key", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("ssh_key_fingerprint", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("user_data", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("data_disks", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("public_address", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.drop_column("public_address")
        batch_op.drop_column("data_disks")
        batch_op.drop_column("user_data")
        batch_op.drop_column("ssh_key_fingerprint")
        batch_op.drop_column("ssh_public_key")
        batch_op.drop_column("ssh_key_name")
