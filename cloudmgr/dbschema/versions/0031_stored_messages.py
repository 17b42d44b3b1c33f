"""A request keeps the messages behind the English texts it stores (its state reason, its
events' reasons, its servers' faults), and so do volumes, public addresses, the copies of
volumes and servers and orphaned resources (their faults), so the pages say them in the reader's language (issue 18)

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


#: The tables whose rows keep the messages behind their texts (cloudmgr.stored_messages).
TABLES = (
    "service_requests",
    "managed_volumes",
    "managed_addresses",
    "volume_snapshot_records",
    "volume_backup_records",
    "server_snapshot_records",
    "orphan_resources",
)


def upgrade() -> None:
    # Only added columns: SQLite adds them in place.  Existing rows keep no message: their
    # English texts are shown as they are.
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("messages", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("messages")
