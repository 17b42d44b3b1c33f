"""A department's own volumes and public addresses (issue 16, cloudmgr.storage): a volume may be
made without a request (request_id nullable) and has a name; volumes and addresses say whether
they are in the ledger's used (quota_counted); the states of a queued change (attaching,
detaching, extending, deleting; releasing) join the state checks.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# As cloudmgr.servicerequests.parts has them in 2026-12 (a migration keeps its own copy).
VOLUME_STATES_BEFORE = ("pending", "creating", "attached", "available", "deleted", "failed")
VOLUME_STATES = (*VOLUME_STATES_BEFORE, "attaching", "detaching", "extending", "deleting")
ADDRESS_STATES_BEFORE = ("pending", "allocated", "associated", "released", "failed")
ADDRESS_STATES = (*ADDRESS_STATES_BEFORE, "releasing")


def _check(values: tuple[str, ...]) -> str:
    return "state IN ({})".format(", ".join(f"'{v}'" for v in values))


def upgrade() -> None:
    with op.batch_alter_table("managed_volumes", schema=None) as batch_op:
        batch_op.alter_column("request_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("name", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("quota_counted", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.drop_constraint(op.f("ck_managed_volumes_state_valid"), type_="check")
        batch_op.create_check_constraint("state_valid", _check(VOLUME_STATES))
    with op.batch_alter_table("managed_addresses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quota_counted", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.drop_constraint(op.f("ck_managed_addresses_state_valid"), type_="check")
        batch_op.create_check_constraint("state_valid", _check(ADDRESS_STATES))


def downgrade() -> None:
    # The older code knows neither volumes without a request nor the in-between states: such
    # volumes go (their cloud volumes stay, tagged), a change in flight is read as not begun.
    volumes = sa.table(
        "managed_volumes",
        sa.column("request_id", sa.Integer()),
        sa.column("state", sa.String()),
        sa.column("server_id"),
    )
    op.execute(sa.delete(volumes).where(volumes.c.request_id.is_(None)))
    op.execute(sa.update(volumes).where(volumes.c.state == "attaching").values(state="available", server_id=None))
    busy = volumes.c.state.in_(["detaching", "extending", "deleting"])
    op.execute(sa.update(volumes).where(busy, volumes.c.server_id.is_(None)).values(state="available"))
    op.execute(sa.update(volumes).where(busy).values(state="attached"))
    addresses = sa.table("managed_addresses", sa.column("state", sa.String()))
    op.execute(sa.update(addresses).where(addresses.c.state == "releasing").values(state="associated"))
    with op.batch_alter_table("managed_addresses", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_managed_addresses_state_valid"), type_="check")
        batch_op.create_check_constraint("state_valid", _check(ADDRESS_STATES_BEFORE))
        batch_op.drop_column("quota_counted")
    with op.batch_alter_table("managed_volumes", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_managed_volumes_state_valid"), type_="check")
        batch_op.create_check_constraint("state_valid", _check(VOLUME_STATES_BEFORE))
        batch_op.drop_column("quota_counted")
        batch_op.drop_column("name")
        batch_op.alter_column("request_id", existing_type=sa.Integer(), nullable=False)
