"""states as enums: CHECK constraints on the state columns that had none (issue 15)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

The models now type these columns as their state enums, stored as the enum's value (the
strings already stored), so no row is rewritten beyond normalising stray spelling
(surrounding blanks, capitals).  A state no enum knows stops the upgrade with the rows
named: a migration must not guess what a request in state "foo" is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The values as of this revision (the enums may grow later; their own revisions add them).
STATES: dict[str, tuple[str, ...]] = {
    "service_requests": (
        "draft",
        "submitted",
        "approved",
        "provisioning",
        "active",
        "partially_active",
        "failed",
        "rejected",
        "cancelled",
        "retired",
    ),
    "managed_servers": ("pending", "building", "active", "stopped", "error", "cancelled", "deleting", "deleted"),
    "moves": (
        "requested",
        "running",
        "awaiting_confirm",
        "confirming",
        "reverting",
        "done",
        "partial",
        "reverted",
        "failed",
    ),
    "runbook_runs": ("queued", "running", "succeeded", "failed", "rolled_back"),
}
CONSTRAINT = "state_valid"


def _check(values: tuple[str, ...]) -> str:
    return "state IN ({})".format(", ".join(f"'{value}'" for value in values))


def _normalise_and_verify(table: str, values: tuple[str, ...]) -> None:
    bind = op.get_bind()
    column = sa.column("state", sa.String())
    rows = sa.table(table, sa.column("id", sa.Integer()), column)
    tidy = sa.func.lower(sa.func.trim(column))
    bind.execute(sa.update(rows).where(column.not_in(values), tidy.in_(values)).values(state=tidy))
    bad = bind.execute(sa.select(rows.c.id, column).where(column.not_in(values)).order_by(rows.c.id).limit(20)).all()
    if bad:
        listed = ", ".join(f"#{row.id} {row.state!r}" for row in bad)
        raise RuntimeError(
            f"{table} has rows in a state cloudmgr does not know ({listed}): correct them, then upgrade again"
        )


def _foreign_keys(enabled: bool) -> None:
    """SQLite: batch mode copies each table, drops it and renames the copy; with foreign keys
    on, the drop would delete the rows referring to it (ON DELETE CASCADE: request and move
    events, runbook events) or fail.  The PRAGMA only works outside a transaction."""
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.get_context().autocommit_block():
        op.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")


def _verify_foreign_keys() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"foreign keys broken by the upgrade: {broken[:10]}")


def upgrade() -> None:
    for table, values in STATES.items():
        _normalise_and_verify(table, values)
    # No try/finally: turning the keys back on commits, and a failed upgrade must roll back
    # (the connection, and its PRAGMA, end with the failed run).
    _foreign_keys(False)
    for table, values in STATES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_check_constraint(CONSTRAINT, _check(values))
    _verify_foreign_keys()
    _foreign_keys(True)


def downgrade() -> None:
    _foreign_keys(False)
    for table in reversed(STATES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_{CONSTRAINT}"), type_="check")
    _verify_foreign_keys()
    _foreign_keys(True)
