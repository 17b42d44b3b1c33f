"""The quota ledger's resource names get room for Cinder's and Neutron's firewall resources
(``security_group_rules`` is 20 characters; the column held 16) (issue 16)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TABLES = ("quota_ledger", "quota_drifts")

# As cloudmgr.quotas.resources has them in 2026-12 (a migration keeps its own copy): the
# resources added with this revision, which a downgraded cloudmgr does not know.
ADDED_RESOURCES = (
    "volumes",
    "volume_gb",
    "snapshots",
    "backups",
    "security_groups",
    "security_group_rules",
)


def upgrade() -> None:
    # No other table refers to these two, so SQLite's copy-and-rename of batch mode
    # cannot cascade into anything.
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "resource", existing_type=sa.String(length=16), type_=sa.String(length=32), existing_nullable=False
            )


def downgrade() -> None:
    # The older code knows none of the added resources (and their names may not fit):
    # their rows go, everything else stays.
    for table in TABLES:
        rows = sa.table(table, sa.column("resource", sa.String()))
        op.execute(sa.delete(rows).where(rows.c.resource.in_(ADDED_RESOURCES)))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "resource", existing_type=sa.String(length=32), type_=sa.String(length=16), existing_nullable=False
            )
