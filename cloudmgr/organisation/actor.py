"""Who is acting: what services need to know about the user, without the ORM object."""

from __future__ import annotations

from dataclasses import dataclass

from cloudmgr.organisation.models import Role, User


@dataclass(frozen=True)
class Actor:
    username: str
    role: Role
    department_id: int | None = None
    user_id: int | None = None

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(username=user.username, role=Role(user.role), department_id=user.department_id, user_id=user.id)

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(username=f"system:{job}", role=Role.OPERATOR)

    @property
    def is_department(self) -> bool:
        return self.role in {Role.DEPT_STAFF, Role.DEPT_HEAD}

    @property
    def department_scope(self) -> int | None:
        """The one department whose data this actor sees, or None when they see every department's:
        what a listing is narrowed to, and what a cache of listings is partitioned by."""
        return self.department_id if self.is_department else None

    @property
    def sees_hypervisors(self) -> bool:
        """Which hypervisor (host) a server runs on is the operators' business: it is the cloud's
        inside, and it hints at whose servers share the machine.  Departments see their servers
        (name, state, addresses, flavor), never the hosts: in the pages and in the API."""
        return not self.is_department

    def can_see_department(self, department_id: int) -> bool:
        return not self.is_department or self.department_id == department_id
