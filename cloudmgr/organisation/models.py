"""Clouds, network zones, departments, their Keystone projects, users and API tokens."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudmgr.db import Base, UTCDateTime, utcnow


class CloudKind(enum.StrEnum):
    BASE = "base"  # the "1": the unified provincial public base cloud
    INDUSTRY = "industry"  # the "14" industry clouds of the plan
    OTHER = "other"  # the "N": added by need


class Level(enum.StrEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"


class ZoneKind(enum.StrEnum):
    """Network zones of the extranet cloud.  The intranet (内网) is deliberately absent:
    classified systems never go on these clouds."""

    INTERNET = "internet"
    EXTRANET = "extranet"


class Role(enum.StrEnum):
    DEPT_STAFF = "dept_staff"
    DEPT_HEAD = "dept_head"
    OPERATOR = "operator"
    FINANCE = "finance"
    ADMIN = "admin"

    @property
    def needs_department(self) -> bool:
        return self in {Role.DEPT_STAFF, Role.DEPT_HEAD}


def _enum_check(column: str, enum_cls: type[enum.StrEnum]) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum_cls)
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_valid")


class Cloud(Base):
    __tablename__ = "clouds"
    __table_args__ = (
        _enum_check("kind", CloudKind),
        _enum_check("level", Level),
        CheckConstraint("quota_drift_policy IN ('repair', 'alert')", name="quota_drift_policy_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(64))
    # The entry of openstacksdk's clouds.yaml this cloud uses, and its region.
    os_cloud: Mapped[str] = mapped_column(String(128))
    region: Mapped[str | None] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # What the quota reconcile job does when someone changed a project quota on the
    # cloud behind cloudmgr's back: "repair" re-applies the ledger's limit, "alert" only reports.
    quota_drift_policy: Mapped[str] = mapped_column(String(8), default="repair", server_default="repair")
    # The approval chain of VM requests on this cloud: {"steps": [roles…], "finance_above_yuan": N}.
    approval_policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    # The Neutron network public (floating) addresses come from; None: the cloud offers none (issue 16).
    external_network: Mapped[str | None] = mapped_column(String(255))
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    zones: Mapped[list[NetworkZone]] = relationship(
        back_populates="cloud", cascade="all, delete-orphan", order_by="NetworkZone.zone"
    )

    def display_name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_zh


class NetworkZone(Base):
    __tablename__ = "network_zones"
    __table_args__ = (UniqueConstraint("cloud_id", "zone"), _enum_check("zone", ZoneKind))

    id: Mapped[int] = mapped_column(primary_key=True)
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id", ondelete="CASCADE"))
    zone: Mapped[str] = mapped_column(String(16))
    network_name: Mapped[str] = mapped_column(String(255))
    # Resolved by `cloudmgr clouds sync`; empty until then.
    network_id: Mapped[str | None] = mapped_column(String(64))

    cloud: Mapped[Cloud] = relationship(back_populates="zones")


class Department(Base):
    __tablename__ = "departments"
    __table_args__ = (_enum_check("level", Level),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(64))
    county: Mapped[str | None] = mapped_column(String(64))
    # The network the department's IT staff administer their servers from (a CIDR), set by an
    # administrator: what the firewall's "department_admin_network" remote means (issue 16).
    admin_cidr: Mapped[str | None] = mapped_column(String(64))

    cloud_links: Mapped[list[DepartmentCloud]] = relationship(back_populates="department", cascade="all, delete-orphan")

    def display_name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_zh


class DepartmentCloud(Base):
    """A cloud a department may use, and the Keystone project it has there."""

    __tablename__ = "department_clouds"
    __table_args__ = (UniqueConstraint("department_id", "cloud_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"))
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id", ondelete="CASCADE"))
    # Filled by the adapter's ensure_project during `clouds sync`.
    project_id: Mapped[str | None] = mapped_column(String(64))
    project_name: Mapped[str] = mapped_column(String(128))
    domain_name: Mapped[str] = mapped_column(String(128))

    department: Mapped[Department] = relationship(back_populates="cloud_links")
    cloud: Mapped[Cloud] = relationship()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        _enum_check("role", Role),
        CheckConstraint(
            "(role IN ('dept_staff', 'dept_head')) = (department_id IS NOT NULL)",
            name="department_matches_role",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Stored in each web session at log-in and compared on every request: bumping it (log-out,
    # password, disable, role or department change) ends every session of the user at once.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set when an administrator resets the password (they know it): the user chooses a new one
    # at the next log-in before any other page (web.core.security).  Cleared by their own change.
    password_change_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    department: Mapped[Department | None] = relationship()

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class ApiToken(Base):
    """A bearer token for the REST API.  Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, shown in lists so people can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class CloudReachability(Base):
    """Whether cloudmgr last reached a cloud, as every process saw it (a row per cloud that was
    ever talked to).  Written by :mod:`cloudmgr.organisation.reachability` on what the cloud
    adapters observe; a table apart from ``clouds`` so that the frequent small writes never wait
    on a cloud's row locked by an edit."""

    __tablename__ = "cloud_reachability"

    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id", ondelete="CASCADE"), primary_key=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set by the first failure after a success, cleared by the next success: down since when.
    unreachable_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failure_kind: Mapped[str | None] = mapped_column(String(16))  # refused | lost
    failure_detail: Mapped[str | None] = mapped_column(String(500))
