from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloudmgr.audit.errors import AuditLogIsAppendOnly
from cloudmgr.db import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    """One line of the audit log.  Rows are never updated or deleted: the database
    refuses it (triggers created by the migration) and so does the ORM."""

    __tablename__ = "audit_events"
    __append_only__ = AuditLogIsAppendOnly  # the ORM's refusal (cloudmgr.db); the migration's triggers refuse too
    __table_args__ = (Index("ix_audit_events_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))  # a username, or "system:<job>"
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
