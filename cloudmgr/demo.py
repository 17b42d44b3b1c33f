"""The first-run demo: the organisation files plus one login per role."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role, User


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: Role
    display_name: str
    department_key: str | None


# Local demo accounts only: `make run` prints them.  Production creates real users with
# `cloudmgr users create` and never runs seed-demo.
DEMO_LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin("zhangwei", "demo-staff-2026", Role.DEPT_STAFF, "张伟 (教育厅信息中心)", "prov-education"),
    DemoLogin("lina", "demo-head-2026", Role.DEPT_HEAD, "李娜 (教育厅负责人)", "prov-education"),
    DemoLogin("wangfang", "demo-staff-2026", Role.DEPT_STAFF, "王芳 (唐山市人社局)", "ts-hrss"),
    DemoLogin("operator", "demo-operator-2026", Role.OPERATOR, "云平台运维 刘洋", None),
    DemoLogin("finance", "demo-finance-2026", Role.FINANCE, "财政审核 陈静", None),
    DemoLogin("admin", "demo-admin-2026", Role.ADMIN, "系统管理员", None),
)


def seed_demo_users(session: Session, *, actor: Actor) -> list[DemoLogin]:
    """Create the demo logins that do not exist yet; returns every demo login."""
    existing = set(session.scalars(select(User.username)))
    for login in DEMO_LOGINS:
        if login.username not in existing:
            org.create_user(
                session,
                username=login.username,
                password=login.password,
                role=login.role,
                display_name=login.display_name,
                department_key=login.department_key,
                actor=actor,
            )
    return list(DEMO_LOGINS)


def existing_demo_logins(session: Session) -> list[DemoLogin]:
    """The demo logins whose user exists (in the order of DEMO_LOGINS)."""
    existing = set(session.scalars(select(User.username)))
    return [login for login in DEMO_LOGINS if login.username in existing]
