"""Firewall templates, the firewall a service request asks for, and the departments' admin network (issue 16)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloudmgr.db

# As cloudmgr.firewall.models has it in 2026-12 (a migration keeps its own copy).
PORT_RANGE_CHECK = (
    "(protocol IN ('icmp', 'any') AND port_min IS NULL AND port_max IS NULL) OR "
    "(protocol IN ('tcp', 'udp') AND port_min >= 1 AND port_max <= 65535 AND port_min <= port_max)"
)


revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "firewall_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description_zh", sa.String(length=500), nullable=False),
        sa.Column("description_en", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cloudmgr.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firewall_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_firewall_templates_name")),
    )
    op.create_table(
        "firewall_template_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("port_min", sa.Integer(), nullable=True),
        sa.Column("port_max", sa.Integer(), nullable=True),
        sa.Column("remote", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            PORT_RANGE_CHECK,
            name=op.f("ck_firewall_template_rules_port_range_valid"),
        ),
        sa.CheckConstraint(
            "direction IN ('ingress', 'egress')", name=op.f("ck_firewall_template_rules_direction_valid")
        ),
        sa.CheckConstraint(
            "protocol IN ('tcp', 'udp', 'icmp', 'any')", name=op.f("ck_firewall_template_rules_protocol_valid")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["firewall_templates.id"],
            name=op.f("fk_firewall_template_rules_template_id_firewall_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firewall_template_rules")),
    )
    with op.batch_alter_table("firewall_template_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_firewall_template_rules_template_id"), ["template_id"], unique=False)

    op.create_table(
        "request_firewall_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("port_min", sa.Integer(), nullable=True),
        sa.Column("port_max", sa.Integer(), nullable=True),
        sa.Column("remote", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            PORT_RANGE_CHECK,
            name=op.f("ck_request_firewall_rules_port_range_valid"),
        ),
        sa.CheckConstraint(
            "direction IN ('ingress', 'egress')", name=op.f("ck_request_firewall_rules_direction_valid")
        ),
        sa.CheckConstraint(
            "protocol IN ('tcp', 'udp', 'icmp', 'any')", name=op.f("ck_request_firewall_rules_protocol_valid")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["service_requests.id"],
            name=op.f("fk_request_firewall_rules_request_id_service_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_firewall_rules")),
    )
    with op.batch_alter_table("request_firewall_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_firewall_rules_request_id"), ["request_id"], unique=False)

    op.create_table(
        "request_firewall_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["service_requests.id"],
            name=op.f("fk_request_firewall_templates_request_id_service_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["firewall_templates.id"],
            name=op.f("fk_request_firewall_templates_template_id_firewall_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_firewall_templates")),
        sa.UniqueConstraint("request_id", "template_id", name="uq_request_firewall_templates_pair"),
    )
    with op.batch_alter_table("request_firewall_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_firewall_templates_request_id"), ["request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_request_firewall_templates_template_id"), ["template_id"], unique=False)

    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("admin_cidr", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_column("admin_cidr")

    with op.batch_alter_table("request_firewall_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_firewall_templates_template_id"))
        batch_op.drop_index(batch_op.f("ix_request_firewall_templates_request_id"))

    op.drop_table("request_firewall_templates")
    with op.batch_alter_table("request_firewall_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_firewall_rules_request_id"))

    op.drop_table("request_firewall_rules")
    with op.batch_alter_table("firewall_template_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_firewall_template_rules_template_id"))

    op.drop_table("firewall_template_rules")
    op.drop_table("firewall_templates")
