"""Reading the organisation: the clouds and departments, their choices for filters, and what an actor
sees of them (the department wall, decided here for every page and API)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.errors import (
    UnknownDepartment,
)
from cloudmgr.organisation.models import (
    Cloud,
    Department,
    DepartmentCloud,
    Role,
    User,
)
from cloudmgr.paging import Page, PageRequest, paginate, search


def list_clouds(session: Session) -> Sequence[Cloud]:
    return session.scalars(select(Cloud).options(selectinload(Cloud.zones)).order_by(Cloud.id)).all()


@dataclass(frozen=True, slots=True)
class NamedChoice:
    """A cloud or department as a filter choice: read with one lean query (no ORM objects)."""

    id: int
    key: str
    name_zh: str
    name_en: str

    def display_name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_zh


def cloud_choices(session: Session) -> list[NamedChoice]:
    rows = session.execute(select(Cloud.id, Cloud.key, Cloud.name_zh, Cloud.name_en).order_by(Cloud.id))
    return [NamedChoice(*row) for row in rows]


def department_cloud_choices(session: Session, department_id: int) -> list[NamedChoice]:
    """The clouds a department may use, as filter choices (one lean query)."""
    rows = session.execute(
        select(Cloud.id, Cloud.key, Cloud.name_zh, Cloud.name_en)
        .join(DepartmentCloud, DepartmentCloud.cloud_id == Cloud.id)
        .where(DepartmentCloud.department_id == department_id)
        .order_by(Cloud.id)
    )
    return [NamedChoice(*row) for row in rows]


def department_choices(session: Session) -> list[NamedChoice]:
    rows = session.execute(
        select(Department.id, Department.key, Department.name_zh, Department.name_en).order_by(
            Department.level, Department.key
        )
    )
    return [NamedChoice(*row) for row in rows]


def list_departments(session: Session) -> Sequence[Department]:
    return session.scalars(select(Department).order_by(Department.level, Department.key)).all()


def project_owners(session: Session) -> list[tuple[str, Department]]:
    """(project id, department) for every department project on every cloud."""
    rows = session.execute(
        select(DepartmentCloud.project_id, Department)
        .join(Department, Department.id == DepartmentCloud.department_id)
        .where(DepartmentCloud.project_id.is_not(None))
    )
    return [(str(project_id), department) for project_id, department in rows]


def get_department(session: Session, key: str) -> Department:
    dept = session.scalar(select(Department).where(Department.key == key))
    if dept is None:
        raise UnknownDepartment(f"no department {key!r}")
    return dept


def visible_cloud_id(session: Session, key: str, *, department_id: int | None) -> int | None:
    """The id of the cloud ``key`` if it exists and, for a department (``department_id``),
    is one of that department's clouds; None otherwise.  One lean query."""
    query = select(Cloud.id).where(Cloud.key == key)
    if department_id is not None:
        query = query.join(DepartmentCloud, DepartmentCloud.cloud_id == Cloud.id).where(
            DepartmentCloud.department_id == department_id
        )
    return session.scalar(query)


def clouds_of_department(session: Session, department_id: int) -> Sequence[DepartmentCloud]:
    return session.scalars(
        select(DepartmentCloud)
        .where(DepartmentCloud.department_id == department_id)
        .options(selectinload(DepartmentCloud.cloud).selectinload(Cloud.zones))
        .order_by(DepartmentCloud.cloud_id)
    ).all()


# What an actor sees of the organisation: the department wall, decided here for every page and API.


def visible_clouds(session: Session, actor: Actor) -> Sequence[Cloud]:
    """The clouds ``actor`` may see: a department user those their department may use, anyone else all."""
    if actor.is_department and actor.department_id is not None:
        return [link.cloud for link in clouds_of_department(session, actor.department_id)]
    return list_clouds(session)


def visible_departments(session: Session, actor: Actor, *, level: str | None = None) -> Sequence[Department]:
    """The departments ``actor`` may see (of ``level``, when given): a department user only their own."""
    list_clouds(session)  # the departments' links then find their clouds in the session
    found = [d for d in list_departments(session) if actor.can_see_department(d.id)]
    return [d for d in found if level is None or d.level == level]


def get_visible_department(session: Session, actor: Actor, key: str) -> Department:
    """The department ``key``, or :class:`UnknownDepartment` when it does not exist or is another
    department's (to a department user, other departments do not exist)."""
    department = get_department(session, key)
    if not actor.can_see_department(department.id):
        raise UnknownDepartment(f"no department {key!r}")
    return department


def named_department_id(session: Session, actor: Actor | None, key: str | None) -> int | None:
    """The id of the department ``key`` a listing is asked to be narrowed to, or None when no department is
    named or ``actor`` is a department user: their listings are always their own department's whatever they
    name (the listing narrows them by the actor), so the name is ignored rather than refused.  None for
    ``actor`` is a trusted caller (the CLI, the jobs), who sees every department's.
    :class:`UnknownDepartment` when an actor who sees every department's names one that does not exist."""
    if key is None or (actor is not None and actor.is_department):
        return None
    return get_department(session, key).id


@dataclass(frozen=True, slots=True)
class UserFilter:
    role: str | None = None
    department_id: int | None = None
    #: True: only those who may log in; False: only the disabled; None: both
    active: bool | None = None


def users_page(session: Session, flt: UserFilter, params: PageRequest) -> Page[User]:
    """The administrators' user list: by role then username, searched in the username, the name
    and the e-mail address."""
    query = select(User).options(selectinload(User.department))
    if flt.role in {role.value for role in Role}:
        query = query.where(User.role == flt.role)
    if flt.department_id is not None:
        query = query.where(User.department_id == flt.department_id)
    if flt.active is not None:
        query = query.where(User.active.is_(flt.active))
    query = search(query, params.q, User.username, User.display_name, User.email)
    return paginate(session, query, params, User.role, User.username)
