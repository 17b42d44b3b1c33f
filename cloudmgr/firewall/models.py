"""Firewall templates operators keep, and the firewall a service request asks for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow
from cloudmgr.firewall.rules import REMOTE_MAX, Direction, Protocol, RuleSpec

# No ports for icmp and any; a range inside 1-65535, low end first, for tcp and udp.
PORT_RANGE_CHECK = (
    "(protocol IN ('icmp', 'any') AND port_min IS NULL AND port_max IS NULL) OR "
    "(protocol IN ('tcp', 'udp') AND port_min >= 1 AND port_max <= 65535 AND port_min <= port_max)"
)


class _RuleColumns:
    """The columns of one rule, the same in a template and in a request."""

    position: Mapped[int]
    direction: Mapped[Direction] = mapped_column(StrEnumType(Direction, 8))
    protocol: Mapped[Protocol] = mapped_column(StrEnumType(Protocol, 8))
    port_min: Mapped[int | None]
    port_max: Mapped[int | None]
    # A canonical CIDR or a symbolic remote (cloudmgr.firewall.rules.SymbolicRemote).
    remote: Mapped[str] = mapped_column(String(REMOTE_MAX))

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[CheckConstraint, ...]:
        return (
            enum_check("direction", Direction),
            enum_check("protocol", Protocol),
            CheckConstraint(PORT_RANGE_CHECK, name="port_range_valid"),
        )

    def spec(self) -> RuleSpec:
        return RuleSpec(self.direction, self.protocol, self.port_min, self.port_max, self.remote)


class FirewallTemplate(Base):
    """A named set of rules operators offer, e.g. "web": tcp 80 and 443 from anywhere."""

    __tablename__ = "firewall_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description_zh: Mapped[str] = mapped_column(String(500), default="")
    description_en: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    rules: Mapped[list[FirewallTemplateRule]] = relationship(
        cascade="all, delete-orphan", order_by="FirewallTemplateRule.position"
    )

    def description(self, locale: str) -> str:
        return self.description_en if locale == "en" else self.description_zh


class FirewallTemplateRule(_RuleColumns, Base):
    __tablename__ = "firewall_template_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("firewall_templates.id", ondelete="CASCADE"), index=True)


class RequestFirewallTemplate(Base):
    """A template a service request asked for.  No cascade from the template: one in use is
    not deleted (:class:`cloudmgr.firewall.errors.TemplateInUse`)."""

    __tablename__ = "request_firewall_templates"
    __table_args__ = (UniqueConstraint("request_id", "template_id", name="uq_request_firewall_templates_pair"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id", ondelete="CASCADE"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("firewall_templates.id"), index=True)
    position: Mapped[int]


class RequestFirewallRule(_RuleColumns, Base):
    """A rule of its own a department asked for on a service request."""

    __tablename__ = "request_firewall_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id", ondelete="CASCADE"), index=True)
