"""A request keeps the messages behind the English texts it stores (its state reason, its
events' reasons, its servers' faults), so the pages say them in the reader's language
(issue 18)

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


def upgrade() -> None:
    # Only an added column: SQLite adds it in place.  Existing rows keep no message: their
    # English texts are shown as they are.
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("messages", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.drop_column("messages")
