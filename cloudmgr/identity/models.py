"""Lock-out counters and the external identities of users who log in through Keystone or LDAP."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, UTCDateTime, utcnow
from cloudmgr.organisation.models import User


class IdentitySource(enum.StrEnum):
    KEYSTONE = "keystone"
    LDAP = "ldap"


class LoginThrottle(Base):
    """Failed log-ins of one username (known or not), and the lock they earned.

    Keyed by the username typed, so an unknown name or an external account that has no
    local record yet is throttled too."""

    __tablename__ = "login_throttles"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoginAddressThrottle(Base):
    """Failed log-ins from one client address, across every username it tried, and the lock
    they earned: one address spraying many usernames is stopped, not only one username."""

    __tablename__ = "login_address_throttles"

    id: Mapped[int] = mapped_column(primary_key=True)
    remote_addr: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ExternalIdentity(Base):
    """A user whose password lives in Keystone or LDAP (the local record is a mirror)."""

    __tablename__ = "external_identities"
    __table_args__ = (
        UniqueConstraint("source", "subject"),
        CheckConstraint("source IN ('keystone', 'ldap')", name="source_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    # Keystone user id or LDAP DN.
    subject: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str | None] = mapped_column(String(128))
    # What the backend said at the last login: {"roles": [...], "groups": [...]}.
    claims: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_login_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User] = relationship()
