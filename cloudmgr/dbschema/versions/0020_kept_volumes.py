"""A data volume kept when its server is deleted belongs to no server any more (issue 16):
managed_volumes.server_id becomes nullable; the department and the request stay on the row.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("managed_volumes", schema=None) as batch_op:
        batch_op.alter_column("server_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # A kept volume goes back to the server it was made for: its tag names the request and the
    # server's index (cm-r<request>-s<index>-d<disk>, see provisioning.volume_key).
    op.execute(
        """
        UPDATE managed_volumes SET server_id = (
            SELECT s.id FROM managed_servers s
            WHERE s.request_id = managed_volumes.request_id
              AND managed_volumes.idempotency_key LIKE 'cm-r' || s.request_id || '-s' || s."index" || '-d%'
        )
        WHERE server_id IS NULL
        """
    )
    with op.batch_alter_table("managed_volumes", schema=None) as batch_op:
        batch_op.alter_column("server_id", existing_type=sa.Integer(), nullable=False)
