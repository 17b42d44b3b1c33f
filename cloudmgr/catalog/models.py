from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, UTCDateTime
from cloudmgr.organisation.models import Cloud


class ItemKind(enum.StrEnum):
    FLAVOR = "flavor"
    IMAGE = "image"
    # A Cinder volume type; its monthly_price is per GB-month.  "volume" because the kind
    # column holds 8 characters (widening it would rebuild the table on SQLite).
    VOLUME_TYPE = "volume"
    # A public (floating) address: one item per cloud, priced per address-month.
    FLOATING_IP = "address"


class CatalogItem(Base):
    """A flavor, image, volume type or public address of one cloud, as synced, and how it is
    offered to departments.

    A volume type's ``monthly_price`` is the price of one GB for a month; the public address
    item's, of one address for a month."""

    __tablename__ = "catalog_items"
    __table_args__ = (UniqueConstraint("cloud_id", "kind", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    external_id: Mapped[str] = mapped_column(String(64))  # the cloud's id
    cloud_name: Mapped[str] = mapped_column(String(255))  # the cloud's name for it
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    offered: Mapped[bool] = mapped_column(Boolean, default=False)
    # Still present on the cloud at the last sync.
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    monthly_price: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    vcpus: Mapped[int] = mapped_column(default=0)
    ram_mb: Mapped[int] = mapped_column(default=0)
    disk_gb: Mapped[int] = mapped_column(default=0)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    cloud: Mapped[Cloud] = relationship()

    def display_name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_zh
