"""The SSH public keys department users keep."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, StrEnumType, UTCDateTime, enum_check, utcnow
from cloudmgr.keys.parsing import KeyType
from cloudmgr.organisation.models import User


class SshKey(Base):
    """One OpenSSH public key of one user, under a name of the user's choosing.

    ``department_id`` is the user's department when the key was added: a key is put only on
    servers of that department (:func:`cloudmgr.keys.services.key_for_request`), and operators
    list keys by it.  Only public data is stored; the text is the normalised ``<type> <base64>``.
    """

    __tablename__ = "ssh_keys"
    __table_args__ = (
        UniqueConstraint("owner_user_id", "name", name="uq_ssh_keys_owner_name"),
        UniqueConstraint("owner_user_id", "fingerprint", name="uq_ssh_keys_owner_fingerprint"),
        enum_check("key_type", KeyType),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(String(255), default="")
    key_type: Mapped[KeyType] = mapped_column(StrEnumType(KeyType, 32))
    bits: Mapped[int]
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    owner: Mapped[User] = relationship()
