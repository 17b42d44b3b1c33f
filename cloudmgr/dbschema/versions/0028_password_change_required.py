"""a user whose password an administrator reset must choose a new one at the next log-in (issue 18)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing accounts keep their passwords: nobody is asked for a new one by this upgrade.
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_change_required", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_change_required")
